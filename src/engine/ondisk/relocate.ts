//! Online grow of a metadata area, and finding an area that a grow left behind.
//!
//! The area always ends at the last 4 KiB boundary of its device (layout.ts), so when the
//! device grows the area must move to the new end, and it grows too (larger bitmap slots).
//! `planMetadataGrow` returns the writes in steps; the shell makes each step durable
//! (fdatasync) before it starts the next:
//!
//!   step  writes                                           a crash after it leaves
//!   1     the new area at the new end: bitmaps (bits       old area authoritative (the new
//!         copied), AL ring (current transaction),          end holds no valid superblock, so
//!         zeroes elsewhere, superblock slots included      attach looks further down)
//!   2     new superblock copy, sequence s+1                new area authoritative (valid/empty)
//!   3     new superblock copy, sequence s+2                new area, both copies valid
//!   4     zeroes over the old area                         new area; the old one is erased
//!
//! Why each crash is safe: the old area is not touched before step 4, and the new area
//! becomes authoritative in one superblock write (step 2) only after everything it points
//! at is durable (step 1). A torn step-2 write leaves no valid superblock at the new end,
//! which attach treats as "no area here" and finds the intact old area. The new area never
//! overlaps the old one (`planMetadataGrow` refuses), so step 1 cannot damage it. Step 4
//! runs before the engine uses the grown volume, so it erases no data; it makes the old
//! area's bytes plain zeroes of the grown volume and keeps a later scan from finding it.
//!
//! `locateArea` is the attach side: the superblock pair at the end of the device when one
//! copy is valid, else a scan downwards, page by page, for the first valid superblock of
//! this node (an area a grow left behind: the device was grown but the resize had not
//! finished). A valid superblock of another node or placement there is refused, not used.

import { MetadataError } from "../../stdx/errors.js";
import { assert } from "../../stdx/assert.js";
import { growBitmapBytes } from "../meta.js";
import type { NodeId, PersistedMeta } from "../types.js";
import { encodeMetadataArea, type MetadataWrite } from "./area.js";
import {
  bitmapBlockBytes,
  internalDataBytes,
  metadataLayout,
  pageBytes,
  roundDownPage,
  superblockSlotBytes,
  volumeBytesMax,
} from "./layout.js";
import {
  decodeSuperblock,
  encodeSuperblock,
  type MetadataHeader,
  type SlotResult,
} from "./superblock.js";

/** The metadata as the writer holds it (what is durable once queued writes are done). */
export interface AreaState {
  readonly header: MetadataHeader;
  readonly meta: PersistedMeta;
  readonly superblockSequence: number;
  /** Byte offset of the area on its device. */
  readonly areaOffsetBytes: number;
}

/** One durable step: its writes at absolute device offsets, then fdatasync. */
export interface GrowStep {
  readonly what: string;
  readonly writes: readonly MetadataWrite[];
}

export interface GrowPlan {
  readonly header: MetadataHeader;
  readonly meta: PersistedMeta;
  readonly superblockSequence: number;
  readonly areaOffsetBytes: number;
  readonly steps: readonly GrowStep[];
}

/**
 * The largest volume a device of `deviceBytes` can hold after a grow (internal metadata:
 * data plus the larger area; external: the data device), or the current size when the
 * device did not grow enough for the area to move without overlapping its old place.
 */
export function grownCapacityBytes(
  header: MetadataHeader,
  areaOffsetBytes: number,
  deviceBytes: number,
  dataDeviceBytes: number,
): number {
  const oldEnd = areaOffsetBytes + header.areaBytes;
  const { alExtents, peerSlots, alRingSlots } = header;
  let volume =
    header.placement === "internal"
      ? internalDataBytes(deviceBytes, alExtents, peerSlots, alRingSlots)
      : Math.min(roundDownPage(dataDeviceBytes), volumeBytesMax);
  if (volume <= header.volumeBytes) return header.volumeBytes;
  const areaBytes = metadataLayout(volume, alExtents, peerSlots, alRingSlots).areaBytes;
  // The new area must start at or after the old one's end (internal: the data in front of
  // it grows into the old area's place, which step 4 clears). An external metadata file is
  // grown to make room (the shell does so), so only internal metadata is limited here.
  if (header.placement === "internal" && roundDownPage(deviceBytes) - areaBytes < oldEnd)
    volume = header.volumeBytes;
  return volume;
}

/** Device size an external metadata file needs for the area to move when growing. */
export function externalGrowDeviceBytes(state: AreaState, volumeBytes: number): number {
  const h = state.header;
  const areaBytes = metadataLayout(volumeBytes, h.alExtents, h.peerSlots, h.alRingSlots).areaBytes;
  return state.areaOffsetBytes + h.areaBytes + areaBytes;
}

/**
 * The writes that move the area from its place to the end of a device of `deviceBytes`,
 * for a volume of `volumeBytes` (larger than now), in the steps described at the top.
 */
export function planMetadataGrow(
  state: AreaState,
  volumeBytes: number,
  deviceBytes: number,
): GrowPlan | MetadataError {
  const h = state.header;
  assert(volumeBytes > h.volumeBytes && volumeBytes % bitmapBlockBytes === 0, "grow");
  const layout = metadataLayout(volumeBytes, h.alExtents, h.peerSlots, h.alRingSlots);
  const end = roundDownPage(deviceBytes);
  const newOffset = end - layout.areaBytes;
  const oldEnd = state.areaOffsetBytes + h.areaBytes;
  if (newOffset < oldEnd)
    return new MetadataError(
      `the metadata device grew too little to move the metadata area: the new ` +
        `${layout.areaBytes}-byte area must start at or after ${oldEnd} but would start at ` +
        `${newOffset}; grow the device by at least ${oldEnd - newOffset} more bytes`,
    );
  if (h.placement === "internal" && volumeBytes > newOffset)
    return new MetadataError(
      `a ${volumeBytes}-byte volume and its ${layout.areaBytes}-byte metadata do not fit ` +
        `on a ${deviceBytes}-byte backing device`,
    );
  const sizeBlocks = volumeBytes / bitmapBlockBytes;
  const meta: PersistedMeta = {
    superblock: { ...state.meta.superblock },
    alTransactionSeq: state.meta.alTransactionSeq,
    alExtents: state.meta.alExtents.slice(),
    bitmaps: state.meta.bitmaps.map((b) => growBitmapBytes(b, sizeBlocks).slice()),
  };
  const header: MetadataHeader = {
    ...h,
    volumeBytes,
    areaBytes: layout.areaBytes,
    sizeAgreed: true,
  };
  const area = encodeMetadataArea(meta, {
    volumeBytes,
    nodeId: h.nodeId,
    peerSlots: h.peerSlots,
    alExtents: h.alExtents,
    alExtentBytes: h.alExtentBytes,
    alRingSlots: h.alRingSlots,
    placement: h.placement,
    slotNodeIds: h.slotNodeIds,
  });
  const s = state.superblockSequence;
  const sbAt = (seq: number): number =>
    newOffset + layout.superblockOffsetBytes + (seq % 2) * superblockSlotBytes;
  const steps: GrowStep[] = [
    {
      // The superblock slots are written as zeroes: stale bytes there (a reused device)
      // must not pass for this area's superblock before step 2.
      what: "write the new area's bitmaps and activity log at the new end",
      writes: [{ offsetBytes: newOffset, data: area.fill(0, layout.superblockOffsetBytes) }],
    },
    {
      what: `make the new area authoritative (superblock sequence ${s + 1})`,
      writes: [
        { offsetBytes: sbAt(s + 1), data: encodeSuperblock(header, meta.superblock, s + 1) },
      ],
    },
    {
      what: `write the second superblock copy (sequence ${s + 2})`,
      writes: [
        { offsetBytes: sbAt(s + 2), data: encodeSuperblock(header, meta.superblock, s + 2) },
      ],
    },
    {
      what: "erase the old area",
      writes: [{ offsetBytes: state.areaOffsetBytes, data: new Uint8Array(h.areaBytes) }],
    },
  ];
  return { header, meta, superblockSequence: s + 2, areaOffsetBytes: newOffset, steps };
}

/** Reads `length` bytes at `offset` of the device (zeroes past its end). */
export type ReadAt = (offsetBytes: number, lengthBytes: number) => Uint8Array;

export interface LocatedArea {
  /** Where the area ends on the device; decode the bytes before it with readMetadataArea. */
  readonly endBytes: number;
  /** Set when the area is not at the device's end: why it was looked for lower down. */
  readonly movedFrom?: string;
}

/** Pages read per scan chunk (1 MiB). */
const scanChunkPages = 256;

/**
 * Finds the end of this node's metadata area on a device of `deviceBytes`: the device's
 * end when either superblock copy there is valid (or of another format version: the
 * caller's decode refuses it clearly), else the first area found scanning downwards.
 * Returns the device's end when nothing is found, so the caller's decode explains why.
 */
export function locateArea(
  read: ReadAt,
  deviceBytes: number,
  expect: {
    readonly nodeId?: NodeId;
    readonly placement?: "internal" | "external";
    /**
     * Lowest device offset at which a left-behind area can END (e.g. the configured volume
     * plus its area); undefined: do not scan (the area is at the end or nowhere).
     */
    readonly scanDownToBytes?: number;
  },
): LocatedArea | MetadataError {
  const end = roundDownPage(deviceBytes);
  if (end < 2 * superblockSlotBytes) return { endBytes: end };
  const pair = read(end - 2 * superblockSlotBytes, 2 * superblockSlotBytes);
  const atEnd = [pair.subarray(0, pageBytes), pair.subarray(pageBytes)].map(decodeSuperblock);
  if (atEnd.some((r) => r.ok || r.problem === "version")) return { endBytes: end };
  if (expect.scanDownToBytes === undefined) return { endBytes: end };
  const floor = Math.max(0, roundDownPage(expect.scanDownToBytes) - 2 * superblockSlotBytes);
  const why = atEnd.map(describe).join("; ");
  // Scan downwards: a page at `p` holding a valid superblock of sequence s is copy s mod 2,
  // so the area ends at p + 8 KiB (copy 0) or p + 4 KiB (copy 1).
  let chunkEnd = end - 2 * superblockSlotBytes;
  while (chunkEnd > floor) {
    const chunkStart = Math.max(floor, chunkEnd - scanChunkPages * pageBytes);
    const chunk = read(chunkStart, chunkEnd - chunkStart);
    for (let p = chunk.length - pageBytes; p >= 0; p -= pageBytes) {
      const page = chunk.subarray(p, p + pageBytes);
      if (page[0] !== 0x4d) continue; // "M" of the magic: skip the decode of most pages
      const r = decodeSuperblock(page);
      if (!r.ok) continue;
      const at = chunkStart + p;
      const h = r.decoded.header;
      const areaEnd = at + (r.decoded.sequence % 2 === 0 ? 2 : 1) * pageBytes;
      const foreign =
        (expect.nodeId !== undefined && h.nodeId !== expect.nodeId) ||
        (expect.placement !== undefined && h.placement !== expect.placement);
      if (foreign || areaEnd > end || h.areaBytes > areaEnd)
        return new MetadataError(
          `no metadata at the end of the device (${why}), and the first superblock below it ` +
            `(at offset ${at}) is of node id ${h.nodeId}, ${h.placement}, a ` +
            `${h.areaBytes}-byte area: not this node's left-behind area; refusing to guess`,
        );
      return { endBytes: areaEnd, movedFrom: why };
    }
    chunkEnd = chunkStart;
  }
  return { endBytes: end };
}

function describe(r: SlotResult): string {
  return r.ok ? `valid, sequence ${r.decoded.sequence}` : `${r.problem}: ${r.detail}`;
}
