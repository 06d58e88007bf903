//! Small byte helpers shared by the NBD codecs: a growable input buffer for push parsers and
//! a writer for big-endian fields. Pure: Uint8Array and DataView only.

/** Accumulates pushed chunks so a parser can take whole messages; bounded by its caller. */
export class ByteQueue {
  private data = new Uint8Array(256);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.data.length) {
      const needed = this.length + chunk.length;
      if (needed > this.data.length) {
        const grown = new Uint8Array(Math.max(needed, this.data.length * 2));
        grown.set(this.data.subarray(this.start, this.end));
        this.data = grown;
      } else {
        this.data.copyWithin(0, this.start, this.end);
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.data.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** A view of the next `n` bytes without consuming them; n ≤ length. */
  peek(n: number): Uint8Array {
    return this.data.subarray(this.start, this.start + n);
  }

  /** Consumes and returns a copy of the next `n` bytes; n ≤ length. */
  take(n: number): Uint8Array {
    const out = this.data.slice(this.start, this.start + n);
    this.skip(n);
    return out;
  }

  skip(n: number): void {
    this.start += n;
    if (this.start === this.end) this.start = this.end = 0;
  }

  u32(at: number): number {
    const p = this.start + at;
    return (
      ((this.data[p]! << 24) |
        (this.data[p + 1]! << 16) |
        (this.data[p + 2]! << 8) |
        this.data[p + 3]!) >>>
      0
    );
  }

  u64(at: number): bigint {
    return (BigInt(this.u32(at)) << 32n) | BigInt(this.u32(at + 4));
  }

  takeAll(): Uint8Array {
    return this.take(this.length);
  }
}

/** Builds one message field by field, big-endian as the NBD wire wants. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private at = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.at + n, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.at, v);
    this.at += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.at, v >>> 0);
    this.at += 4;
    return this;
  }

  u64(v: bigint | number): this {
    this.ensure(8);
    this.view.setBigUint64(this.at, BigInt(v));
    this.at += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }

  zeroes(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.at, this.at + n);
    this.at += n;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

export const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes a protocol string; undefined when it is not valid UTF-8 or contains NUL. */
export function decodeString(bytes: Uint8Array): string | undefined {
  try {
    const s = utf8Strict.decode(bytes);
    return s.includes("\0") ? undefined : s;
  } catch {
    return undefined;
  }
}
