//! Self-describing block payloads for the simulator's client workload.
//!
//! Every 4 KiB block a simulated client writes starts with a 16-byte tag (write id, block
//! index, writer node, check word) and is filled with a byte pattern derived from the write id,
//! so that a checker can tell from the bytes alone which write put a block there, and that a
//! block copied to the wrong place or torn inside itself is caught. A never-written block is all
//! zeros, which decodes as write id 0.

import { assert } from "../stdx/assert.js";

export const blockSizeBytes = 4096;
const tagCheck = 0x5a17c0de;

/** Builds `blockCount` tagged blocks for write `writeId`, starting at block `firstBlock`. */
export function payloadEncode(
  writeId: number,
  firstBlock: number,
  blockCount: number,
  writer: number,
): Uint8Array {
  assert(writeId > 0 && writeId <= 0xffffffff, "writeId in 1..2^32-1");
  const out = new Uint8Array(blockCount * blockSizeBytes);
  const view = new DataView(out.buffer);
  const fill = (writeId * 31 + 7) & 0xff;
  out.fill(fill);
  for (let i = 0; i < blockCount; i++) {
    const base = i * blockSizeBytes;
    const block = firstBlock + i;
    view.setUint32(base, writeId, true);
    view.setUint32(base + 4, block, true);
    view.setUint32(base + 8, writer, true);
    view.setUint32(base + 12, (writeId ^ block ^ writer ^ tagCheck) >>> 0, true);
  }
  return out;
}

const tagCache = new WeakMap<Uint8Array, number>();

/**
 * `payloadWriteId` of one whole 4 KiB block object, memoised: simulated disks never mutate a
 * stored block (they replace it), so a block's tag is computed once.
 */
export function payloadBlockTag(block: Uint8Array, blockIndex: number): number {
  const cached = tagCache.get(block);
  if (cached !== undefined) return cached;
  const tag = payloadWriteId(block, 0, blockIndex);
  tagCache.set(block, tag);
  return tag;
}

/** A block's tag: the write that put it there (0: never written), or -1 when it is garbage. */
export function payloadWriteId(
  data: Uint8Array | undefined,
  offsetBytes = 0,
  blockExpected = -1,
): number {
  if (data === undefined) return 0;
  const view = new DataView(data.buffer, data.byteOffset + offsetBytes, blockSizeBytes);
  const writeId = view.getUint32(0, true);
  const block = view.getUint32(4, true);
  const writer = view.getUint32(8, true);
  const check = view.getUint32(12, true);
  if (writeId === 0 && block === 0 && writer === 0 && check === 0) {
    return isZero(data, offsetBytes) ? 0 : -1;
  }
  if ((writeId ^ block ^ writer ^ tagCheck) >>> 0 !== check) return -1;
  if (blockExpected >= 0 && block !== blockExpected) return -1;
  const fill = (writeId * 31 + 7) & 0xff;
  // Spot-check the fill (the last byte and one in the middle) to catch torn blocks cheaply.
  if (data[offsetBytes + blockSizeBytes - 1] !== fill || data[offsetBytes + 2048] !== fill)
    return -1;
  return writeId;
}

function isZero(data: Uint8Array, offsetBytes: number): boolean {
  for (let i = offsetBytes; i < offsetBytes + blockSizeBytes; i++) if (data[i] !== 0) return false;
  return true;
}
