//! The socket read buffers of one connection, from which large WRITE payloads go to the device
//! in place instead of being copied out first.
//!
//! Reads land one after another in a slab (2 MiB): each read gets the slab's unused tail, so
//! a payload that spans several reads still ends up contiguous. A request keeps its payload's
//! slab pinned until the device is done with it; a slab with nothing pinned and no payload
//! arriving is reused from its start. When the tail gets short, reading moves to a fresh slab
//! (the head of a payload still arriving is copied over: a fraction of one payload per slab),
//! and the old slab returns to the free list once its last pin is released.
//!
//! Memory: a retired slab that is still pinned counts whole against the connection's
//! in-flight bytes (`retiredPinnedBytes`), so a client cannot hold many slabs with a few
//! small requests.

export const SLAB_BYTES = 2 * 1024 * 1024;
/** Reading moves to a fresh slab when less than this is left (and something is pinned). */
const READ_ROOM_MIN = 256 * 1024;
/** Payloads larger than this are copied into their own buffer, as before. */
export const IN_PLACE_PAYLOAD_MAX = 512 * 1024;
const FREE_SLABS_MAX = 4;

export class ReadSlab {
  readonly buf: Uint8Array;
  /** Requests whose payload is in this slab and not yet written. */
  pins = 0;
  /** No longer read into: returns to the free list at its last unpin. */
  retired = false;

  constructor(bytes: number) {
    this.buf = new Uint8Array(bytes);
  }
}

export class ReadSlabs {
  private slab: ReadSlab;
  /** Bytes of the current slab that hold received data. */
  private fill = 0;
  private readonly free: ReadSlab[] = [];
  /** Where the payload arriving in place starts in the current slab, or -1. */
  private partialStart = -1;
  private partialLength = 0;
  /** Bytes of retired slabs still pinned (see the module comment). */
  retiredPinnedBytes = 0;

  constructor(private readonly slabBytes = SLAB_BYTES) {
    this.slab = new ReadSlab(slabBytes);
  }

  /** The buffer the next socket read goes into. */
  readTarget(): Uint8Array {
    const slab = this.slab;
    if (this.partialStart < 0) {
      if (slab.pins === 0) this.fill = 0;
      else if (slab.buf.length - this.fill < READ_ROOM_MIN) this.rotate();
    } else {
      // The rest of the payload must fit behind what arrived, to stay contiguous.
      if (slab.buf.length < this.partialStart + this.partialLength) this.rotate();
    }
    return this.fill === 0 ? this.slab.buf : this.slab.buf.subarray(this.fill);
  }

  /** `n` bytes were read into the last readTarget() and parsed. */
  received(n: number): void {
    this.fill += n;
  }

  /** Whether `chunk` is (part of) the last read target: payloads in it may stay in place. */
  holds(chunk: Uint8Array): boolean {
    return chunk.buffer === this.slab.buf.buffer;
  }

  /**
   * A payload of `length` bytes starts at `chunk[at]` (a chunk `holds` accepted) and arrives
   * over the next reads; `receiving` tracks it until `completeInPlace`.
   */
  beginInPlace(chunk: Uint8Array, at: number, length: number): void {
    this.partialStart = chunk.byteOffset - this.slab.buf.byteOffset + at;
    this.partialLength = length;
  }

  /** The payload begun with beginInPlace has fully arrived: pins it and returns it. */
  completeInPlace(): { slab: ReadSlab; payload: Uint8Array } {
    const start = this.partialStart;
    this.partialStart = -1;
    return this.pinRange(this.slab, start, this.partialLength);
  }

  /** Pins a payload that arrived whole in `chunk[at..at+length]` (a chunk `holds` accepted). */
  pin(chunk: Uint8Array, at: number, length: number): { slab: ReadSlab; payload: Uint8Array } {
    return this.pinRange(this.slab, chunk.byteOffset - this.slab.buf.byteOffset + at, length);
  }

  /** The device is done with a payload pinned in `slab`. */
  unpin(slab: ReadSlab): void {
    slab.pins--;
    if (slab.pins > 0 || !slab.retired) return;
    slab.retired = false;
    this.retiredPinnedBytes -= slab.buf.length;
    if (this.free.length < FREE_SLABS_MAX) this.free.push(slab);
  }

  private pinRange(
    slab: ReadSlab,
    start: number,
    length: number,
  ): { slab: ReadSlab; payload: Uint8Array } {
    slab.pins++;
    return { slab, payload: slab.buf.subarray(start, start + length) };
  }

  /** Moves reading to a free slab, carrying over the head of a payload still arriving. */
  private rotate(): void {
    const old = this.slab;
    const next = this.free.pop() ?? new ReadSlab(this.slabBytes);
    let fill = 0;
    if (this.partialStart >= 0) {
      next.buf.set(old.buf.subarray(this.partialStart, this.fill), 0);
      fill = this.fill - this.partialStart;
      this.partialStart = 0;
    }
    if (old.pins > 0) {
      old.retired = true;
      this.retiredPinnedBytes += old.buf.length;
    } else if (this.free.length < FREE_SLABS_MAX) {
      this.free.push(old);
    }
    this.slab = next;
    this.fill = fill;
  }
}
