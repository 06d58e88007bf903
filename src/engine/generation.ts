//! Generation identifiers (UUIDs) and the handshake decision: after any (re)connect, two
//! diskful nodes compare what they sent each other and decide between no resync, a bitmap
//! resync in a known direction, a full sync, split brain and unrelated data.
//!
//! UUIDs are minted without randomness: uuid = counter × 32 + nodeId, where the counter is a
//! Lamport clock (max of every counter seen, plus one). So two nodes never mint the same
//! UUID, and a larger counter means a younger generation (used by discard-younger-primary).
//!
//! Decision table, evaluated top to bottom from "my" side; the peer evaluates the mirror
//! image and, because every row is antisymmetric, reaches the mirrored decision.
//!
//! Legend: C = current UUID, B[x] = bitmap UUID kept for node x, H = history,
//!         bits = bits set in the bitmap for the other side, cons = data consistent.
//!
//!   row  condition                                              decision
//!   @D   either side has no disk                                none (nothing to compare)
//!   @I   neither side consistent                                none (no good data anywhere)
//!   @J0  I am not consistent and was being synced to a newer    none (wait for a source
//!        generation than the (not UpToDate) peer has            of that generation)
//!   @JB  I am not consistent under a bitmap resync (my data     target, bitmap
//!        outside the bits is on C_me) toward the peer's
//!        generation, and the peer tracks me (C or B[me] = C_me)
//!   @J   I am not consistent, the peer is                       target, full
//!   @K   the peer is not consistent, I am                       source, full (bitmap if
//!        the mirror of @JB holds)
//!   @E   C_me == C_peer                                         see @E1..@E4
//!   @E1    a side is Primary now (only one)                     that side is source (bitmap)
//!   @E2    a side crashed as Primary (only one)                 the OTHER side is source:
//!                                                               it holds every completed
//!                                                               write, the crashed side may
//!                                                               have lost its volatile cache
//!   @EU    exactly one side is UpToDate (the other Outdated or  that side is source (bitmap):
//!          merely Consistent)                                   the other knows it may lag
//!   @ES    both last followed the same Primary's write stream   the side that received
//!          and one received further in it                       further is source (bitmap)
//!   @E3    exactly one side has bits for the other              that side is source (bitmap)
//!   @E4    both sides have bits / both primaries or crashed     lower node id is source
//!   @E5    otherwise                                            none
//!   @S   B_me[peer] == C_peer and B_peer[me] == C_me            split brain (cannot happen
//!                                                               without a forced promotion)
//!   @A   B_me[peer] == C_peer                                   source, bitmap
//!   @B   B_peer[me] == C_me                                     target, bitmap
//!   @X   B_me[peer] != 0 and B_me[peer] == B_peer[me]           split brain (common parent)
//!   @FG  each current in the other's history (corruption)       split brain
//!   @F   C_peer in H_me or in any B_me                          source, full
//!   @G   C_me in H_peer or in any B_peer                        target, full
//!   @Y   my {B, H} and the peer's {B, H} intersect              split brain
//!   @U   otherwise                                              unrelated data
//!
//! With equal UUIDs, bits can only come from a crash (AL extents), online verify or writes
//! a node received while the other was away without a UUID change (a diskless primary);
//! resyncing them from one side is safe because the bitmaps are exchanged and ORed first.

import type { NodeId, UuidSet } from "./types.js";

export interface HandshakeSide {
  readonly nodeId: NodeId;
  readonly diskful: boolean;
  readonly consistent: boolean;
  readonly primary: boolean;
  readonly crashedPrimary: boolean;
  readonly uuids: UuidSet;
  /** Bits set in this side's bitmap for the other side. */
  readonly bitsForOther: number;
  /**
   * While Inconsistent: the generation the interrupted resync was bringing us to (0: any;
   * after a restart, which does not persist it: our own current UUID).
   */
  readonly syncTowardUuid?: number;
  /** While Inconsistent under a bitmap resync: the generation outside its bitmaps (0: none). */
  readonly syncBaseUuid?: number;
  /** The data is UpToDate (not merely Consistent or Outdated). */
  readonly upToDate?: boolean;
  /** The write stream this side last followed (a Primary: its own), 0 if none known. */
  readonly streamId?: number;
  /** The highest write sequence number this side received from that stream. */
  readonly streamSeq?: number;
}

export type SyncDecision =
  | { readonly kind: "none"; readonly row: string }
  | { readonly kind: "source"; readonly full: boolean; readonly row: string }
  | { readonly kind: "target"; readonly full: boolean; readonly row: string }
  | { readonly kind: "splitBrain"; readonly row: string }
  | { readonly kind: "unrelated"; readonly row: string };

export function uuidCounterOf(uuid: number): number {
  return Math.floor(uuid / 32);
}

export function mintUuid(counter: number, nodeId: NodeId): number {
  return counter * 32 + nodeId;
}

export function decideSync(me: HandshakeSide, peer: HandshakeSide): SyncDecision {
  if (!me.diskful || !peer.diskful) return { kind: "none", row: "@D" };
  if (!me.consistent && !peer.consistent) return { kind: "none", row: "@I" };
  if (!me.consistent) {
    const stale = peer.upToDate !== true && !reaches(peer.uuids, me.syncTowardUuid ?? 0);
    if (stale) return { kind: "none", row: "@J0" };
    if (resyncingWithin(me, peer)) return { kind: "target", full: false, row: "@JB" };
    return { kind: "target", full: true, row: "@J" };
  }
  if (!peer.consistent) {
    const stale = me.upToDate !== true && !reaches(me.uuids, peer.syncTowardUuid ?? 0);
    if (stale) return { kind: "none", row: "@J0" };
    if (resyncingWithin(peer, me)) return { kind: "source", full: false, row: "@JB" };
    return { kind: "source", full: true, row: "@K" };
  }
  const cMe = me.uuids.currentUuid;
  const cPeer = peer.uuids.currentUuid;
  if (cMe === cPeer) return decideEqual(me, peer);
  const bMe = me.uuids.bitmapUuids[peer.nodeId] ?? 0;
  const bPeer = peer.uuids.bitmapUuids[me.nodeId] ?? 0;
  if (bMe === cPeer && bPeer === cMe) return { kind: "splitBrain", row: "@S" };
  if (bMe !== 0 && bMe === cPeer) return { kind: "source", full: false, row: "@A" };
  if (bPeer !== 0 && bPeer === cMe) return { kind: "target", full: false, row: "@B" };
  if (bMe !== 0 && bMe === bPeer) return { kind: "splitBrain", row: "@X" };
  const f = knows(me.uuids, cPeer);
  const g = knows(peer.uuids, cMe);
  // Each in the other's past cannot happen without corruption; never pick a direction.
  if (f && g) return { kind: "splitBrain", row: "@FG" };
  if (f) return { kind: "source", full: true, row: "@F" };
  if (g) return { kind: "target", full: true, row: "@G" };
  if (intersects(me.uuids, peer.uuids)) return { kind: "splitBrain", row: "@Y" };
  return { kind: "unrelated", row: "@U" };
}

function decideEqual(me: HandshakeSide, peer: HandshakeSide): SyncDecision {
  const pick = (meWins: boolean, row: string): SyncDecision =>
    meWins ? { kind: "source", full: false, row } : { kind: "target", full: false, row };
  if (me.primary !== peer.primary) return pick(me.primary, "@E1");
  if (me.crashedPrimary !== peer.crashedPrimary) return pick(peer.crashedPrimary, "@E2");
  const meUp = me.upToDate === true;
  if (meUp !== (peer.upToDate === true)) return pick(meUp, "@EU");
  // Both followed the same (now lost) Primary: it sent its writes to each in one order, so
  // the side that received further holds everything the other has.
  const sMe = me.streamSeq ?? 0;
  const sPeer = peer.streamSeq ?? 0;
  if ((me.streamId ?? 0) !== 0 && me.streamId === peer.streamId && sMe !== sPeer) {
    return pick(sMe > sPeer, "@ES");
  }
  const meBits = me.bitsForOther > 0;
  const peerBits = peer.bitsForOther > 0;
  if (meBits !== peerBits) return pick(meBits, "@E3");
  if (meBits || me.crashedPrimary) return pick(me.nodeId < peer.nodeId, "@E4");
  return { kind: "none", row: "@E5" };
}

/**
 * The Inconsistent side is under a bitmap resync (by another peer; outside its bits its data
 * is still on its current generation) to the consistent side's current generation, and that
 * side tracks the Inconsistent one in its bitmap: same current UUID, or
 * its bitmap UUID for it is the Inconsistent side's current UUID (as @B). Outside both sides'
 * bitmaps for each other (exchanged and ORed) and the blocks the running resync delivers,
 * the data then matches, so a bitmap-based resync suffices. DRBD 9: a SyncTarget of one peer
 * that connects to another of the same data generation exchanges bitmaps with it (WFBitMapS/T)
 * and does not start a full sync. The target keeps its current UUID until its resync ends.
 */
function resyncingWithin(target: HandshakeSide, source: HandshakeSide): boolean {
  const c = target.uuids.currentUuid;
  const cs = source.uuids.currentUuid;
  if (c === 0 || target.syncBaseUuid !== c || target.syncTowardUuid !== cs) return false;
  return cs === c || source.uuids.bitmapUuids[target.nodeId] === c;
}

/** Whether data of generation `u` is at least as new as generation `uuid` (0: any). */
function reaches(u: UuidSet, uuid: number): boolean {
  return uuid === 0 || u.currentUuid === uuid || u.historyUuids.includes(uuid);
}

function knows(u: UuidSet, uuid: number): boolean {
  if (uuid === 0) return false;
  if (u.historyUuids.includes(uuid)) return true;
  for (const b of u.bitmapUuids) if (b === uuid) return true;
  return false;
}

function intersects(a: UuidSet, b: UuidSet): boolean {
  const seen = new Set<number>();
  for (const x of a.historyUuids) if (x !== 0) seen.add(x);
  for (const x of a.bitmapUuids) if (x !== 0) seen.add(x);
  for (const x of b.historyUuids) if (seen.has(x)) return true;
  for (const x of b.bitmapUuids) if (x !== 0 && seen.has(x)) return true;
  return false;
}
