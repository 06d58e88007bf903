//! Geometry of a metadata area: where the per-peer bitmaps, the activity-log ring and the two
//! superblock slots sit inside the byte range the area occupies. The codec treats internal
//! metadata (the tail of the backing device) and external metadata (the tail of a separate
//! device or file) the same way: an area always ENDS at the last 4 KiB boundary of the device
//! that holds it, and the superblock pair is its last 8 KiB, so a reader finds the superblock
//! without knowing the area's size and learns that size from it.
//!
//!   area offset                                                       area end
//!   | bitmap slot 0 | ... | bitmap slot P-1 | AL slot 0 | ... | AL slot R-1 | SB 0 | SB 1 |
//!
//! Invariant: every region starts on a 4 KiB boundary and is a whole number of 4 KiB pages,
//! so each metadata record is written as whole pages (no read-modify-write of a partial page).

import { assert } from "../../stdx/assert.js";

/** Bytes per page: the unit of every metadata write and of each bitmap bit. */
export const pageBytes = 4096;
/** Bytes of data one bitmap bit stands for. */
export const bitmapBlockBytes = 4096;
/** Default activity-log extent: 4 MiB, as in DRBD. */
export const alExtentBytesDefault = 4 * 1024 * 1024;
/** Default number of activity-log extents (about 5 GiB of hot data), as in DRBD. */
export const alExtentsDefault = 1237;
/** Bounds on al-extents, as drbd.conf documents them. */
export const alExtentsMin = 1;
export const alExtentsMax = 65534;
/** Transactions kept in the activity-log ring; recovery takes the newest valid one. */
export const alRingSlotsDefault = 8;
export const alRingSlotsMax = 64;
/** Peer bitmap slots: at most one per other node of a 32-node resource. */
export const peerSlotsMax = 32;
/** Largest volume the format describes: 16 TiB keeps one bitmap slot at 512 MiB. */
export const volumeBytesMax = 2 ** 44;
export const superblockSlotBytes = pageBytes;
export const superblockSlots = 2;
/** Fixed bytes at the head of an AL transaction slot, before the extent numbers. */
export const alTransactionHeaderBytes = 32;

export interface MetadataLayout {
  readonly volumeBytes: number;
  readonly alExtents: number;
  readonly peerSlots: number;
  readonly alRingSlots: number;
  /** Bytes of one peer's bitmap, rounded up to whole pages. */
  readonly bitmapSlotBytes: number;
  /** Bytes of the bitmap that carry bits: ceil(blocks / 8). */
  readonly bitmapUsedBytes: number;
  /** Offsets below are relative to the start of the area. */
  readonly bitmapOffsetBytes: number;
  readonly alOffsetBytes: number;
  readonly alSlotBytes: number;
  readonly superblockOffsetBytes: number;
  /** Total size of the area; a multiple of pageBytes. */
  readonly areaBytes: number;
}

export function roundUpPage(bytes: number): number {
  return Math.ceil(bytes / pageBytes) * pageBytes;
}

export function roundDownPage(bytes: number): number {
  return Math.floor(bytes / pageBytes) * pageBytes;
}

/** Whether the geometry is one the format can describe (validated before layout). */
export function geometryProblem(
  volumeBytes: number,
  alExtents: number,
  peerSlots: number,
  alRingSlots: number = alRingSlotsDefault,
): string | undefined {
  if (!Number.isSafeInteger(volumeBytes) || volumeBytes < bitmapBlockBytes)
    return `volume size ${volumeBytes} is not a positive number of bytes of at least 4 KiB`;
  if (volumeBytes % bitmapBlockBytes !== 0)
    return `volume size ${volumeBytes} is not a multiple of 4 KiB`;
  if (volumeBytes > volumeBytesMax) return `volume size ${volumeBytes} exceeds 16 TiB`;
  if (!Number.isInteger(alExtents) || alExtents < alExtentsMin || alExtents > alExtentsMax)
    return `al-extents ${alExtents} is outside ${alExtentsMin}..${alExtentsMax}`;
  if (!Number.isInteger(peerSlots) || peerSlots < 1 || peerSlots > peerSlotsMax)
    return `peer slots ${peerSlots} is outside 1..${peerSlotsMax}`;
  if (!Number.isInteger(alRingSlots) || alRingSlots < 2 || alRingSlots > alRingSlotsMax)
    return `activity-log ring slots ${alRingSlots} is outside 2..${alRingSlotsMax}`;
  return undefined;
}

/** Offsets and sizes of an area for the given geometry (which must be valid). */
export function metadataLayout(
  volumeBytes: number,
  alExtents: number,
  peerSlots: number,
  alRingSlots: number = alRingSlotsDefault,
): MetadataLayout {
  const problem = geometryProblem(volumeBytes, alExtents, peerSlots, alRingSlots);
  assert(problem === undefined, problem);
  const bitmapUsedBytes = Math.ceil(volumeBytes / bitmapBlockBytes / 8);
  const bitmapSlotBytes = roundUpPage(bitmapUsedBytes);
  const alSlotBytes = roundUpPage(alTransactionHeaderBytes + 4 * alExtents);
  const alOffsetBytes = peerSlots * bitmapSlotBytes;
  const superblockOffsetBytes = alOffsetBytes + alRingSlots * alSlotBytes;
  const areaBytes = superblockOffsetBytes + superblockSlots * superblockSlotBytes;
  assert(areaBytes % pageBytes === 0, "area is whole pages");
  return {
    volumeBytes,
    alExtents,
    peerSlots,
    alRingSlots,
    bitmapSlotBytes,
    bitmapUsedBytes,
    bitmapOffsetBytes: 0,
    alOffsetBytes,
    alSlotBytes,
    superblockOffsetBytes,
    areaBytes,
  };
}

/**
 * Usable data bytes of a device that also holds its metadata internally: the largest
 * multiple of 4 KiB such that data plus area fit below the device's last 4 KiB boundary.
 * Returns 0 when not even 4 KiB of data fits.
 */
export function internalDataBytes(
  deviceBytes: number,
  alExtents: number,
  peerSlots: number,
  alRingSlots: number = alRingSlotsDefault,
): number {
  assert(Number.isSafeInteger(deviceBytes) && deviceBytes >= 0, "device size");
  const usable = Math.min(roundDownPage(deviceBytes), volumeBytesMax + 2 ** 32);
  const fits = (blocks: number): boolean =>
    blocks * bitmapBlockBytes +
      metadataLayout(blocks * bitmapBlockBytes, alExtents, peerSlots, alRingSlots).areaBytes <=
    usable;
  // Data + area grows monotonically with the data size: binary search the largest fit.
  let lo = 0;
  let hi = Math.min(usable, volumeBytesMax) / bitmapBlockBytes;
  if (hi < 1 || !fits(1)) return 0;
  lo = 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo * bitmapBlockBytes;
}

/** Byte offset, on its device, of an area that ends at the device's last 4 KiB boundary. */
export function areaOffsetOnDevice(deviceBytes: number, areaBytes: number): number {
  return roundDownPage(deviceBytes) - areaBytes;
}
