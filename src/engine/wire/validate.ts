//! Semantic checks of a decoded peer message against the resource it arrives for.
//!
//! The codec only proves that a frame is well formed. The engine asserts its own invariants
//! (ranges inside the volume, block data in whole blocks, bitmap runs in pairs), and an
//! assertion is a crash: so the shell runs every message from the network through
//! `validatePeerMessage` first and drops the connection, with the returned reason in the
//! log, instead of handing the engine something only a bug or an attacker would send.

import type { PeerMessage } from "../types.js";

/** Bytes per block of bitmaps and block data on the wire. */
const BLOCK_BYTES = 4096;
/** The largest range one request may cover: 32 MiB, the frame limit for its reply. */
const REQUEST_BLOCKS_MAX = (32 * 1024 * 1024) / BLOCK_BYTES;

export interface ValidationLimits {
  /** The volume's size in 4 KiB blocks. */
  readonly sizeBlocks: number;
}

function whole(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function range(
  what: string,
  first: number,
  count: number,
  limits: ValidationLimits,
  max = REQUEST_BLOCKS_MAX,
): string | undefined {
  if (!whole(first) || !whole(count) || count === 0)
    return `${what}: bad block range ${first}+${count}`;
  if (count > max) return `${what}: ${count} blocks exceed the ${max}-block limit`;
  if (first + count > limits.sizeBlocks) {
    return `${what}: blocks ${first}+${count} run past the volume's ${limits.sizeBlocks} blocks`;
  }
  return undefined;
}

function blocks(
  what: string,
  first: number,
  data: Uint8Array,
  limits: ValidationLimits,
): string | undefined {
  if (data.length === 0 || data.length % BLOCK_BYTES !== 0) {
    return `${what}: ${data.length} bytes of block data is not a whole number of 4 KiB blocks`;
  }
  return range(what, first, data.length / BLOCK_BYTES, limits);
}

function runs(what: string, list: readonly number[], limits: ValidationLimits): string | undefined {
  if (list.length % 2 !== 0) return `${what}: runs must come as (first, count) pairs`;
  for (let i = 0; i < list.length; i += 2) {
    const bad = range(what, list[i]!, list[i + 1]!, limits, limits.sizeBlocks);
    if (bad) return bad;
  }
  return undefined;
}

/** Undefined when the message may reach the engine; otherwise why it may not. */
export function validatePeerMessage(m: PeerMessage, limits: ValidationLimits): string | undefined {
  switch (m.type) {
    case "state":
      if (!whole(m.bitsForYou) || m.bitsForYou > limits.sizeBlocks) {
        return `state: ${m.bitsForYou} out-of-sync bits for a volume of ${limits.sizeBlocks} blocks`;
      }
      return undefined;
    case "data":
      return blocks("data", m.firstBlock, m.data, limits);
    case "readRequest":
      return range("readRequest", m.firstBlock, m.blockCount, limits);
    case "readReply":
      if (m.data && m.data.length % BLOCK_BYTES !== 0)
        return "readReply: data is not whole 4 KiB blocks";
      return undefined;
    case "bitmap":
      return (
        runs("bitmap", m.ranges, limits) ??
        (m.covered ? runs("bitmap covered", m.covered, limits) : undefined)
      );
    case "resyncRequest":
    case "inSync":
    case "resyncAck":
    case "verifyRequest":
    case "checksumRequest":
    case "verifyReply":
      return range(m.type, m.block, m.blockCount, limits);
    case "resyncReply":
      if (m.data) return blocks("resyncReply", m.block, m.data, limits);
      return range("resyncReply", m.block, 1, limits);
    case "peerAck":
      return range("peerAck", m.firstBlock, m.blockCount, limits, limits.sizeBlocks);
    case "recvAck":
    case "writeAck":
    case "negAck":
    case "barrier":
    case "barrierAck":
    case "promoteRequest":
    case "promoteReply":
    case "syncStart":
    case "resyncDone":
    case "verifyDone":
    case "ping":
    case "pingAck":
    case "resizeReply":
    case "resizeAck":
      return undefined;
    case "resizeRequest":
    case "resize":
      // A size the format cannot describe (16 TiB at most) is a broken peer, not a request.
      if (!whole(m.sizeBlocks) || m.sizeBlocks > 2 ** 32)
        return `${m.type}: ${m.sizeBlocks} blocks is not a volume size`;
      return undefined;
  }
}
