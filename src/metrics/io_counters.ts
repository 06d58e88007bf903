//! Counters that the data path bumps and the metrics read: request counts, bytes and latency
//! histograms per volume, and a histogram type for peer round-trip times. Plain number fields
//! and one preallocated Float64Array per histogram: recording allocates nothing, so the hot
//! path pays a few additions and compares per request. No clocks here: callers measure
//! (performance.now) and pass seconds, so this stays testable and pure.
//!
//! Prometheus' counters are floats too; a Float64Array counts exactly up to 2^53.

/**
 * Upper bounds (seconds) of the latency buckets, Prometheus' `le`. From 25 µs (a cached read
 * over a Unix socket) to 2.5 s (a write stuck behind a slow peer or a suspended volume); the
 * +Inf bucket catches the rest.
 */
export const latencyBucketsSeconds: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5,
];

/** Upper bounds (seconds) of the peer round-trip buckets: LAN to a slow WAN link. */
export const rttBucketsSeconds: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** A histogram as the status JSON carries it: cumulative counts per bucket, like Prometheus. */
export interface HistogramSnapshot {
  /** The buckets' upper bounds (seconds), ascending; +Inf is implied. */
  readonly le: readonly number[];
  /** Observations ≤ le[i], cumulative; one more entry than `le`, the last being +Inf = count. */
  readonly cumulative: readonly number[];
  readonly sumSeconds: number;
  readonly count: number;
}

/** A fixed-bucket histogram of durations in seconds. */
export class Histogram {
  /** Per bucket (not cumulative); the last entry is the +Inf bucket. */
  private readonly counts: Float64Array;
  sumSeconds = 0;
  count = 0;

  constructor(readonly le: readonly number[]) {
    for (let i = 1; i < le.length; i++)
      if (!(le[i]! > le[i - 1]!)) throw new Error("histogram buckets must ascend");
    this.counts = new Float64Array(le.length + 1);
  }

  observe(seconds: number): void {
    const le = this.le;
    let i = 0;
    // Linear: most observations land in the first few buckets, and there are only ~16.
    while (i < le.length && seconds > le[i]!) i++;
    this.counts[i] = this.counts[i]! + 1;
    this.sumSeconds += seconds;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    const cumulative: number[] = [];
    let running = 0;
    for (const c of this.counts) cumulative.push((running += c));
    return { le: this.le, cumulative, sumSeconds: this.sumSeconds, count: this.count };
  }
}

/** What clients did with one volume (as the NBD export saw it), as the status JSON has it. */
export interface VolumeIoSnapshot {
  readonly reads: number;
  readonly readBytes: number;
  readonly writes: number;
  readonly writtenBytes: number;
  readonly flushes: number;
  /** Requests answered with an error, any kind. */
  readonly errors: number;
  readonly readLatency: HistogramSnapshot;
  readonly writeLatency: HistogramSnapshot;
}

/**
 * Client IO of one volume, counted where the requests enter (the NBD server): what the
 * application asked for, like DRBD's counters of its upper device. Writes include
 * WRITE_ZEROES; TRIM, which mirra does not pass down, counts nowhere.
 */
export class VolumeIoCounters {
  reads = 0;
  readBytes = 0;
  writes = 0;
  writtenBytes = 0;
  flushes = 0;
  errors = 0;
  readonly readLatency = new Histogram(latencyBucketsSeconds);
  readonly writeLatency = new Histogram(latencyBucketsSeconds);

  snapshot(): VolumeIoSnapshot {
    return {
      reads: this.reads,
      readBytes: this.readBytes,
      writes: this.writes,
      writtenBytes: this.writtenBytes,
      flushes: this.flushes,
      errors: this.errors,
      readLatency: this.readLatency.snapshot(),
      writeLatency: this.writeLatency.snapshot(),
    };
  }
}
