//! Online grow (DRBD's `drbdadm resize`): the pure decisions of a resize round; replica.ts
//! carries the messages and applies the result.
//!
//! A round, run by the initiator I (the Primary, or any diskful node when none is Primary):
//!   1. I asks every connected peer `resizeRequest`; each answers `resizeReply` with the
//!      blocks its backing device can hold now (0 when diskless: no limit). The shell
//!      re-reads its device size first (`backingCapacity` event).
//!   2. The new size is the smallest capacity of I and its diskful peers (DRBD: the size
//!      is the minimum over the diskful nodes, so a peer with a smaller disk keeps the
//!      volume small), or the operator's size when given and every disk can hold it.
//!   3. I sends `resize`; every peer moves its metadata (durable) and grows its bitmaps,
//!      then answers `resizeAck`. I persists its own move meanwhile.
//!   4. Only when every ack is in does I grow: no peer sees a write or a resync request
//!      past its end. Unless assume-clean, I marks the new blocks out of sync toward every
//!      diskful peer; the Established link then renegotiates and resyncs them from I
//!      (generation.ts @E1/@E3: the side with bits, or the Primary, is the source).
//! Preconditions (refusals name what to do): every diskful peer connected and Established
//! (no resync, no verify), no other Primary, no round already running, and not smaller
//! than now (mirra does not shrink online).

import type { AdminCommand, DiskState, NodeId, PeerMessage, Role } from "./types.js";

export interface ResizeRound {
  readonly commandId: number;
  readonly id: number;
  /** The operator's size in blocks; 0 = as large as the disks allow. */
  readonly requestedBlocks: number;
  readonly assumeClean: boolean;
  phase: "query" | "apply";
  /** Peers whose reply (query) or ack (apply) is still missing, bit per node id. */
  waitMask: number;
  /** Smallest capacity so far and the node it belongs to. */
  capacityBlocks: number;
  limitedBy: string;
  /** The chosen size (apply phase). */
  sizeBlocks: number;
  /** Metadata sequence of our own resize record (apply phase). */
  metaSeq: number;
  /** Peers that did not grow in phase 2 (disconnected, or their disk could not). */
  readonly lost: string[];
}

/** A peer as the preconditions see it. */
export interface ResizePeer {
  readonly peer: NodeId;
  readonly name: string;
  readonly diskful: boolean;
  readonly established: boolean;
  readonly replication: string;
  readonly peerRole: Role;
  readonly peerDisk: DiskState;
}

/** Why this node cannot start a resize now, or undefined. */
export function resizeRefusal(
  self: { readonly diskful: boolean; readonly disk: DiskState; readonly role: Role },
  peers: readonly ResizePeer[],
  running: boolean,
): string | undefined {
  if (running) return "A resize is already in progress";
  if (!self.diskful || self.disk !== "UpToDate")
    return "Resize needs UpToDate local data: run it on a node whose disk is UpToDate";
  for (const p of peers) {
    if (p.peerRole === "Primary" && self.role !== "Primary")
      return `Node ${p.name} is Primary: run the resize there`;
    if (!p.diskful) continue;
    if (!p.established)
      return `Resize needs every diskful peer connected: ${p.name} is not (connect it first)`;
    if (p.replication !== "Established")
      return `Resize waits for ${p.name}: replication is ${p.replication} (let it finish)`;
  }
  return undefined;
}

export type ResizeDecision =
  | { readonly kind: "grow"; readonly sizeBlocks: number }
  | { readonly kind: "none" }
  | { readonly kind: "refuse"; readonly error: string };

/** Step 2: the size a round settles on. */
export function decideResize(
  currentBlocks: number,
  round: Pick<ResizeRound, "requestedBlocks" | "capacityBlocks" | "limitedBy">,
): ResizeDecision {
  const mib = (blocks: number): string => `${(blocks * 4096) / 1048576} MiB`;
  const want = round.requestedBlocks;
  if (want > 0 && want < currentBlocks)
    return {
      kind: "refuse",
      error:
        `Shrinking (to ${mib(want)} from ${mib(currentBlocks)}) is not supported: ` +
        "mirra grows volumes online but never shrinks them",
    };
  if (want > 0 && want > round.capacityBlocks)
    return {
      kind: "refuse",
      error:
        `The backing device of ${round.limitedBy} holds only ${mib(round.capacityBlocks)}, ` +
        `less than the ${mib(want)} asked for (grow it first)`,
    };
  const size = want > 0 ? want : round.capacityBlocks;
  if (size <= currentBlocks) return { kind: "none" };
  return { kind: "grow", sizeBlocks: size };
}

/** Folds one capacity into the round (0 = diskless: no limit). */
export function noteCapacity(round: ResizeRound, capacityBlocks: number, who: string): void {
  if (capacityBlocks > 0 && capacityBlocks < round.capacityBlocks) {
    round.capacityBlocks = capacityBlocks;
    round.limitedBy = who;
  }
}

export function peerBit(peer: NodeId): number {
  return 1 << peer;
}

/** What a round needs of its replica (replica.ts implements it over its private state). */
export interface ResizeHost {
  readonly self: { readonly diskful: boolean; readonly disk: DiskState; readonly role: Role };
  readonly selfName: string;
  readonly sizeBlocks: number;
  /** What this node's backing device holds (0: diskless, no limit). */
  readonly capacityBlocks: number;
  readonly metaSeqDone: number;
  readonly peers: readonly ResizePeer[];
  send(to: NodeId, message: PeerMessage): void;
  /** Persists the metadata move for `sizeBlocks`; returns its metadata sequence. */
  persistResize(sizeBlocks: number): number;
  /** Grows every size-bound structure (after the move is durable); false if the disk failed. */
  grow(sizeBlocks: number): boolean;
  /** Marks [from, to) out of sync toward every diskful peer. */
  markNew(fromBlock: number, toBlock: number): void;
  done(commandId: number, ok: boolean, error?: string): void;
}

type ResizeMessage = Extract<
  PeerMessage,
  { type: "resizeRequest" | "resizeReply" | "resize" | "resizeAck" }
>;

/** The resize rounds of one replica: the one it runs, and the grows peers asked of it. */
export class ResizeCoordinator {
  private round: ResizeRound | undefined = undefined;
  private idNext = 1;
  /** Grows a peer asked for, waiting for our metadata move to be durable. */
  private readonly pending: { peer: NodeId; id: number; size: number; metaSeq: number }[] = [];

  /** Anything for `progress` to move on. */
  get active(): boolean {
    return this.round !== undefined || this.pending.length > 0;
  }

  /** A round runs here (a peer's promotion waits: no new Primary mid-resize). */
  get running(): boolean {
    return this.round !== undefined;
  }

  start(h: ResizeHost, commandId: number, c: Extract<AdminCommand, { type: "resize" }>): void {
    const refusal = resizeRefusal(h.self, h.peers, this.running || this.pending.length > 0);
    if (refusal !== undefined) return h.done(commandId, false, refusal);
    const r: ResizeRound = {
      commandId,
      id: this.idNext++,
      requestedBlocks: c.sizeBlocks ?? 0,
      assumeClean: c.assumeClean === true,
      phase: "query",
      waitMask: 0,
      capacityBlocks: h.capacityBlocks,
      limitedBy: h.selfName,
      sizeBlocks: 0,
      metaSeq: 0,
      lost: [],
    };
    this.round = r;
    for (const p of h.peers) {
      if (!p.established) continue;
      r.waitMask |= peerBit(p.peer);
      h.send(p.peer, { type: "resizeRequest", id: r.id, sizeBlocks: r.requestedBlocks });
    }
  }

  onMessage(h: ResizeHost, p: ResizePeer, m: ResizeMessage): void {
    const r = this.round;
    switch (m.type) {
      case "resizeRequest":
        return h.send(p.peer, { type: "resizeReply", id: m.id, capacityBlocks: h.capacityBlocks });
      case "resize": {
        // Phase 2 of a peer's round: move our metadata, then grow and confirm (progress).
        // A size our disk cannot hold (it shrank since we answered) is refused up front:
        // trying would fail the metadata write and with it the disk.
        const grow = h.capacityBlocks > 0 && m.sizeBlocks > h.sizeBlocks;
        if (grow && m.sizeBlocks > h.capacityBlocks)
          return h.send(p.peer, { type: "resizeAck", id: m.id, ok: false });
        const metaSeq = grow ? h.persistResize(m.sizeBlocks) : 0;
        this.pending.push({ peer: p.peer, id: m.id, size: m.sizeBlocks, metaSeq });
        return;
      }
      case "resizeReply":
      case "resizeAck":
        if (r === undefined || r.id !== m.id) return;
        if (r.phase !== (m.type === "resizeReply" ? "query" : "apply")) return;
        if (m.type === "resizeReply" && p.diskful) noteCapacity(r, m.capacityBlocks, p.name);
        if (m.type === "resizeAck" && !m.ok) r.lost.push(`${p.name} (could not grow)`);
        r.waitMask &= ~peerBit(p.peer);
        return;
    }
  }

  /** Moves the rounds on: metadata durable, replies in, links lost. Called from pump. */
  progress(h: ResizeHost): void {
    for (let i = 0; i < this.pending.length;) {
      const g = this.pending[i]!;
      if (g.metaSeq > h.metaSeqDone) {
        i++;
        continue;
      }
      this.pending.splice(i, 1);
      const ok = h.grow(g.size);
      if (h.peers.some((p) => p.peer === g.peer && p.established))
        h.send(g.peer, { type: "resizeAck", id: g.id, ok });
    }
    const r = this.round;
    if (r === undefined) return;
    const lost: string[] = [];
    for (const p of h.peers) {
      if ((r.waitMask & peerBit(p.peer)) === 0 || p.established) continue;
      r.waitMask &= ~peerBit(p.peer);
      lost.push(p.name);
    }
    if (r.phase === "query") return this.progressQuery(h, r, lost);
    r.lost.push(...lost);
    if (r.waitMask !== 0 || r.metaSeq > h.metaSeqDone) return;
    this.round = undefined;
    const old = h.sizeBlocks;
    if (!h.grow(r.sizeBlocks))
      return h.done(r.commandId, false, "The metadata could not be moved: the disk failed");
    // The new blocks hold whatever each backing device had there: resync them from here
    // (the Established links renegotiate), unless the operator vouches they are equal.
    if (!r.assumeClean && r.sizeBlocks > old) h.markNew(old, r.sizeBlocks);
    if (r.lost.length === 0) return h.done(r.commandId, true);
    const who = r.lost.join(", ");
    h.done(
      r.commandId,
      false,
      `Grown here, but not on ${who}: run resize again once it is connected and can grow`,
    );
  }

  private progressQuery(h: ResizeHost, r: ResizeRound, lost: readonly string[]): void {
    if (lost.length > 0) {
      this.round = undefined;
      const error = `${lost.join(", ")} disconnected during the resize; nothing changed`;
      return h.done(r.commandId, false, error);
    }
    if (r.waitMask !== 0) return;
    const d = decideResize(h.sizeBlocks, r);
    if (d.kind === "refuse") {
      this.round = undefined;
      return h.done(r.commandId, false, d.error);
    }
    // Phase 2 runs even when we keep our size: a peer that missed an earlier round's grow
    // (it disconnected) catches up; our bits for its new blocks are still set.
    r.phase = "apply";
    r.sizeBlocks = d.kind === "grow" ? d.sizeBlocks : h.sizeBlocks;
    if (r.sizeBlocks > h.sizeBlocks) r.metaSeq = h.persistResize(r.sizeBlocks);
    for (const p of h.peers) {
      if (!p.established) continue;
      r.waitMask |= peerBit(p.peer);
      const m = { id: r.id, sizeBlocks: r.sizeBlocks, assumeClean: r.assumeClean };
      h.send(p.peer, { type: "resize", ...m });
    }
  }
}
