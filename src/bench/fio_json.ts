//! Reads fio's `--output-format=json` report into the figures BENCH.md asks for: IOPS, MB/s,
//! average and p99 completion latency, as fio measured them (never the server's counters).
//!
//! fio's nbd engine prints "fio: connected to NBD server" on stdout before the JSON, so parsing
//! starts at the first "{". Figures of a mixed workload are summed (IOPS, bytes/s) or weighted
//! by I/O count (mean latency); its p99 is the worse of the two directions, which is
//! conservative and said so in the report.

/** The figures of one direction (read or write) of one fio job. */
export interface DirectionFigures {
  readonly ios: number;
  readonly iops: number;
  readonly bytesPerSecond: number;
  readonly clatMeanUs: number;
  readonly clatP99Us: number;
}

/** The figures of one fio run, as the report uses them. */
export interface FioFigures {
  readonly iops: number;
  /** Decimal megabytes per second (10^6 bytes), as fio's "MB/s". */
  readonly megabytesPerSecond: number;
  readonly clatMeanUs: number;
  readonly clatP99Us: number;
  /** Latency of the flushes `--fsync=1` adds; 0 when the workload sends none. */
  readonly flushLatMeanUs: number;
  readonly flushLatP99Us: number;
  readonly read: DirectionFigures;
  readonly write: DirectionFigures;
  /** fio's own error number for the job; 0 when it went well. */
  readonly fioError: number;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function field(value: Json | undefined, key: string): Json | undefined {
  if (value === null || value === undefined || typeof value !== "object" || Array.isArray(value)) {
    return undefined;
  }
  return value[key];
}

function num(value: Json | undefined): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** The p99 of a fio latency block, in nanoseconds; 0 when fio printed no percentiles. */
function p99Ns(lat: Json | undefined): number {
  return num(field(field(lat, "percentile"), "99.000000"));
}

function direction(job: Json | undefined, name: "read" | "write"): DirectionFigures {
  const d = field(job, name);
  const clat = field(d, "clat_ns");
  return {
    ios: num(field(d, "total_ios")),
    iops: num(field(d, "iops")),
    bytesPerSecond: num(field(d, "bw_bytes")),
    clatMeanUs: num(field(clat, "mean")) / 1000,
    clatP99Us: p99Ns(clat) / 1000,
  };
}

/** Extracts the JSON document from fio's stdout; throws when there is none. */
export function extractFioJson(stdout: string): Json {
  const start = stdout.indexOf("{");
  const end = stdout.lastIndexOf("}");
  if (start < 0 || end < start) throw new Error("fio printed no JSON report");
  return JSON.parse(stdout.slice(start, end + 1)) as Json;
}

/** Parses the report of a single-job fio run into figures. */
export function parseFioFigures(stdout: string): FioFigures {
  const doc = extractFioJson(stdout);
  const jobs = field(doc, "jobs");
  if (!Array.isArray(jobs) || jobs.length !== 1) {
    throw new Error(
      `expected one job in fio's report, found ${Array.isArray(jobs) ? jobs.length : "none"}`,
    );
  }
  const job = jobs[0];
  const read = direction(job, "read");
  const write = direction(job, "write");
  const ios = read.ios + write.ios;
  const weighted = (f: (d: DirectionFigures) => number): number =>
    ios === 0 ? 0 : (f(read) * read.ios + f(write) * write.ios) / ios;
  const syncLat = field(field(job, "sync"), "lat_ns");
  return {
    iops: read.iops + write.iops,
    megabytesPerSecond: (read.bytesPerSecond + write.bytesPerSecond) / 1e6,
    clatMeanUs: weighted((d) => d.clatMeanUs),
    clatP99Us: Math.max(read.clatP99Us, write.clatP99Us),
    flushLatMeanUs: num(field(syncLat, "mean")) / 1000,
    flushLatP99Us: p99Ns(syncLat) / 1000,
    read,
    write,
    fioError: num(field(job, "error")),
  };
}
