//! An out-of-sync bitmap: one bit per 4 KiB block, set when the block may differ between
//! this node and one peer. The byte layout (bit b lives in byte b>>>3, bit b&7) is the
//! persisted layout of meta.ts, so loading and saving are copies.
//! Invariant: `setBits` always equals the number of set bits below `sizeBlocks`; bits at or
//! above `sizeBlocks` are never set.

import { assert } from "../stdx/assert.js";
import type { BitmapView } from "./types.js";

export class Bitmap implements BitmapView {
  sizeBlocks: number;
  private bytes: Uint8Array;
  private setBits = 0;

  constructor(sizeBlocks: number, bytes?: Uint8Array) {
    assert(Number.isInteger(sizeBlocks) && sizeBlocks >= 0, "bitmap size");
    this.sizeBlocks = sizeBlocks;
    this.bytes = new Uint8Array(Math.ceil(sizeBlocks / 8));
    if (bytes !== undefined) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      // Bits past the end would break the count invariant; drop them.
      if (sizeBlocks % 8 !== 0 && this.bytes.length > 0) {
        this.bytes[this.bytes.length - 1]! &= (1 << (sizeBlocks % 8)) - 1;
      }
      for (let i = 0; i < this.bytes.length; i++) this.setBits += popcount8(this.bytes[i]!);
    }
  }

  isSet(block: number): boolean {
    assert(block >= 0 && block < this.sizeBlocks, "bitmap block in range");
    return (this.bytes[block >>> 3]! & (1 << (block & 7))) !== 0;
  }

  count(): number {
    return this.setBits;
  }

  /** Sets one bit; returns true when it was clear. */
  set(block: number): boolean {
    assert(block >= 0 && block < this.sizeBlocks, "bitmap block in range");
    const mask = 1 << (block & 7);
    const byte = this.bytes[block >>> 3]!;
    if ((byte & mask) !== 0) return false;
    this.bytes[block >>> 3] = byte | mask;
    this.setBits++;
    return true;
  }

  /** Clears one bit; returns true when it was set. */
  clear(block: number): boolean {
    assert(block >= 0 && block < this.sizeBlocks, "bitmap block in range");
    const mask = 1 << (block & 7);
    const byte = this.bytes[block >>> 3]!;
    if ((byte & mask) === 0) return false;
    this.bytes[block >>> 3] = byte & ~mask;
    this.setBits--;
    return true;
  }

  /** Sets [first, first + count); returns how many bits changed. */
  setRange(first: number, count: number): number {
    assert(first >= 0 && count >= 0 && first + count <= this.sizeBlocks, "range in bitmap");
    let changed = 0;
    for (let b = first; b < first + count; b++) if (this.set(b)) changed++;
    return changed;
  }

  /** Clears [first, first + count); returns how many bits changed. */
  clearRange(first: number, count: number): number {
    assert(first >= 0 && count >= 0 && first + count <= this.sizeBlocks, "range in bitmap");
    let changed = 0;
    for (let b = first; b < first + count; b++) if (this.clear(b)) changed++;
    return changed;
  }

  /** True when any bit in [first, first + count) is set. */
  anySet(first: number, count: number): boolean {
    for (let b = first; b < first + count; b++) if (this.isSet(b)) return true;
    return false;
  }

  setAll(): void {
    this.setRange(0, this.sizeBlocks);
  }

  clearAll(): void {
    this.bytes.fill(0);
    this.setBits = 0;
  }

  /** The first set bit at or after `from`, or -1. Skips zero bytes quickly. */
  findNextSet(from: number): number {
    if (from < 0) from = 0;
    let b = from;
    while (b < this.sizeBlocks) {
      const byte = this.bytes[b >>> 3]!;
      if (byte === 0) {
        b = ((b >>> 3) + 1) << 3;
        continue;
      }
      if ((byte & (1 << (b & 7))) !== 0) return b;
      b++;
    }
    return -1;
  }

  /** Set bits as [first, count, first, count, ...] runs; the bitmap-exchange encoding. */
  toRanges(): number[] {
    const ranges: number[] = [];
    let b = this.findNextSet(0);
    while (b >= 0) {
      let end = b + 1;
      while (end < this.sizeBlocks && this.isSet(end)) end++;
      ranges.push(b, end - b);
      b = this.findNextSet(end);
    }
    return ranges;
  }

  /** ORs runs produced by toRanges into this bitmap; returns how many bits changed. */
  orRanges(ranges: readonly number[]): number {
    assert(ranges.length % 2 === 0, "ranges come in pairs");
    let changed = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      const first = ranges[i]!;
      const count = Math.min(ranges[i + 1]!, this.sizeBlocks - first);
      if (first >= this.sizeBlocks || count <= 0) continue;
      changed += this.setRange(first, count);
    }
    return changed;
  }

  /** Online grow: the new blocks [old size, sizeBlocks) start clear. */
  grow(sizeBlocks: number): void {
    assert(Number.isInteger(sizeBlocks) && sizeBlocks >= this.sizeBlocks, "bitmaps only grow");
    const bytes = new Uint8Array(Math.ceil(sizeBlocks / 8));
    bytes.set(this.bytes);
    this.bytes = bytes;
    this.sizeBlocks = sizeBlocks;
  }

  /** A copy of the bytes in the persisted layout. */
  toBytes(): Uint8Array {
    return this.bytes.slice();
  }
}

function popcount8(x: number): number {
  x = x - ((x >>> 1) & 0x55);
  x = (x & 0x33) + ((x >>> 2) & 0x33);
  return (x + (x >>> 4)) & 0x0f;
}
