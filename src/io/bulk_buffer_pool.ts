//! A pool of same-sized buffers for bulk data that passes through quickly: a resync source's
//! 1 MiB reads (sent to the peer, then dropped) and a resync target's received frames
//! (written to the disk, then dropped). A fresh 1 MiB Buffer each time is external memory
//! to V8, whose growth starts a full mark-compact every few tens of MB, and fresh pages,
//! which the kernel zeroes on first touch: a resync source spent over a third of its CPU in
//! the garbage collector, a target 15% zeroing pages.
//!
//! Unlike the NBD server's per-size pool (nbd/buffer_pool.ts), whose caller owns each buffer
//! outright, these buffers come back as views handed around by the engine (see "dataDone"), so
//! ownership is checked. It is strict because a buffer handed out twice would be overwritten while still
//! in use: `give` takes back only memory this pool made, each buffer at most once until it is
//! taken again, whichever view of it is given. A buffer never given back is simply
//! collected, so a caller unsure whether anyone else still holds one must not give it back.

import { assert } from "../stdx/assert.js";

export class BulkBufferPool {
  private readonly idle: Buffer[] = [];
  /** The whole buffer of each ArrayBuffer this pool made. */
  private readonly made = new WeakMap<ArrayBufferLike, Buffer>();
  private readonly idleNow = new WeakSet<ArrayBufferLike>();

  /**
   * @param bytes size of every buffer of the pool
   * @param idleMax buffers kept while unused; more given back are left to the collector
   * @param allocate makes a buffer of `bytes` (for example page-aligned memory)
   */
  constructor(
    readonly bytes: number,
    private readonly idleMax: number,
    private readonly allocate: (bytes: number) => Buffer = (n) => Buffer.allocUnsafeSlow(n),
  ) {
    assert(Number.isInteger(bytes) && bytes > 0, "pool buffer size");
    assert(Number.isInteger(idleMax) && idleMax >= 0, "pool idle bound");
  }

  /** A whole buffer of `bytes`, not zeroed. */
  take(): Buffer {
    const buf = this.idle.pop();
    if (buf !== undefined) {
      this.idleNow.delete(buf.buffer);
      return buf;
    }
    const fresh = this.allocate(this.bytes);
    assert(
      fresh.length === this.bytes &&
        fresh.buffer.byteLength === this.bytes &&
        !this.made.has(fresh.buffer),
      "a pool buffer is its own whole memory",
    );
    this.made.set(fresh.buffer, fresh);
    return fresh;
  }

  /** Whether `view` lies in one of this pool's buffers (given back or not). */
  owns(view: Uint8Array): boolean {
    return this.made.has(view.buffer);
  }

  /**
   * Returns the buffer `view` lies in, which nobody uses any more; views of foreign memory
   * and of buffers already returned are ignored.
   */
  give(view: Uint8Array): void {
    const whole = this.made.get(view.buffer);
    if (whole === undefined || this.idleNow.has(view.buffer)) return;
    if (this.idle.length >= this.idleMax) return;
    this.idleNow.add(view.buffer);
    this.idle.push(whole);
  }

  /** Buffers waiting to be taken again. */
  get idleCount(): number {
    return this.idle.length;
  }
}
