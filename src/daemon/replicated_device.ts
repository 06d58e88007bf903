//! The BlockDevice seam (src/storage/block_device.ts) on top of a replicated volume, so that
//! the NBD server exports it exactly as it exports a local file.
//!
//! The engine works in whole 4 KiB blocks. NBD clients may send 512-byte-aligned requests:
//! reads are widened to whole blocks and the asked-for bytes copied out; a write that does
//! not cover whole blocks becomes read-modify-write of the blocks it touches. Partial writes
//! run one at a time (and after every earlier write to the device has completed), so two of
//! them never read the same old block and lose one another's bytes; whole-block writes are
//! handed to the engine at once (the engine orders overlapping writes itself).
//!
//! Buffers: the NBD server reuses a write's buffer once the callback ran, and the engine
//! keeps a reference until completion (and the peer links until the socket wrote it), so
//! every write's data is copied once here.
//!
//! TRIM is a hint the engine cannot express: it succeeds without doing anything (canTrim is
//! false, so clients do not send it). WRITE_ZEROES writes zeroes through the engine, so it
//! replicates; FAST_ZERO is refused with ENOTSUP, as the NBD spec asks when zeroing is no
//! faster than writing.

import type { BlockDevice, IoCallback, ZeroOptions } from "../storage/block_device.js";
import type { DoneCallback, ReadCallback } from "./volume_host.js";

/** What the device needs of a replicated volume (VolumeHost): whole-block client IO. */
export interface BlockRequests {
  readonly sizeBytes: number;
  read(offsetBytes: number, lengthBytes: number, cb: ReadCallback): void;
  write(data: Uint8Array, offsetBytes: number, fua: boolean, cb: DoneCallback): void;
  flush(cb: DoneCallback): void;
  /** DRBD's open() and release() of the device, for auto-promote (see BlockDevice.open). */
  open?(cb: DoneCallback): void;
  release?(): void;
}

const blockBytes = 4096;
/** Zeroes are written in chunks of this many bytes. */
const zeroChunkBytes = 1024 * 1024;

function notSupported(): NodeJS.ErrnoException {
  const err = new Error(
    "fast zeroing is not supported by a replicated volume",
  ) as NodeJS.ErrnoException;
  err.code = "ENOTSUP";
  return err;
}

export class ReplicatedDevice implements BlockDevice {
  readonly readOnly = false;
  readonly canTrim = false;
  readonly canFastZero = false;
  /** Partial-block writes waiting for their turn (run one at a time). */
  private readonly partialQueue: (() => void)[] = [];
  private partialRunning = false;
  /** Whole-block writes in flight: a partial write waits for them to drain first. */
  private writesInFlight = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly host: BlockRequests) {}

  /** Read at each NBD negotiation: an online resize grows it under a running export. */
  get sizeBytes(): number {
    return this.host.sizeBytes;
  }

  read(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    cb: IoCallback,
  ): void {
    const first = Math.floor(offsetBytes / blockBytes) * blockBytes;
    const end = Math.ceil((offsetBytes + length) / blockBytes) * blockBytes;
    this.host.read(first, end - first, (err, data) => {
      if (err) return cb(err);
      const start = offsetBytes - first;
      buf.set(data!.subarray(start, start + length), bufOffset);
      cb(null);
    });
  }

  write(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    fua: boolean,
    cb: IoCallback,
  ): void {
    if (offsetBytes % blockBytes === 0 && length % blockBytes === 0 && !this.partialRunning) {
      this.wholeWrite(buf.slice(bufOffset, bufOffset + length), offsetBytes, fua, cb);
      return;
    }
    const data = buf.slice(bufOffset, bufOffset + length);
    this.partialQueue.push(() => this.partialWrite(data, offsetBytes, fua, cb));
    this.maybeRunPartial();
  }

  open(cb: IoCallback): void {
    if (this.host.open) this.host.open(cb);
    else cb(null);
  }

  release(): void {
    this.host.release?.();
  }

  private wholeWrite(data: Uint8Array, offsetBytes: number, fua: boolean, cb: IoCallback): void {
    this.writesInFlight++;
    this.host.write(data, offsetBytes, fua, (err) => {
      this.writesInFlight--;
      if (this.writesInFlight === 0) for (const w of this.drainWaiters.splice(0)) w();
      cb(err);
    });
  }

  private maybeRunPartial(): void {
    if (this.partialRunning) return;
    const next = this.partialQueue.shift();
    if (next === undefined) return;
    this.partialRunning = true;
    if (this.writesInFlight === 0) next();
    else this.drainWaiters.push(next);
  }

  private partialDone(): void {
    this.partialRunning = false;
    this.maybeRunPartial();
  }

  /** Read-modify-write of the blocks `data` touches. */
  private partialWrite(data: Uint8Array, offsetBytes: number, fua: boolean, cb: IoCallback): void {
    const first = Math.floor(offsetBytes / blockBytes) * blockBytes;
    const end = Math.ceil((offsetBytes + data.length) / blockBytes) * blockBytes;
    if (first === offsetBytes && end === offsetBytes + data.length) {
      this.wholeWrite(data, offsetBytes, fua, (err) => {
        this.partialDone();
        cb(err);
      });
      return;
    }
    this.host.read(first, end - first, (err, old) => {
      if (err) {
        this.partialDone();
        return cb(err);
      }
      const merged = new Uint8Array(end - first);
      merged.set(old!);
      merged.set(data, offsetBytes - first);
      this.wholeWrite(merged, first, fua, (werr) => {
        this.partialDone();
        cb(werr);
      });
    });
  }

  flush(cb: IoCallback): void {
    this.host.flush(cb);
  }

  trim(_offsetBytes: number, _length: number, _fua: boolean, cb: IoCallback): void {
    queueMicrotask(() => cb(null));
  }

  writeZeroes(offsetBytes: number, length: number, options: ZeroOptions, cb: IoCallback): void {
    if (options.fastZero) {
      queueMicrotask(() => cb(notSupported()));
      return;
    }
    const step = (at: number): void => {
      // FUA covers the whole range: a flush after the last chunk makes every chunk durable.
      if (at >= offsetBytes + length) return options.fua ? this.flush(cb) : cb(null);
      const n = Math.min(zeroChunkBytes, offsetBytes + length - at);
      this.write(new Uint8Array(n), 0, n, at, false, (err) => (err ? cb(err) : step(at + n)));
    };
    step(offsetBytes);
  }

  /** The volume host owns the replica; closing the export releases nothing. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
