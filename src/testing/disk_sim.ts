//! A simulated block device and a simulated metadata area, in memory, driven by one seeded Prng.
//!
//! Fault model of the data area (4 KiB blocks, sparse: only written blocks take memory):
//!
//! - Every read, write and flush completes after its own seeded latency; completions may come
//!   in any order, as on a real device with a queue.
//! - A completed write is visible to reads at once but is **volatile** until a flush that was
//!   issued after it completed has completed (or the write carried FUA, which makes it durable
//!   when it completes). A write still pending when a flush is issued is not covered by it.
//! - `crash()` drops every pending completion and decides, for each write that is not durable
//!   (completed or still pending), one of: **lost** (the old data stays), **applied** (all of
//!   it is durable), or **torn** (a strict prefix of its 4 KiB blocks is durable; a single
//!   block is never torn inside itself). Then the visible data becomes the durable data.
//! - Injected **read errors** return EIO and no data. Injected **write errors** return EIO and
//!   leave an unknown prefix of the write's blocks visible (volatile), as a failing device may.
//! - **Disk full**: a write that would allocate blocks beyond `capacityBlocksMax` fails with
//!   ENOSPC and changes nothing (a thin or sparse backing volume ran out of space).
//!
//! Fault model of the metadata area (an ordered log of the engine's metadata records):
//!
//! - Metadata writes complete in the order issued, each after its own latency (a later one
//!   waits for the earlier ones), and are durable once completed: every earlier one is then
//!   durable too (FUA writes on an ordered queue, as DRBD's md-flushes give).
//! - `crash()` keeps a prefix of the pending metadata writes, may **tear** the next one, and
//!   loses the rest. Records sit in checksummed slots, so a torn record is detected when the
//!   metadata is read back and is dropped: the reader sees the log up to the last intact
//!   record. A torn activity-log transaction therefore looks exactly like a lost one to the
//!   engine, which must recover with the previous transaction. Torn records are counted.
//! - Injected metadata write errors return EIO; the record is not written.

import { assert } from "../stdx/assert.js";
import { Prng } from "../stdx/prng.js";

export const blockSizeBytes = 4096;

export type DiskErrorCode = "EIO" | "ENOSPC";

export type DiskResult = { ok: true; data?: Uint8Array } | { ok: false; error: DiskErrorCode };

export interface DiskSimOptions {
  /** Size of the data area, bytes. A multiple of 4 KiB. */
  sizeBytes: number;
  /** Smallest latency of a read, ticks (>= 1). */
  readLatencyTicksMin: number;
  /** Mean of the exponential latency added to reads, ticks. */
  readLatencyTicksMean: number;
  /** Smallest latency of a write or flush, ticks (>= 1). */
  writeLatencyTicksMin: number;
  /** Mean of the exponential latency added to writes and flushes, ticks. */
  writeLatencyTicksMean: number;
  /** Chance that a read fails with EIO. */
  readErrorProbability: number;
  /** Chance that a write fails with EIO (and leaves an unknown prefix of it written). */
  writeErrorProbability: number;
  /** Chance that a metadata write fails with EIO. */
  metadataWriteErrorProbability: number;
  /** Blocks that may ever be allocated (thin space); Infinity for a thick volume. */
  capacityBlocksMax: number;
  /** On a crash, chance that a non-durable write is lost; the rest split applied/torn. */
  crashLostProbability: number;
  /** On a crash, chance that a non-durable write is torn (given it is not lost). */
  crashTornProbability: number;
}

export function diskSimOptionsQuiet(sizeBytes: number): DiskSimOptions {
  return {
    sizeBytes,
    readLatencyTicksMin: 1,
    readLatencyTicksMean: 1,
    writeLatencyTicksMin: 1,
    writeLatencyTicksMean: 2,
    readErrorProbability: 0,
    writeErrorProbability: 0,
    metadataWriteErrorProbability: 0,
    capacityBlocksMax: Infinity,
    crashLostProbability: 0.4,
    crashTornProbability: 0.5,
  };
}

/** Receives completions; `token` is whatever the submitter passed (the engine's io id). */
export interface DiskSimHost<T, R = unknown> {
  diskCompleted(token: T, result: DiskResult): void;
  /** A metadata record became durable (on completion, or applied by a crash). Optional. */
  metadataDurable?(record: R): void;
}

type OpKind = "read" | "write" | "flush" | "metadata";

interface Op<T, R> {
  kind: OpKind;
  token: T;
  completeTick: number;
  submitSeq: number;
  blockFirst: number;
  blockCount: number;
  /** For writes: one 4 KiB copy per block. */
  blocks: Uint8Array[] | null;
  fua: boolean;
  /** For flushes: the writes it makes durable when it completes. */
  covers: WriteRecord[] | null;
  /** For metadata writes. */
  record: R | null;
}

interface WriteRecord {
  /** Order in which the write reached the media (completion order; pending ones last). */
  seq: number;
  blockFirst: number;
  blocks: Uint8Array[];
  durable: boolean;
}

export type CrashOutcome = "lost" | "applied" | "torn";

export interface DiskSimStats {
  reads: number;
  writes: number;
  flushes: number;
  metadataWrites: number;
  readErrors: number;
  writeErrors: number;
  crashes: number;
  crashLost: number;
  crashApplied: number;
  crashTorn: number;
  metadataTorn: number;
  metadataLost: number;
}

/** Summarises a block as a number, for fast checkers (the simulator uses payload tags). */
export type BlockTagger = (block: Uint8Array, blockIndex: number) => number;

export class DiskSim<T, R = unknown> {
  readonly options: DiskSimOptions;
  /** Tag of every visible block (0 for never written), kept current; null without a tagger. */
  readonly tags: Int32Array | null;
  private durableTags: Int32Array | null;
  readonly sizeBlocks: number;
  tickNow = 0;
  private readonly prng: Prng;
  /** What survives a crash. Blocks are immutable once stored: replaced, never mutated. */
  private durable = new Map<number, Uint8Array>();
  /** For each durable block, the seq of the write that put it there: never go back. */
  private durableSeq = new Map<number, number>();
  private writeSeq = 0;
  /** What reads see. */
  private visible = new Map<number, Uint8Array>();
  /** Durable metadata records, in the order they were issued. */
  private metadataLog: R[] = [];
  /** Issued metadata writes not yet completed, FIFO. */
  private metadataPending: Op<T, R>[] = [];
  /** Completed writes that are not durable yet, in completion order. */
  private volatileWrites: WriteRecord[] = [];
  private pending: Op<T, R>[] = [];
  private submitSeq = 0;
  /** Per block, the newest write submitted and not yet completed (what the block will hold). */
  private pendingLatest = new Map<number, { submitSeq: number; block: Uint8Array; tag: number }>();
  /** Tests may force the next crash outcome of every non-durable write. */
  crashOutcomeForced: CrashOutcome | null = null;
  /** When false, no random errors are injected (liveness mode). */
  faultsEnabled = true;
  readonly stats: DiskSimStats = {
    reads: 0,
    writes: 0,
    flushes: 0,
    metadataWrites: 0,
    readErrors: 0,
    writeErrors: 0,
    crashes: 0,
    crashLost: 0,
    crashApplied: 0,
    crashTorn: 0,
    metadataTorn: 0,
    metadataLost: 0,
  };

  constructor(
    options: DiskSimOptions,
    prng: Prng,
    private readonly host: DiskSimHost<T, R>,
    private readonly tagger: BlockTagger | null = null,
  ) {
    assert(options.sizeBytes % blockSizeBytes === 0, "sizeBytes must be a multiple of 4 KiB");
    const sizeBlocks = options.sizeBytes / blockSizeBytes;
    this.tags = tagger === null ? null : new Int32Array(sizeBlocks);
    this.durableTags = tagger === null ? null : new Int32Array(sizeBlocks);
    assert(options.readLatencyTicksMin >= 1 && options.writeLatencyTicksMin >= 1, "latency >= 1");
    this.options = options;
    this.sizeBlocks = options.sizeBytes / blockSizeBytes;
    this.prng = prng;
  }

  private latency(kind: OpKind): number {
    const o = this.options;
    if (kind === "read") {
      return o.readLatencyTicksMin + Math.floor(this.prng.exponential(o.readLatencyTicksMean));
    }
    return o.writeLatencyTicksMin + Math.floor(this.prng.exponential(o.writeLatencyTicksMean));
  }

  private newOp(kind: OpKind, token: T): Op<T, R> {
    return {
      kind,
      token,
      completeTick: this.tickNow + this.latency(kind),
      submitSeq: this.submitSeq++,
      blockFirst: 0,
      blockCount: 0,
      blocks: null,
      fua: false,
      covers: null,
      record: null,
    };
  }

  private checkRange(offsetBytes: number, lengthBytes: number): void {
    assert(offsetBytes % blockSizeBytes === 0, `disk: offset ${offsetBytes} not 4 KiB aligned`);
    assert(lengthBytes % blockSizeBytes === 0 && lengthBytes > 0, `disk: length ${lengthBytes}`);
    assert(offsetBytes + lengthBytes <= this.options.sizeBytes, "disk: access past the end");
  }

  submitRead(token: T, offsetBytes: number, lengthBytes: number): void {
    this.checkRange(offsetBytes, lengthBytes);
    const op = this.newOp("read", token);
    op.blockFirst = offsetBytes / blockSizeBytes;
    op.blockCount = lengthBytes / blockSizeBytes;
    this.pending.push(op);
  }

  submitWrite(token: T, offsetBytes: number, data: Uint8Array, fua = false): void {
    this.checkRange(offsetBytes, data.length);
    const op = this.newOp("write", token);
    op.blockFirst = offsetBytes / blockSizeBytes;
    op.blockCount = data.length / blockSizeBytes;
    op.blocks = splitBlocks(data);
    op.fua = fua;
    for (let i = 0; i < op.blockCount; i++) {
      const block = op.blocks[i]!;
      const tag = this.tagger === null ? 0 : this.tagger(block, op.blockFirst + i);
      this.pendingLatest.set(op.blockFirst + i, { submitSeq: op.submitSeq, block, tag });
    }
    this.pending.push(op);
  }

  /** Makes durable every write that has completed before now, when the flush completes. */
  submitFlush(token: T): void {
    const op = this.newOp("flush", token);
    op.covers = this.volatileWrites.slice();
    this.pending.push(op);
  }

  /** Appends `record` to the metadata log (treated as immutable from now on). */
  submitMetadataWrite(token: T, record: R): void {
    const op = this.newOp("metadata", token);
    const last = this.metadataPending[this.metadataPending.length - 1];
    // Ordered: never completes before the write issued before it.
    if (last !== undefined && op.completeTick < last.completeTick)
      op.completeTick = last.completeTick;
    op.record = record;
    this.metadataPending.push(op);
    this.pending.push(op);
  }

  /** Completes every operation that is due, in (tick, submission) order. */
  tick(): void {
    this.tickNow++;
    if (this.pending.length === 0) return;
    let due: Op<T, R>[] | null = null;
    const rest: Op<T, R>[] = [];
    for (const op of this.pending) {
      if (op.completeTick <= this.tickNow) (due ??= []).push(op);
      else rest.push(op);
    }
    if (due === null) return;
    this.pending = rest;
    due.sort((a, b) => a.completeTick - b.completeTick || a.submitSeq - b.submitSeq);
    for (const op of due) this.host.diskCompleted(op.token, this.complete(op));
  }

  private complete(op: Op<T, R>): DiskResult {
    const faults = this.faultsEnabled;
    switch (op.kind) {
      case "read": {
        this.stats.reads++;
        if (faults && this.prng.chance(this.options.readErrorProbability)) {
          this.stats.readErrors++;
          return { ok: false, error: "EIO" };
        }
        return { ok: true, data: this.readVisible(op.blockFirst, op.blockCount) };
      }
      case "write":
        return this.completeWrite(op);
      case "flush": {
        this.stats.flushes++;
        for (const w of op.covers!) this.makeDurable(w);
        this.volatileWrites = this.volatileWrites.filter((w) => !w.durable);
        return { ok: true };
      }
      case "metadata": {
        this.stats.metadataWrites++;
        assert(this.metadataPending[0] === op, "metadata writes complete in order");
        this.metadataPending.shift();
        if (faults && this.prng.chance(this.options.metadataWriteErrorProbability)) {
          this.stats.writeErrors++;
          return { ok: false, error: "EIO" };
        }
        this.metadataLog.push(op.record!);
        this.host.metadataDurable?.(op.record!);
        return { ok: true };
      }
    }
  }

  private completeWrite(op: Op<T, R>): DiskResult {
    this.stats.writes++;
    for (let i = 0; i < op.blockCount; i++) {
      const latest = this.pendingLatest.get(op.blockFirst + i);
      if (latest !== undefined && latest.submitSeq === op.submitSeq)
        this.pendingLatest.delete(op.blockFirst + i);
    }
    const blocks = op.blocks!;
    let newBlocks = 0;
    for (let i = 0; i < blocks.length; i++) {
      if (!this.visible.has(op.blockFirst + i) && !this.durable.has(op.blockFirst + i)) newBlocks++;
    }
    if (this.allocatedBlocks() + newBlocks > this.options.capacityBlocksMax) {
      this.stats.writeErrors++;
      return { ok: false, error: "ENOSPC" };
    }
    if (this.faultsEnabled && this.prng.chance(this.options.writeErrorProbability)) {
      this.stats.writeErrors++;
      const prefix = this.prng.int(blocks.length + 1);
      if (prefix > 0)
        this.applyVisible({
          seq: this.writeSeq++,
          blockFirst: op.blockFirst,
          blocks: blocks.slice(0, prefix),
          durable: false,
        });
      return { ok: false, error: "EIO" };
    }
    const w: WriteRecord = {
      seq: this.writeSeq++,
      blockFirst: op.blockFirst,
      blocks,
      durable: false,
    };
    this.applyVisible(w);
    if (op.fua) {
      this.makeDurable(w);
    }
    return { ok: true };
  }

  private setVisible(blockIndex: number, block: Uint8Array): void {
    this.visible.set(blockIndex, block);
    if (this.tags !== null) this.tags[blockIndex] = this.tagger!(block, blockIndex);
  }

  private applyVisible(w: WriteRecord): void {
    for (let i = 0; i < w.blocks.length; i++) this.setVisible(w.blockFirst + i, w.blocks[i]!);
    if (!w.durable) this.volatileWrites.push(w);
  }

  private makeDurable(w: WriteRecord): void {
    if (w.durable) return;
    w.durable = true;
    for (let i = 0; i < w.blocks.length; i++) {
      const block = w.blockFirst + i;
      if ((this.durableSeq.get(block) ?? -1) > w.seq) continue;
      this.durable.set(block, w.blocks[i]!);
      this.durableSeq.set(block, w.seq);
      if (this.durableTags !== null) this.durableTags[block] = this.tagger!(w.blocks[i]!, block);
    }
  }

  private allocatedBlocks(): number {
    return Math.max(this.visible.size, this.durable.size);
  }

  private readVisible(blockFirst: number, blockCount: number): Uint8Array {
    const out = new Uint8Array(blockCount * blockSizeBytes);
    for (let i = 0; i < blockCount; i++) {
      const block = this.visible.get(blockFirst + i);
      if (block !== undefined) out.set(block, i * blockSizeBytes);
    }
    return out;
  }

  private crashOutcome(): CrashOutcome {
    if (this.crashOutcomeForced !== null) return this.crashOutcomeForced;
    const o = this.options;
    if (this.prng.chance(o.crashLostProbability)) return "lost";
    return this.prng.chance(o.crashTornProbability) ? "torn" : "applied";
  }

  /**
   * Power loss: pending completions vanish, each non-durable write is lost, applied or torn,
   * and reads now see only what was durable. Returns the outcomes, for traces and tests.
   */
  crash(): CrashOutcome[] {
    this.stats.crashes++;
    const outcomes: CrashOutcome[] = [];
    const candidates: WriteRecord[] = this.volatileWrites.slice();
    const pendingMetadata: Op<T, R>[] = [];
    for (const op of this.pending) {
      if (op.kind === "write")
        candidates.push({
          seq: this.writeSeq++,
          blockFirst: op.blockFirst,
          blocks: op.blocks!,
          durable: false,
        });
      if (op.kind === "metadata") pendingMetadata.push(op);
    }
    for (const w of candidates) {
      if (w.durable) continue;
      const outcome = this.crashOutcome();
      outcomes.push(outcome);
      if (outcome === "lost") {
        this.stats.crashLost++;
      } else if (outcome === "applied") {
        this.stats.crashApplied++;
        this.makeDurable(w);
      } else {
        this.stats.crashTorn++;
        // A strict prefix; for a one-block write that is nothing at all.
        const prefix = w.blocks.length <= 1 ? 0 : this.prng.range(1, w.blocks.length - 1);
        this.makeDurable({
          seq: w.seq,
          blockFirst: w.blockFirst,
          blocks: w.blocks.slice(0, prefix),
          durable: false,
        });
      }
    }
    this.crashMetadata(outcomes);
    this.pending = [];
    this.pendingLatest.clear();
    this.volatileWrites = [];
    this.visible = new Map(this.durable);
    if (this.tags !== null) this.tags.set(this.durableTags!);
    return outcomes;
  }

  /** Keeps a prefix of the pending metadata writes, maybe tears the next, loses the rest. */
  private crashMetadata(outcomes: CrashOutcome[]): void {
    let stop = false;
    for (const op of this.metadataPending) {
      const outcome = stop ? "lost" : this.crashOutcome();
      outcomes.push(outcome);
      if (outcome === "applied") {
        this.metadataLog.push(op.record!);
        this.host.metadataDurable?.(op.record!);
        continue;
      }
      // Torn: the slot's checksum fails on read, so the reader drops it (and all after it).
      if (outcome === "torn") this.stats.metadataTorn++;
      else this.stats.metadataLost++;
      stop = true;
    }
    this.metadataPending = [];
  }

  /** The metadata records that a restart reads back, in issue order. */
  metadataRecords(): readonly R[] {
    return this.metadataLog;
  }

  /** Reads one 4 KiB block as reads see it now; zeros when never written. For checkers. */
  peekBlock(blockIndex: number): Uint8Array | undefined {
    return this.visible.get(blockIndex);
  }

  /** The block as it will be once the writes already submitted complete. For checkers. */
  peekBlockLatest(blockIndex: number): Uint8Array | undefined {
    const latest = this.pendingLatest.get(blockIndex);
    return latest === undefined ? this.visible.get(blockIndex) : latest.block;
  }

  /** Tag of the block once submitted writes complete (needs a tagger). */
  tagLatest(blockIndex: number): number {
    const latest = this.pendingLatest.get(blockIndex);
    return latest === undefined ? this.tags![blockIndex]! : latest.tag;
  }

  /** Blocks with a write submitted and not completed. */
  pendingBlockIndexes(): IterableIterator<number> {
    return this.pendingLatest.keys();
  }

  /** Reads one 4 KiB block as it would survive a crash now. For checkers. */
  peekBlockDurable(blockIndex: number): Uint8Array | undefined {
    return this.durable.get(blockIndex);
  }

  /** Indexes of every block ever written and visible, in no particular order. */
  visibleBlockIndexes(): IterableIterator<number> {
    return this.visible.keys();
  }

  /** Writes data straight to durable storage with no latency (test setup only). */
  writeDirect(offsetBytes: number, data: Uint8Array): void {
    this.checkRange(offsetBytes, data.length);
    const w: WriteRecord = {
      seq: this.writeSeq++,
      blockFirst: offsetBytes / blockSizeBytes,
      blocks: splitBlocks(data),
      durable: false,
    };
    this.makeDurable(w);
    for (let i = 0; i < w.blocks.length; i++) this.setVisible(w.blockFirst + i, w.blocks[i]!);
  }

  /** Metadata writes issued and not yet completed. */
  metadataPendingCount(): number {
    return this.metadataPending.length;
  }

  pendingCount(): number {
    return this.pending.length;
  }
}

function splitBlocks(data: Uint8Array): Uint8Array[] {
  const count = data.length / blockSizeBytes;
  const blocks: Uint8Array[] = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++)
    blocks[i] = data.slice(i * blockSizeBytes, (i + 1) * blockSizeBytes);
  return blocks;
}
