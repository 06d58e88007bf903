//! One volume's metadata area on disk, for the daemon: read and checked once at attach
//! (refusing a corrupt, foreign or mismatched area with the codec's clear error), then
//! updated by the engine's `metadataWrite` records.
//!
//! Durability model (the engine's contract, types.ts): metadata writes are durable in the
//! order issued. Records are queued; one batch at a time writes the pages of every queued
//! record in order and ends with one fdatasync, then reports every record of the batch
//! complete. A record is reported complete only once it and every earlier one is durable.
//! A failed batch fails its records and every later one (the area is then suspect).

import * as fs from "node:fs";
import { MetadataError } from "../stdx/errors.js";
import { deviceBytesOf, readMd } from "../cli/md.js";
import type { MetadataRecord, NodeId, PersistedMeta } from "../engine/types.js";
import {
  MetadataWriter,
  externalGrowDeviceBytes,
  grownCapacityBytes,
  metadataLayout,
  planMetadataGrow,
  type DecodedArea,
  type MetadataHeader,
  type MetadataWrite,
} from "../engine/ondisk/mod.js";

export interface MetadataLocation {
  /** Backing file or device (holds the area too when `metaPath` is undefined). */
  readonly backing: string;
  /** External metadata file or device. */
  readonly metaPath: string | undefined;
  /**
   * Lowest offset where an area left behind by a grown device can end (the configured
   * volume plus its area); attach scans down to it when the device's end holds none.
   */
  readonly scanDownToBytes?: number;
}

/** Metadata updates queued so far (counted as issued; metrics: DRBD's al_writes, bm_writes). */
export interface MetadataWriteCounters {
  /** Activity-log transactions. */
  readonly alWrites: number;
  /** Bitmap pages (4 KiB) written to the area. */
  readonly bitmapPageWrites: number;
  /** Bits set or cleared by bitmap records (one per 4 KiB block). */
  readonly bitmapBitUpdates: number;
  /** fdatasync calls that made batches durable. */
  readonly syncs: number;
}

interface Pending {
  /** Writes at absolute device offsets; each step but the last ends with fdatasync. */
  readonly steps: readonly (readonly MetadataWrite[])[];
  readonly done: (ok: boolean) => void;
}

export class MetadataStore {
  readonly decoded: DecodedArea;
  readonly path: string;
  private readonly writer: MetadataWriter;
  private areaOffsetBytes: number;
  private readonly backing: string;
  /** Set when the area was found below the end of a grown device (attach log). */
  movedFrom: string | undefined;
  private fd: number;
  private queue: Pending[] = [];
  private busy = false;
  private failed = false;
  private idleWaiters: (() => void)[] = [];
  private alWrites = 0;
  private bitmapPageWrites = 0;
  private bitmapBitUpdates = 0;
  private syncs = 0;

  private constructor(
    decoded: DecodedArea,
    path: string,
    offsetBytes: number,
    fd: number,
    backing: string,
  ) {
    this.decoded = decoded;
    this.backing = backing;
    this.path = path;
    this.areaOffsetBytes = offsetBytes;
    this.fd = fd;
    this.writer = MetadataWriter.fromDecoded(decoded);
  }

  /**
   * Reads the area and checks it against this node: placement, device sizes (readMd) and
   * node id. Throws MetadataError with the codec's explanation when it cannot be used.
   */
  static open(location: MetadataLocation, nodeId: NodeId): MetadataStore {
    const { decoded, metaPath, offsetBytes, movedFrom } = readMd({
      backing: location.backing,
      nodeId,
      ...(location.metaPath !== undefined ? { meta: location.metaPath } : {}),
      ...(location.scanDownToBytes !== undefined
        ? { scanDownToBytes: location.scanDownToBytes }
        : {}),
    });
    if (decoded.header.nodeId !== nodeId)
      throw new MetadataError(
        `${metaPath}: the metadata belongs to node id ${decoded.header.nodeId} but this node ` +
          `is node id ${nodeId} (wrong disk, or create-md with the wrong --node-id?)`,
      );
    let fd: number;
    try {
      fd = fs.openSync(metaPath, "r+");
    } catch (err) {
      throw new MetadataError(`cannot open ${metaPath}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const store = new MetadataStore(decoded, metaPath, offsetBytes, fd, location.backing);
    store.movedFrom = movedFrom;
    return store;
  }

  /** The header as it is once queued writes are durable (it changes on a grow). */
  get header(): MetadataHeader {
    return this.writer.header;
  }

  /**
   * The largest volume the devices can hold now (they may have been grown since attach),
   * in bytes; the current size when they did not grow enough.
   */
  capacityBytes(): number {
    const h = this.writer.header;
    const backingBytes = deviceBytesOf(this.backing);
    const deviceBytes = h.placement === "internal" ? backingBytes : deviceBytesOf(this.path);
    return grownCapacityBytes(h, this.areaOffsetBytes, deviceBytes, backingBytes);
  }

  /** A copy of what the area holds, for `createReplica` (the writer keeps its own mirror). */
  snapshot(): PersistedMeta {
    const m = this.writer.meta;
    return {
      superblock: { ...m.superblock },
      alTransactionSeq: m.alTransactionSeq,
      alExtents: m.alExtents.slice(),
      bitmaps: m.bitmaps.map((b) => b.slice()),
    };
  }

  /** Backing device size that holds a volume of `volumeBytes` and its moved area. */
  deviceBytesFor(volumeBytes: number): number {
    const h = this.writer.header;
    if (h.placement === "external") return volumeBytes;
    const area = metadataLayout(volumeBytes, h.alExtents, h.peerSlots, h.alRingSlots).areaBytes;
    return Math.max(volumeBytes, this.areaOffsetBytes + h.areaBytes) + area;
  }

  /** Queues `record`; `done(ok)` is called once it (and every earlier record) is durable. */
  write(record: MetadataRecord, done: (ok: boolean) => void): void {
    if (this.failed) {
      queueMicrotask(() => done(false));
      return;
    }
    const base = this.areaOffsetBytes;
    const abs = (w: MetadataWrite): MetadataWrite => ({ ...w, offsetBytes: base + w.offsetBytes });
    let steps: readonly (readonly MetadataWrite[])[] | MetadataError;
    if (record.kind === "resize") steps = this.planGrow(record.sizeBlocks * 4096);
    else {
      const writes = this.writer.encodeRecord(record);
      steps = writes instanceof MetadataError ? writes : [writes.map(abs)];
    }
    if (steps instanceof MetadataError) {
      this.failed = true;
      process.stderr.write(`mirra: metadata write refused: ${steps.message}\n`);
      queueMicrotask(() => done(false));
      return;
    }
    if (record.kind === "activityLog") this.alWrites++;
    else if (record.kind === "bitmap") {
      for (const w of steps.flat()) this.bitmapPageWrites += Math.ceil(w.data.length / 4096);
      this.bitmapBitUpdates += record.blockCount;
    }
    this.queue.push({ steps, done });
    this.kick();
  }

  /**
   * Plans moving the area for a volume of `volumeBytes` (relocate.ts; an external metadata
   * file is first extended to make room) and makes the writer describe the moved area, so
   * later records are encoded for it. Returns the steps, at absolute offsets.
   */
  private planGrow(volumeBytes: number): MetadataWrite[][] | MetadataError {
    const h = this.writer.header;
    if (volumeBytes <= h.volumeBytes) return [];
    const state = {
      header: h,
      meta: this.writer.meta,
      superblockSequence: this.writer.superblockSequence,
      areaOffsetBytes: this.areaOffsetBytes,
    };
    let deviceBytes: number;
    try {
      deviceBytes = deviceBytesOf(this.path);
      const needed = externalGrowDeviceBytes(state, volumeBytes);
      if (h.placement === "external" && deviceBytes < needed && fs.statSync(this.path).isFile()) {
        // Extending a file only adds zeroes past its end: the old area stays where it was.
        fs.ftruncateSync(this.fd, needed);
        fs.fsyncSync(this.fd);
        deviceBytes = needed;
      }
    } catch (err) {
      return new MetadataError(`cannot grow ${this.path}: ${(err as Error).message}`);
    }
    const plan = planMetadataGrow(state, volumeBytes, deviceBytes);
    if (plan instanceof MetadataError) return new MetadataError(`${this.path}: ${plan.message}`);
    this.writer.adoptGrow(plan.header, plan.meta, plan.superblockSequence);
    this.areaOffsetBytes = plan.areaOffsetBytes;
    return plan.steps.map((s) => s.writes.slice());
  }

  get counters(): MetadataWriteCounters {
    return {
      alWrites: this.alWrites,
      bitmapPageWrites: this.bitmapPageWrites,
      bitmapBitUpdates: this.bitmapBitUpdates,
      syncs: this.syncs,
    };
  }

  private kick(): void {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const batch = this.queue;
    this.queue = [];
    void this.runBatch(batch).then((ok) => {
      if (!ok) this.failed = true;
      this.busy = false;
      for (const p of batch) p.done(ok);
      if (this.failed) for (const p of this.queue.splice(0)) p.done(false);
      if (this.queue.length > 0) this.kick();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private async runBatch(batch: readonly Pending[]): Promise<boolean> {
    try {
      const sync = (): Promise<void> =>
        new Promise<void>((resolve, reject) =>
          fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
        );
      for (const p of batch) {
        for (const [i, step] of p.steps.entries()) {
          for (const w of step) await writeAll(this.fd, w.data, w.offsetBytes);
          // A grow's steps are ordered by durability (relocate.ts): sync between them.
          if (i < p.steps.length - 1) await sync();
        }
      }
      await sync();
      this.syncs++;
      return true;
    } catch (err) {
      process.stderr.write(
        `mirra: metadata write to ${this.path} failed: ${(err as Error).message}\n`,
      );
      return false;
    }
  }

  /** Waits for queued writes, then closes the descriptor. */
  async close(): Promise<void> {
    if (this.busy || this.queue.length > 0)
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done >= data.length) return resolve();
      fs.write(fd, data, done, data.length - done, position + done, (err, n) => {
        if (err) reject(err);
        else step(done + n);
      });
    };
    step(0);
  });
}
