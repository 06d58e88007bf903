//! The superblock: geometry, identity and generation identifiers, in one checksummed 4 KiB
//! slot. Two slots alternate (sequence s lives in slot s mod 2), so a torn superblock write
//! damages only the copy being replaced and the reader falls back to the other, older one.
//!
//! Reading a slot yields exactly one of: a valid superblock, or a named problem (empty,
//! foreign, torn/corrupt, unsupported version, impossible fields). Fields are validated even
//! when the checksum matches: a checksum proves the bytes are what some writer wrote, not
//! that the writer was sane.

import type { NodeId, SuperblockRecord } from "../types.js";
import { crc32c } from "./crc32c.js";
import { getU64, isAllZero, putU64, viewOf } from "./bytes.js";
import {
  bitmapBlockBytes,
  geometryProblem,
  metadataLayout,
  peerSlotsMax,
  superblockSlotBytes,
} from "./layout.js";
import { assert } from "../../stdx/assert.js";

/** "MIRRA-MD" in ASCII: the first 8 bytes of every superblock slot. */
export const superblockMagic: Uint8Array = new Uint8Array([
  0x4d, 0x49, 0x52, 0x52, 0x41, 0x2d, 0x4d, 0x44,
]);
export const formatVersion = 1;
/** History UUIDs the superblock has room for (the engine keeps fewer). */
export const historyUuidsOnDiskMax = 16;
/** A peer slot not yet bound to a node id. */
export const slotFree = 0xff;

export const flagConsistent = 1 << 0;
export const flagWasUpToDate = 1 << 1;
export const flagPrimary = 1 << 2;
export const flagCrashedPrimary = 1 << 3;
/** The volume size was set by `mirra adm resize`: it, not the resource file, is the size. */
export const flagSizeAgreed = 1 << 4;
export const flagInternal = 1 << 8;
const flagsKnown =
  flagConsistent |
  flagWasUpToDate |
  flagPrimary |
  flagCrashedPrimary |
  flagSizeAgreed |
  flagInternal;

/** Field offsets inside a superblock slot; docs/metadata.md has the same table. */
export const sbOffset = {
  magic: 0,
  version: 8,
  flags: 12,
  sequence: 16,
  volumeBytes: 24,
  blockBytes: 32,
  alExtentBytes: 36,
  alExtents: 40,
  alRingSlots: 44,
  peerSlots: 48,
  nodeId: 52,
  areaBytes: 56,
  currentUuid: 64,
  uuidCounter: 72,
  historyCount: 80,
  reserved: 84,
  history: 88,
  bitmapUuids: 88 + 8 * historyUuidsOnDiskMax,
  slotNodeIds: 88 + 8 * historyUuidsOnDiskMax + 8 * 32,
  checksum: superblockSlotBytes - 4,
} as const;

/**
 * Every field of SuperblockRecord, checked by the compiler in both directions: a field added
 * to the engine's record fails to compile here until the format stores it.
 */
export const superblockFieldsStored: Record<keyof SuperblockRecord, true> = {
  currentUuid: true,
  bitmapUuids: true,
  historyUuids: true,
  uuidCounter: true,
  consistent: true,
  wasUpToDate: true,
  primary: true,
  crashedPrimary: true,
};

/** The part of the superblock that does not change while the area is in use. */
export interface MetadataHeader {
  readonly volumeBytes: number;
  readonly alExtentBytes: number;
  readonly alExtents: number;
  readonly alRingSlots: number;
  readonly peerSlots: number;
  /** This node's id; its own bitmap slot does not exist. */
  readonly nodeId: NodeId;
  readonly placement: "internal" | "external";
  readonly areaBytes: number;
  /** Per peer slot, the node id it tracks, or `slotFree`. Ids are unique, never nodeId. */
  readonly slotNodeIds: readonly number[];
  /** Set once an online resize agreed on `volumeBytes` (flag bit 4). */
  readonly sizeAgreed?: boolean;
}

export interface DecodedSuperblock {
  readonly header: MetadataHeader;
  readonly superblock: SuperblockRecord;
  /** Write sequence of this copy; the next write uses sequence + 1 (the other slot). */
  readonly sequence: number;
}

export type SlotProblem = "empty" | "foreign" | "corrupt" | "version" | "invalid";

export type SlotResult =
  | { readonly ok: true; readonly decoded: DecodedSuperblock }
  | { readonly ok: false; readonly problem: SlotProblem; readonly detail: string };

/** Encodes one superblock slot (4096 bytes) for write sequence `sequence`. */
export function encodeSuperblock(
  header: MetadataHeader,
  superblock: SuperblockRecord,
  sequence: number,
): Uint8Array {
  const problem = headerProblem(header);
  assert(problem === undefined, `superblock header: ${problem}`);
  assert(superblock.historyUuids.length <= historyUuidsOnDiskMax, "history fits on disk");
  assert(superblock.bitmapUuids.length <= 32, "bitmap uuids per node id");
  const bytes = new Uint8Array(superblockSlotBytes);
  const view = viewOf(bytes);
  bytes.set(superblockMagic, sbOffset.magic);
  view.setUint32(sbOffset.version, formatVersion, true);
  let flags = header.placement === "internal" ? flagInternal : 0;
  if (header.sizeAgreed === true) flags |= flagSizeAgreed;
  if (superblock.consistent) flags |= flagConsistent;
  if (superblock.wasUpToDate) flags |= flagWasUpToDate;
  if (superblock.primary) flags |= flagPrimary;
  if (superblock.crashedPrimary) flags |= flagCrashedPrimary;
  view.setUint32(sbOffset.flags, flags, true);
  putU64(view, sbOffset.sequence, sequence);
  putU64(view, sbOffset.volumeBytes, header.volumeBytes);
  view.setUint32(sbOffset.blockBytes, bitmapBlockBytes, true);
  view.setUint32(sbOffset.alExtentBytes, header.alExtentBytes, true);
  view.setUint32(sbOffset.alExtents, header.alExtents, true);
  view.setUint32(sbOffset.alRingSlots, header.alRingSlots, true);
  view.setUint32(sbOffset.peerSlots, header.peerSlots, true);
  view.setUint32(sbOffset.nodeId, header.nodeId, true);
  putU64(view, sbOffset.areaBytes, header.areaBytes);
  putU64(view, sbOffset.currentUuid, superblock.currentUuid);
  putU64(view, sbOffset.uuidCounter, superblock.uuidCounter);
  view.setUint32(sbOffset.historyCount, superblock.historyUuids.length, true);
  superblock.historyUuids.forEach((u, i) => putU64(view, sbOffset.history + 8 * i, u));
  superblock.bitmapUuids.forEach((u, i) => putU64(view, sbOffset.bitmapUuids + 8 * i, u));
  bytes.fill(slotFree, sbOffset.slotNodeIds, sbOffset.slotNodeIds + peerSlotsMax);
  header.slotNodeIds.forEach((id, i) => (bytes[sbOffset.slotNodeIds + i] = id));
  view.setUint32(sbOffset.checksum, crc32c(bytes, 0, 0, sbOffset.checksum), true);
  // Paired assertion: what we write must read back as what we meant.
  const back = decodeSuperblock(bytes);
  assert(back.ok && back.decoded.sequence === sequence, "superblock reads back");
  return bytes;
}

/** Decodes one superblock slot; never throws on bad input. */
export function decodeSuperblock(slot: Uint8Array): SlotResult {
  assert(slot.length === superblockSlotBytes, "superblock slot size");
  const view = viewOf(slot);
  if (isAllZero(slot)) return fail("empty", "the slot is all zeroes");
  for (let i = 0; i < superblockMagic.length; i++) {
    if (slot[i] !== superblockMagic[i]) return fail("foreign", "no mirra magic");
  }
  const stored = view.getUint32(sbOffset.checksum, true);
  const computed = crc32c(slot, 0, 0, sbOffset.checksum);
  if (stored !== computed) {
    const hex = (n: number): string => "0x" + n.toString(16).padStart(8, "0");
    return fail("corrupt", `checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`);
  }
  const version = view.getUint32(sbOffset.version, true);
  if (version !== formatVersion) {
    return fail("version", `format version ${version}; this mirra reads version ${formatVersion}`);
  }
  const flags = view.getUint32(sbOffset.flags, true);
  if ((flags & ~flagsKnown) !== 0) return fail("invalid", `unknown flags 0x${flags.toString(16)}`);
  if (view.getUint32(sbOffset.blockBytes, true) !== bitmapBlockBytes)
    return fail("invalid", "bitmap block size is not 4096");
  const u64Fields = ["sequence", "volumeBytes", "areaBytes", "currentUuid", "uuidCounter"] as const;
  for (const f of u64Fields) {
    if (getU64(view, sbOffset[f]) < 0) return fail("invalid", `${f} is out of range`);
  }
  const historyCount = view.getUint32(sbOffset.historyCount, true);
  if (historyCount > historyUuidsOnDiskMax)
    return fail("invalid", `history count ${historyCount} exceeds ${historyUuidsOnDiskMax}`);
  const historyUuids: number[] = [];
  for (let i = 0; i < historyCount; i++) historyUuids.push(getU64(view, sbOffset.history + 8 * i));
  const bitmapUuids: number[] = [];
  for (let i = 0; i < 32; i++) bitmapUuids.push(getU64(view, sbOffset.bitmapUuids + 8 * i));
  if (historyUuids.some((u) => u < 0) || bitmapUuids.some((u) => u < 0))
    return fail("invalid", "a generation identifier is out of range");
  const peerSlots = view.getUint32(sbOffset.peerSlots, true);
  const slotNodeIds: number[] = [];
  for (let i = 0; i < Math.min(peerSlots, peerSlotsMax); i++)
    slotNodeIds.push(slot[sbOffset.slotNodeIds + i]!);
  const header: MetadataHeader = {
    volumeBytes: getU64(view, sbOffset.volumeBytes),
    alExtentBytes: view.getUint32(sbOffset.alExtentBytes, true),
    alExtents: view.getUint32(sbOffset.alExtents, true),
    alRingSlots: view.getUint32(sbOffset.alRingSlots, true),
    peerSlots,
    nodeId: view.getUint32(sbOffset.nodeId, true),
    placement: (flags & flagInternal) !== 0 ? "internal" : "external",
    areaBytes: getU64(view, sbOffset.areaBytes),
    slotNodeIds,
    ...((flags & flagSizeAgreed) !== 0 ? { sizeAgreed: true } : {}),
  };
  const problem = headerProblem(header);
  if (problem !== undefined) return fail("invalid", problem);
  const superblock: SuperblockRecord = {
    currentUuid: getU64(view, sbOffset.currentUuid),
    bitmapUuids,
    historyUuids,
    uuidCounter: getU64(view, sbOffset.uuidCounter),
    consistent: (flags & flagConsistent) !== 0,
    wasUpToDate: (flags & flagWasUpToDate) !== 0,
    primary: (flags & flagPrimary) !== 0,
    crashedPrimary: (flags & flagCrashedPrimary) !== 0,
  };
  return { ok: true, decoded: { header, superblock, sequence: getU64(view, sbOffset.sequence) } };
}

/** Why a header cannot describe a real area, or undefined when it can. */
export function headerProblem(h: MetadataHeader): string | undefined {
  const geometry = geometryProblem(h.volumeBytes, h.alExtents, h.peerSlots, h.alRingSlots);
  if (geometry !== undefined) return geometry;
  const e = h.alExtentBytes;
  if (!Number.isInteger(e) || e < bitmapBlockBytes || e > 2 ** 30 || (e & (e - 1)) !== 0)
    return `activity-log extent size ${e} is not a power of two in 4 KiB..1 GiB`;
  if (!Number.isInteger(h.nodeId) || h.nodeId < 0 || h.nodeId > 31)
    return `node id ${h.nodeId} is outside 0..31`;
  const layout = metadataLayout(h.volumeBytes, h.alExtents, h.peerSlots, h.alRingSlots);
  if (h.areaBytes !== layout.areaBytes)
    return `area size ${h.areaBytes} does not match its geometry (expected ${layout.areaBytes})`;
  if (h.slotNodeIds.length !== h.peerSlots) return "peer slot table has the wrong length";
  const seen = new Set<number>();
  for (const id of h.slotNodeIds) {
    if (id === slotFree) continue;
    if (!Number.isInteger(id) || id < 0 || id > 31) return `peer slot names node id ${id}`;
    if (id === h.nodeId) return `a peer slot names this node's own id ${id}`;
    if (seen.has(id)) return `two peer slots name node id ${id}`;
    seen.add(id);
  }
  return undefined;
}

function fail(problem: SlotProblem, detail: string): SlotResult {
  return { ok: false, problem, detail };
}
