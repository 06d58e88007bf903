//! The activity log on disk: a ring of transaction slots. Each transaction names the FULL set
//! of hot extents after it (not a delta), so recovery needs only the newest valid one.
//! Transaction sequence s lives in slot s mod R. A torn write fails its checksum and is
//! ignored, so the previous transaction (still intact in its own slot) wins: the extents it
//! names are a superset of what was hot before the torn transaction's writes were issued,
//! because the engine issues a write to a new extent only after its transaction completed.
//!
//! Decision table for one slot (legend: M = magic present, C = checksum matches):
//!   row  condition                                  decision
//!   @Z   all zero                                   empty, skip
//!   @T   !M or !C                                   torn or never written, skip
//!   @W   M, C, seq mod R != slot index              misdirected write: refuse the area
//!   @B   M, C, count > al-extents or extent beyond  impossible content: refuse the area
//!        the volume or duplicate extent
//!   @V   M, C, otherwise                            valid; the highest sequence wins

import { crc32c } from "./crc32c.js";
import { getU64, isAllZero, putU64, viewOf } from "./bytes.js";
import { alTransactionHeaderBytes } from "./layout.js";
import { assert } from "../../stdx/assert.js";

/** "MALT" in ASCII: the first 4 bytes of every valid AL transaction slot. */
export const alMagic: Uint8Array = new Uint8Array([0x4d, 0x41, 0x4c, 0x54]);

export const alOffset = {
  magic: 0,
  checksum: 4,
  sequence: 8,
  count: 16,
  reserved: 20,
  extents: alTransactionHeaderBytes,
} as const;

export interface AlGeometry {
  readonly alExtents: number;
  readonly alRingSlots: number;
  readonly alSlotBytes: number;
  /** Extent numbers must be below this: ceil(volume bytes / extent bytes). */
  readonly extentCount: number;
}

export interface AlRecovery {
  /** Sequence of the newest valid transaction; 0 when the ring holds none. */
  readonly sequence: number;
  readonly extents: number[];
  readonly slotsValid: number;
  /** Slots that hold bytes but no valid transaction (torn or never completed). */
  readonly slotsTorn: number;
}

function checksumOf(slot: Uint8Array, usedBytes: number): number {
  return crc32c(slot, crc32c(slot, 0, 0, alOffset.checksum), alOffset.sequence, usedBytes);
}

/** Encodes transaction `sequence` naming `extents` into one slot of `alSlotBytes`. */
export function encodeAlTransaction(
  geometry: AlGeometry,
  sequence: number,
  extents: readonly number[],
): Uint8Array {
  assert(sequence >= 1, "AL transaction sequence starts at 1");
  assert(extents.length <= geometry.alExtents, "AL transaction fits al-extents");
  const slot = new Uint8Array(geometry.alSlotBytes);
  const view = viewOf(slot);
  slot.set(alMagic, alOffset.magic);
  putU64(view, alOffset.sequence, sequence);
  view.setUint32(alOffset.count, extents.length, true);
  extents.forEach((e, i) => {
    assert(Number.isInteger(e) && e >= 0 && e < geometry.extentCount, "AL extent in volume");
    view.setUint32(alOffset.extents + 4 * i, e, true);
  });
  const used = alOffset.extents + 4 * extents.length;
  view.setUint32(alOffset.checksum, checksumOf(slot, used), true);
  return slot;
}

type SlotVerdict =
  | { readonly kind: "skip"; readonly torn: boolean }
  | { readonly kind: "valid"; readonly sequence: number; readonly extents: number[] }
  | { readonly kind: "refuse"; readonly detail: string };

function decodeSlot(geometry: AlGeometry, slot: Uint8Array, index: number): SlotVerdict {
  if (isAllZero(slot)) return { kind: "skip", torn: false };
  for (let i = 0; i < alMagic.length; i++)
    if (slot[i] !== alMagic[i]) return { kind: "skip", torn: true };
  const view = viewOf(slot);
  const count = view.getUint32(alOffset.count, true);
  const used = alOffset.extents + 4 * count;
  if (count > geometry.alExtents || used > slot.length) return { kind: "skip", torn: true };
  if (view.getUint32(alOffset.checksum, true) !== checksumOf(slot, used))
    return { kind: "skip", torn: true };
  const sequence = getU64(view, alOffset.sequence);
  if (sequence < 1) return { kind: "refuse", detail: `slot ${index} has sequence 0 or > 2^53` };
  if (sequence % geometry.alRingSlots !== index)
    return {
      kind: "refuse",
      detail: `slot ${index} holds transaction ${sequence}, which belongs in slot ${sequence % geometry.alRingSlots} (misdirected write)`,
    };
  const extents: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const e = view.getUint32(alOffset.extents + 4 * i, true);
    if (e >= geometry.extentCount || seen.has(e))
      return { kind: "refuse", detail: `transaction ${sequence} names bad extent ${e}` };
    seen.add(e);
    extents.push(e);
  }
  return { kind: "valid", sequence, extents };
}

/** Recovers the newest valid transaction from the ring bytes (R slots back to back). */
export function recoverAlRing(
  geometry: AlGeometry,
  ring: Uint8Array,
): AlRecovery | { readonly refused: string } {
  assert(ring.length === geometry.alRingSlots * geometry.alSlotBytes, "AL ring size");
  let bestSequence = 0;
  let bestExtents: number[] = [];
  let slotsValid = 0;
  let slotsTorn = 0;
  for (let i = 0; i < geometry.alRingSlots; i++) {
    const start = i * geometry.alSlotBytes;
    const verdict = decodeSlot(geometry, ring.subarray(start, start + geometry.alSlotBytes), i);
    if (verdict.kind === "refuse") return { refused: verdict.detail };
    if (verdict.kind === "skip") {
      if (verdict.torn) slotsTorn++;
      continue;
    }
    slotsValid++;
    if (verdict.sequence > bestSequence) {
      bestSequence = verdict.sequence;
      bestExtents = verdict.extents;
    }
  }
  return { sequence: bestSequence, extents: bestExtents, slotsValid, slotsTorn };
}
