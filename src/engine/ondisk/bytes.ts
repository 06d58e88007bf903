//! Little-endian field access for the metadata codec. 64-bit fields hold JavaScript safe
//! integers (< 2^53); a larger value read from disk is reported, never rounded.

import { assert } from "../../stdx/assert.js";

export function putU64(view: DataView, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field holds a safe integer: ${value}`);
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

/** Reads a u64; returns -1 when the value is not a safe integer (caller reports it). */
export function getU64(view: DataView, offset: number): number {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  if (hi > 0x1fffff) return -1;
  return hi * 2 ** 32 + lo;
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
