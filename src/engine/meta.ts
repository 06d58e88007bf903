//! Persisted metadata as the simulator's disk (and the real shell) keeps it: a superblock
//! with the generation identifiers, the last activity-log transaction, and one bitmap per
//! peer slot. `applyMetadataRecord` is the one place that says how a `metadataWrite` effect
//! changes what is on disk, so the simulator persists records without knowing their layout.
//! Invariant: records are applied whole (each is an atomic, checksummed slot) and in order.

import { assert } from "../stdx/assert.js";
import type { MetadataRecord, NodeId, PersistedMeta, SuperblockRecord } from "./types.js";

/** UUIDs kept in the history, newest first (DRBD keeps a short history too). */
export const historyUuidsMax = 8;

/** The generation every replica of a freshly created resource starts with (skip initial sync). */
export const uuidInitial = 4;

export function bitmapBytes(sizeBlocks: number): number {
  return Math.ceil(sizeBlocks / 8);
}

/**
 * Metadata of a freshly created replica: all diskful replicas start identical (zeroed disks,
 * the same initial generation, UpToDate), as after `drbdadm new-current-uuid --clear-bitmap`.
 */
export function createPersistedMeta(sizeBlocks: number, diskful: boolean): PersistedMeta {
  const superblock: SuperblockRecord = {
    currentUuid: diskful ? uuidInitial : 0,
    bitmapUuids: new Array<number>(32).fill(0),
    historyUuids: [],
    uuidCounter: 1,
    consistent: diskful,
    wasUpToDate: diskful,
    primary: false,
    crashedPrimary: false,
  };
  const bitmaps: Uint8Array[] = [];
  for (let i = 0; i < 32; i++) bitmaps.push(new Uint8Array(diskful ? bitmapBytes(sizeBlocks) : 0));
  return { superblock, alTransactionSeq: 0, alExtents: [], bitmaps };
}

export function clonePersistedMeta(meta: PersistedMeta): PersistedMeta {
  return {
    superblock: { ...meta.superblock },
    alTransactionSeq: meta.alTransactionSeq,
    alExtents: meta.alExtents.slice(),
    bitmaps: meta.bitmaps.map((b) => b.slice()),
  };
}

/** Applies one metadata record to what the metadata device holds. */
export function applyMetadataRecord(meta: PersistedMeta, record: MetadataRecord): void {
  switch (record.kind) {
    case "superblock":
      assert(record.superblock.uuidCounter >= meta.superblock.uuidCounter, "uuid counter");
      meta.superblock = record.superblock;
      return;
    case "activityLog":
      // Transactions may complete out of order only if the caller breaks the contract.
      assert(record.transactionSeq > meta.alTransactionSeq, "AL transactions in order");
      meta.alTransactionSeq = record.transactionSeq;
      meta.alExtents = record.extents.slice();
      return;
    case "bitmap":
      applyBitmapRange(meta, record.peer, record.firstBlock, record.blockCount, record.value);
      return;
    case "resize":
      meta.bitmaps = meta.bitmaps.map((b) => growBitmapBytes(b, record.sizeBlocks));
      return;
  }
}

/** A bitmap grown to `sizeBlocks` with the new bits clear; an empty one (untracked) stays. */
export function growBitmapBytes(bits: Uint8Array, sizeBlocks: number): Uint8Array {
  const length = bitmapBytes(sizeBlocks);
  if (bits.length === 0 || bits.length >= length) return bits;
  const grown = new Uint8Array(length);
  grown.set(bits);
  return grown;
}

function applyBitmapRange(
  meta: PersistedMeta,
  peer: NodeId,
  firstBlock: number,
  blockCount: number,
  value: boolean,
): void {
  const bits = meta.bitmaps[peer];
  assert(bits !== undefined, "bitmap slot");
  for (let b = firstBlock; b < firstBlock + blockCount; b++) {
    const byte = b >>> 3;
    if (byte >= bits.length) break;
    if (value) bits[byte]! |= 1 << (b & 7);
    else bits[byte]! &= ~(1 << (b & 7));
  }
}
