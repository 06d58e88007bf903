//! The seam between an export and what stores its bytes. The NBD server speaks only to a
//! BlockDevice; a local file or disk implements it today and the replicated volume of the
//! engine implements it later, so the export path is the same for both.
//!
//! Completion is by callback, not promise: the hot path passes one pre-bound function per
//! pooled request instead of allocating a promise and a closure for every IO.

/** Called once when an operation ends; `err` carries `code` (EIO, ENOSPC, ...) on failure. */
export type IoCallback = (err: NodeJS.ErrnoException | null) => void;

export interface ZeroOptions {
  /** The range must stay allocated (NBD_CMD_FLAG_NO_HOLE): zero it, do not punch it. */
  readonly noHole: boolean;
  /** Fail with ENOTSUP rather than fall back to writing zeroes (NBD_CMD_FLAG_FAST_ZERO). */
  readonly fastZero: boolean;
  /** Durable before the callback (NBD_CMD_FLAG_FUA). */
  readonly fua: boolean;
}

export interface BlockDevice {
  /** Size in bytes; fixed while the device is open. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** TRIM deallocates space (a hint: a device that cannot still answers TRIM with success). */
  readonly canTrim: boolean;
  /** Zeroing is cheaper than writing zeroes, so FAST_ZERO can be honoured. */
  readonly canFastZero: boolean;
  /** Reads `length` bytes at `offsetBytes` into `buf[bufOffset..]`. */
  read(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    cb: IoCallback,
  ): void;
  /** Writes; with `fua` the data is on stable storage before `cb`. */
  write(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    fua: boolean,
    cb: IoCallback,
  ): void;
  /**
   * Optional: writes synchronously if that cannot block, so the caller may pass a buffer it
   * will reuse right after. Returns null when written, the error when it failed, or false,
   * having written nothing, when write() must be used instead. Never durable by itself.
   */
  writeNow?(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
  ): NodeJS.ErrnoException | null | false;
  /** Makes every write completed before this call durable. */
  flush(cb: IoCallback): void;
  trim(offsetBytes: number, length: number, fua: boolean, cb: IoCallback): void;
  writeZeroes(offsetBytes: number, length: number, options: ZeroOptions, cb: IoCallback): void;
  /**
   * Optional, DRBD's open(): a client is about to use the device for writing (an NBD client
   * chose a writable export). A replicated device may promote its node (auto-promote); the
   * callback's error says why it could not, and the client is served anyway (writes fail).
   * Each call is matched by one release() when that client is gone.
   */
  open?(cb: IoCallback): void;
  /** Optional, DRBD's release(): the client of an earlier open() is gone. */
  release?(): void;
  /** Flushes and releases the device; IO after close fails. */
  close(): Promise<void>;
}
