//! Encoding and decoding of a whole metadata area, and the incremental encoder that turns one
//! engine `MetadataRecord` into the few whole-page writes that persist it.
//!
//! Reading an area is a decision table over the two superblock slots (legend: V = valid,
//! E = empty, F = foreign bytes, X = checksum mismatch, N = unknown version, I = impossible
//! fields):
//!   row  slot A / slot B         decision
//!   @VV  V / V                   the higher sequence wins (the other is the previous write)
//!   @V_  V / anything else       the valid one wins (the other was torn mid-write)
//!   @N   N in either, no V       refuse: written by another mirra version
//!   @X   X or I in either, no V  refuse: both copies corrupt; never guess
//!   @EE  E / E                   refuse: no metadata (run `mirra create-md`)
//!   @F   otherwise               refuse: foreign data, not a mirra metadata area
//! Only a valid superblock lets the reader trust the geometry; the AL ring and bitmaps are
//! read from the layout it names, then checked against the device sizes the caller knows.

import { MetadataError } from "../../stdx/errors.js";
import { assert } from "../../stdx/assert.js";
import { applyMetadataRecord, bitmapBytes } from "../meta.js";
import type { MetadataRecord, NodeId, PersistedMeta, SuperblockRecord } from "../types.js";
import { encodeAlTransaction, recoverAlRing, type AlGeometry } from "./al_ring.js";
import {
  alExtentBytesDefault,
  alRingSlotsDefault,
  bitmapBlockBytes,
  geometryProblem,
  metadataLayout,
  pageBytes,
  roundDownPage,
  superblockSlotBytes,
  type MetadataLayout,
} from "./layout.js";
import {
  decodeSuperblock,
  encodeSuperblock,
  headerProblem,
  slotFree,
  type DecodedSuperblock,
  type MetadataHeader,
  type SlotResult,
} from "./superblock.js";

/** What `mirra create-md` decides; everything else in the header follows from it. */
export interface MetadataAreaParams {
  /** Size of the replicated volume, a multiple of 4 KiB. */
  readonly volumeBytes: number;
  readonly nodeId: NodeId;
  /** Bitmap slots: how many peers this node can track (1..32). */
  readonly peerSlots: number;
  /** @default 1237 */
  readonly alExtents?: number;
  /** @default 4 MiB */
  readonly alExtentBytes?: number;
  /** @default 8 */
  readonly alRingSlots?: number;
  readonly placement: "internal" | "external";
  /**
   * Node id bound to each peer slot, `slotFree` (255) for none. Default: the node ids whose
   * bitmap has bits set or whose bitmap UUID is non-zero, in increasing order, then free.
   */
  readonly slotNodeIds?: readonly number[];
}

/** What the caller knows about the devices, checked against what the superblock claims. */
export interface DecodeParams {
  /** Size of the device holding the area (the backing device for internal metadata). */
  readonly deviceBytes?: number;
  /** Placement the operator configured; a mismatch is refused. */
  readonly placement?: "internal" | "external";
  /** Size of the data device, for external metadata. */
  readonly dataDeviceBytes?: number;
  /** The node id this node is configured with; a mismatch is refused. */
  readonly nodeId?: NodeId;
}

export interface DecodedArea {
  readonly header: MetadataHeader;
  readonly layout: MetadataLayout;
  readonly meta: PersistedMeta;
  /** Sequence of the superblock copy in use; the next superblock write uses sequence + 1. */
  readonly superblockSequence: number;
  /** What each superblock slot held, for `mirra dump-md`. */
  readonly superblockSlots: readonly [string, string];
  readonly alSlotsValid: number;
  readonly alSlotsTorn: number;
}

/** One write that persists (part of) a record: `data` at `offsetBytes` from the area start. */
export interface MetadataWrite {
  readonly offsetBytes: number;
  readonly data: Uint8Array;
}

export function headerFor(meta: PersistedMeta, params: MetadataAreaParams): MetadataHeader {
  const alExtents = params.alExtents ?? 1237;
  const alRingSlots = params.alRingSlots ?? alRingSlotsDefault;
  const problem = geometryProblem(params.volumeBytes, alExtents, params.peerSlots, alRingSlots);
  assert(problem === undefined, problem);
  const layout = metadataLayout(params.volumeBytes, alExtents, params.peerSlots, alRingSlots);
  let slotNodeIds = params.slotNodeIds?.slice();
  if (slotNodeIds === undefined) {
    slotNodeIds = [];
    for (let id = 0; id < 32; id++) {
      if (id === params.nodeId) continue;
      const used = (meta.bitmaps[id] ?? new Uint8Array(0)).some((b) => b !== 0);
      if (used || (meta.superblock.bitmapUuids[id] ?? 0) !== 0) slotNodeIds.push(id);
    }
    assert(slotNodeIds.length <= params.peerSlots, "more tracked peers than peer slots");
  }
  while (slotNodeIds.length < params.peerSlots) slotNodeIds.push(slotFree);
  const header: MetadataHeader = {
    volumeBytes: params.volumeBytes,
    alExtentBytes: params.alExtentBytes ?? alExtentBytesDefault,
    alExtents,
    alRingSlots,
    peerSlots: params.peerSlots,
    nodeId: params.nodeId,
    placement: params.placement,
    areaBytes: layout.areaBytes,
    slotNodeIds,
  };
  const headerBad = headerProblem(header);
  assert(headerBad === undefined, headerBad);
  return header;
}

function layoutOf(header: MetadataHeader): MetadataLayout {
  return metadataLayout(header.volumeBytes, header.alExtents, header.peerSlots, header.alRingSlots);
}

function alGeometryOf(header: MetadataHeader, layout: MetadataLayout): AlGeometry {
  return {
    alExtents: header.alExtents,
    alRingSlots: header.alRingSlots,
    alSlotBytes: layout.alSlotBytes,
    extentCount: Math.ceil(header.volumeBytes / header.alExtentBytes),
  };
}

/**
 * Encodes a complete area for `mirra create-md`: both superblock copies (sequences 0 and 1,
 * identical content), every bitmap slot, and an AL ring that holds only the meta's current
 * transaction (if any). Writing the whole area erases stale transactions of an older area.
 */
export function encodeMetadataArea(meta: PersistedMeta, params: MetadataAreaParams): Uint8Array {
  const header = headerFor(meta, params);
  const layout = layoutOf(header);
  const area = new Uint8Array(layout.areaBytes);
  header.slotNodeIds.forEach((id, slot) => {
    if (id === slotFree) return;
    const bits = meta.bitmaps[id] ?? new Uint8Array(0);
    const used = Math.min(bits.length, layout.bitmapUsedBytes);
    area.set(bits.subarray(0, used), layout.bitmapOffsetBytes + slot * layout.bitmapSlotBytes);
  });
  for (let id = 0; id < 32; id++) {
    if (header.slotNodeIds.includes(id)) continue;
    const bits = meta.bitmaps[id] ?? new Uint8Array(0);
    assert(!bits.some((b) => b !== 0), `node ${id} has bits set but no peer slot`);
  }
  if (meta.alTransactionSeq > 0) {
    const seq = meta.alTransactionSeq;
    const slot = encodeAlTransaction(alGeometryOf(header, layout), seq, meta.alExtents);
    area.set(slot, layout.alOffsetBytes + (seq % header.alRingSlots) * layout.alSlotBytes);
  }
  for (const seq of [0, 1]) {
    const offset = layout.superblockOffsetBytes + seq * superblockSlotBytes;
    area.set(encodeSuperblock(header, meta.superblock, seq), offset);
  }
  return area;
}

/** Chooses the superblock copy in use, by the decision table at the top of this file. */
export function chooseSuperblock(
  slot0: Uint8Array,
  slot1: Uint8Array,
): { decoded: DecodedSuperblock; slots: [string, string] } | MetadataError {
  const results: SlotResult[] = [decodeSuperblock(slot0), decodeSuperblock(slot1)];
  const describe = (r: SlotResult): string =>
    r.ok ? `valid, sequence ${r.decoded.sequence}` : `${r.problem}: ${r.detail}`;
  const slots: [string, string] = [describe(results[0]!), describe(results[1]!)];
  const valid = results.flatMap((r) => (r.ok ? [r.decoded] : []));
  if (valid.length > 0) {
    const decoded = valid.reduce((a, b) => (b.sequence > a.sequence ? b : a));
    return { decoded, slots };
  }
  const problems = results.map((r) => (r.ok ? "valid" : r.problem));
  const detail = ` (superblock copy 0: ${slots[0]}; copy 1: ${slots[1]})`;
  if (problems.includes("version"))
    return new MetadataError(
      "metadata was written by a different mirra format version and cannot be read; " +
        `upgrade mirra${detail}`,
    );
  if (problems.includes("corrupt") || problems.includes("invalid"))
    return new MetadataError(
      "both superblock copies of the metadata are corrupt; refusing to guess. Restore the " +
        `metadata or recreate it with \`mirra create-md --force\` and resync${detail}`,
    );
  if (problems.every((p) => p === "empty"))
    return new MetadataError(
      "no metadata found (the superblock area is all zeroes); run `mirra create-md` first",
    );
  return new MetadataError(
    "no mirra metadata found: the area holds foreign data (another program's data or " +
      `the wrong device?)${detail}`,
  );
}

/**
 * Decodes an area. `bytes` is either exactly the area or the content of its device from
 * offset 0; in both cases the area ends at the last 4 KiB boundary of `bytes`.
 */
export function readMetadataArea(
  bytes: Uint8Array,
  params: DecodeParams = {},
): DecodedArea | MetadataError {
  const end = roundDownPage(bytes.length);
  if (end < 2 * superblockSlotBytes)
    return new MetadataError(
      `the metadata device holds only ${bytes.length} bytes, too small for a superblock`,
    );
  const sb0 = bytes.subarray(end - 2 * superblockSlotBytes, end - superblockSlotBytes);
  const sb1 = bytes.subarray(end - superblockSlotBytes, end);
  const chosen = chooseSuperblock(sb0, sb1);
  if (chosen instanceof MetadataError) return chosen;
  const { header, superblock, sequence } = chosen.decoded;
  const sizeError = checkSizes(header, end, params);
  if (sizeError !== undefined) return sizeError;
  const layout = layoutOf(header);
  const area = bytes.subarray(end - layout.areaBytes, end);
  const ring = area.subarray(
    layout.alOffsetBytes,
    layout.alOffsetBytes + header.alRingSlots * layout.alSlotBytes,
  );
  const al = recoverAlRing(alGeometryOf(header, layout), ring);
  if ("refused" in al)
    return new MetadataError(`the activity log is inconsistent, refusing to attach: ${al.refused}`);
  const meta: PersistedMeta = {
    superblock,
    alTransactionSeq: al.sequence,
    alExtents: al.extents,
    bitmaps: decodeBitmaps(header, layout, area),
  };
  return {
    header,
    layout,
    meta,
    superblockSequence: sequence,
    superblockSlots: chosen.slots,
    alSlotsValid: al.slotsValid,
    alSlotsTorn: al.slotsTorn,
  };
}

/**
 * `readMetadataArea` reduced to what the engine restores from. The bitmaps of node ids that
 * have no peer slot (and of this node itself) are empty arrays, meaning all clear.
 */
export function decodeMetadataArea(
  bytes: Uint8Array,
  params: DecodeParams = {},
): PersistedMeta | MetadataError {
  const decoded = readMetadataArea(bytes, params);
  return decoded instanceof MetadataError ? decoded : decoded.meta;
}

function checkSizes(
  header: MetadataHeader,
  availableBytes: number,
  params: DecodeParams,
): MetadataError | undefined {
  if (header.areaBytes > availableBytes)
    return new MetadataError(
      `the metadata superblock describes a ${header.areaBytes}-byte area but the device ` +
        `holds only ${availableBytes} bytes (truncated device, or a foreign superblock)`,
    );
  if (params.placement !== undefined && params.placement !== header.placement)
    return new MetadataError(
      `the metadata found is ${header.placement} but ${params.placement} metadata was ` +
        "configured (wrong --meta option or wrong device?)",
    );
  if (params.nodeId !== undefined && params.nodeId !== header.nodeId)
    return new MetadataError(
      `the metadata belongs to node id ${header.nodeId} but this node is configured as ` +
        `node id ${params.nodeId}`,
    );
  if (header.placement === "internal" && params.deviceBytes !== undefined) {
    const needed = header.volumeBytes + header.areaBytes;
    if (needed > roundDownPage(params.deviceBytes))
      return new MetadataError(
        `the backing device holds ${params.deviceBytes} bytes but its metadata describes ` +
          `${header.volumeBytes} bytes of data plus a ${header.areaBytes}-byte area ` +
          "(was the device shrunk?)",
      );
  }
  if (params.dataDeviceBytes !== undefined && header.volumeBytes > params.dataDeviceBytes)
    return new MetadataError(
      `the data device holds ${params.dataDeviceBytes} bytes but the metadata describes a ` +
        `${header.volumeBytes}-byte volume (was the device shrunk?)`,
    );
  return undefined;
}

function decodeBitmaps(
  header: MetadataHeader,
  layout: MetadataLayout,
  area: Uint8Array,
): Uint8Array[] {
  const length = bitmapBytes(header.volumeBytes / bitmapBlockBytes);
  assert(length === layout.bitmapUsedBytes, "bitmap length agrees with meta.ts");
  // Node ids without a slot get an empty (all clear) bitmap: allocating full-size arrays for
  // all 32 ids would cost 32 times the bitmap of a large volume for nothing.
  const bitmaps: Uint8Array[] = [];
  for (let id = 0; id < 32; id++) bitmaps.push(new Uint8Array(0));
  header.slotNodeIds.forEach((id, slot) => {
    if (id === slotFree) return;
    const start = layout.bitmapOffsetBytes + slot * layout.bitmapSlotBytes;
    const bits = area.slice(start, start + length);
    // Bits past the volume's end carry no meaning; drop them (the engine asserts on them).
    const tail = (header.volumeBytes / bitmapBlockBytes) % 8;
    if (tail !== 0) bits[length - 1]! &= (1 << tail) - 1;
    bitmaps[id] = bits;
  });
  return bitmaps;
}

/**
 * Turns engine metadata records into page writes, keeping a mirror of what is on disk so
 * that a bitmap record becomes the whole 4 KiB pages it touches. Pure: the shell performs
 * the writes in order and adds the area's device offset.
 *
 * Invariant: `meta` equals what the area holds once every returned write is durable.
 */
export class MetadataWriter {
  header: MetadataHeader;
  layout: MetadataLayout;
  readonly meta: PersistedMeta;
  /** Sequence of the newest superblock copy handed out. */
  superblockSequence: number;

  constructor(header: MetadataHeader, meta: PersistedMeta, superblockSequence: number) {
    this.header = header;
    this.layout = layoutOf(header);
    this.meta = meta;
    this.superblockSequence = superblockSequence;
  }

  static fromDecoded(decoded: DecodedArea): MetadataWriter {
    return new MetadataWriter(decoded.header, decoded.meta, decoded.superblockSequence);
  }

  /**
   * The writes that persist `record`, in order. A bitmap record that sets bits for a node
   * without a peer slot first binds a free slot (a superblock write); with no free slot it
   * is refused, because silently dropping the bits would lose track of divergent blocks.
   */
  encodeRecord(record: MetadataRecord): MetadataWrite[] | MetadataError {
    switch (record.kind) {
      case "superblock":
        applyMetadataRecord(this.meta, record);
        return [this.superblockWrite(record.superblock)];
      case "activityLog": {
        applyMetadataRecord(this.meta, record);
        const geometry = alGeometryOf(this.header, this.layout);
        const data = encodeAlTransaction(geometry, record.transactionSeq, record.extents);
        const slot = record.transactionSeq % this.header.alRingSlots;
        return [{ offsetBytes: this.layout.alOffsetBytes + slot * this.layout.alSlotBytes, data }];
      }
      case "bitmap":
        return this.bitmapWrites(record);
      case "resize":
        // Moving the area needs the device's new size: the shell plans it (relocate.ts)
        // and hands the result to adoptGrow.
        return new MetadataError("a resize record is executed with planMetadataGrow");
    }
  }

  /** After the shell executed a grow plan: the area now has this header, meta, sequence. */
  adoptGrow(header: MetadataHeader, meta: PersistedMeta, superblockSequence: number): void {
    this.header = header;
    this.layout = layoutOf(header);
    this.meta.bitmaps = meta.bitmaps.map((b) => b.slice());
    this.superblockSequence = superblockSequence;
  }

  private superblockWrite(superblock: SuperblockRecord): MetadataWrite {
    this.superblockSequence++;
    const seq = this.superblockSequence;
    return {
      offsetBytes: this.layout.superblockOffsetBytes + (seq % 2) * superblockSlotBytes,
      data: encodeSuperblock(this.header, superblock, seq),
    };
  }

  private bitmapWrites(
    record: Extract<MetadataRecord, { kind: "bitmap" }>,
  ): MetadataWrite[] | MetadataError {
    const writes: MetadataWrite[] = [];
    let slot = this.header.slotNodeIds.indexOf(record.peer);
    if (slot < 0) {
      // Clearing bits of an untracked peer: its bitmap is all clear already.
      if (!record.value) return writes;
      slot = this.header.slotNodeIds.indexOf(slotFree);
      if (slot < 0)
        return new MetadataError(
          `cannot track node ${record.peer}: all ${this.header.peerSlots} peer slots of the ` +
            "metadata are in use; recreate the metadata with more --peers",
        );
      const slotNodeIds = this.header.slotNodeIds.slice();
      slotNodeIds[slot] = record.peer;
      this.header = { ...this.header, slotNodeIds };
      this.meta.bitmaps[record.peer] = new Uint8Array(this.layout.bitmapUsedBytes);
      writes.push(this.superblockWrite(this.meta.superblock));
    }
    applyMetadataRecord(this.meta, record);
    if (record.blockCount <= 0) return writes;
    const bits = this.meta.bitmaps[record.peer]!;
    const lastBlock = Math.min(
      record.firstBlock + record.blockCount,
      this.header.volumeBytes / bitmapBlockBytes,
    );
    if (lastBlock <= record.firstBlock) return writes;
    const firstPage = Math.floor(record.firstBlock / 8 / pageBytes);
    const lastPage = Math.floor((lastBlock - 1) / 8 / pageBytes);
    const data = new Uint8Array((lastPage - firstPage + 1) * pageBytes);
    data.set(bits.subarray(firstPage * pageBytes, (lastPage + 1) * pageBytes));
    const slotStart = this.layout.bitmapOffsetBytes + slot * this.layout.bitmapSlotBytes;
    writes.push({ offsetBytes: slotStart + firstPage * pageBytes, data });
    return writes;
  }
}
