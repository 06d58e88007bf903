//! The data oracle: what every block of the volume may hold, given what clients were told.
//!
//! Model. Client writes get global, increasing write ids (issue order). For each block the
//! oracle keeps the ids of the writes that touched it and a **floor**: the newest write to the
//! block that completed successfully. A replica that must hold the block's data may show the
//! floor write or any later write to the block (in flight, failed, or lost with a crashed
//! primary: their outcome is unknown), never an older one. With no floor, zeros are allowed.
//!
//! Holders. A completed write is owed only by the replicas that held it when it completed:
//! the issuing node (when it has a disk) and, under protocol C, every peer it saw Connected and
//! UpToDate. Protocols A and B owe it only locally (DRBD says so too).
//!
//! Durability. A completed write is volatile until a client flush issued after it completes
//! (or it carried FUA). A crash of any node may therefore lose every completed, unflushed
//! write: when a diskful node crashes, the floor of each block it last wrote falls back to the
//! block's newest **durable** completed write (a crashed Primary resyncs its activity-log
//! extents from its own, possibly older, data). This never blames the engine for what
//! DRBD's contract allows.
//!
//! Failover (protocols A and B). A write completes once sent; a node promoted without
//! reaching any holder may lack it, and its issuer gives it up when it rejoins as the new
//! line's sync target (DRBD: "data loss may occur" on fail-over with protocol A). Such floors
//! are relaxed when the new writer appears (`relaxFailover`).
//!
//! Split brain. When the engine resolves a split brain by discarding a victim's data (an
//! after-sb policy or discard-my-data), writes that only the victim held are lost by design:
//! their floors are relaxed to "any write to this block".

export type WriteStatus = "inflight" | "acked" | "failed" | "indeterminate";

export interface WriteInfo {
  readonly writeId: number;
  /** Node the client sent it to. */
  readonly node: number;
  readonly firstBlock: number;
  readonly blockCount: number;
  readonly fua: boolean;
  /** Primary session of the issuing node (see StateChecker), 0 when it was not writable. */
  readonly session: number;
  /** Sessions on other nodes that could accept writes without us at issue (split brain). */
  readonly rivals: readonly number[];
  readonly issueTick: number;
  status: WriteStatus;
  /** Ack order, for flush coverage; 0 until acked. */
  ackSeq: number;
  /** Nodes that held it at completion. */
  holders: readonly number[];
  /** Acked but not yet durable when its node crashed: never durable after that. */
  lostInCrash: boolean;
  /** Holders that crashed before the write was durable (bit per node id). */
  crashedHolders: number;
  /** Diskful node crashes counted when it was issued (see writeCompleted). */
  readonly crashesAtIssue: number;
}

interface BlockState {
  /** Write ids that touched the block, in issue order, from the durable floor on. */
  writes: number[];
  /** Newest acked write id (0: none, zeros allowed). */
  floor: number;
  /** The floor was relaxed by a split-brain discard: any write to the block is allowed. */
  relaxed: boolean;
  /** Floors relaxed so far: one that becomes the floor again (a crash) stays relaxed. */
  excused: Set<number> | undefined;
}

export class DataOracle {
  readonly writes = new Map<number, WriteInfo>();
  private readonly blocks: BlockState[];
  private writeIdNext = 1;
  private ackSeq = 0;
  /** Every write acked with ackSeq <= this is durable (a flush covering it completed). */
  private durableAckSeq = 0;
  /** Diskful node crashes so far. */
  private crashes = 0;
  stats = { acked: 0, failed: 0, indeterminate: 0, floorsLowered: 0, relaxed: 0 };

  constructor(readonly sizeBlocks: number) {
    this.blocks = Array.from({ length: sizeBlocks }, () => ({
      writes: [],
      floor: 0,
      relaxed: false,
      excused: undefined,
    }));
  }

  /** Registers a new client write and returns its id. */
  writeIssued(
    node: number,
    firstBlock: number,
    blockCount: number,
    fua: boolean,
    session: number,
    rivals: readonly number[],
    tick: number,
  ): WriteInfo {
    const info: WriteInfo = {
      writeId: this.writeIdNext++,
      node,
      firstBlock,
      blockCount,
      fua,
      session,
      rivals,
      issueTick: tick,
      status: "inflight",
      ackSeq: 0,
      holders: [],
      lostInCrash: false,
      crashedHolders: 0,
      crashesAtIssue: this.crashes,
    };
    this.writes.set(info.writeId, info);
    for (let b = firstBlock; b < firstBlock + blockCount; b++)
      this.blocks[b]!.writes.push(info.writeId);
    return info;
  }

  writeCompleted(info: WriteInfo, ok: boolean, holders: readonly number[]): void {
    if (!ok) {
      info.status = "failed";
      this.stats.failed++;
      return;
    }
    info.status = "acked";
    info.ackSeq = ++this.ackSeq;
    info.holders = holders;
    this.stats.acked++;
    // Held by no replica at completion while a node crashed since it was issued: the node
    // that acked it crashed with it in its volatile cache, before the ack reached the issuer
    // (holdersOf leaves out such a node). That is the loss nodeCrashed allows for a write
    // without holders, in the other order: the write is lost for good and raises no floor.
    if (!info.fua && holders.length === 0 && this.crashes > info.crashesAtIssue) {
      info.lostInCrash = true;
      return;
    }
    for (let b = info.firstBlock; b < info.firstBlock + info.blockCount; b++) {
      const s = this.blocks[b]!;
      // An older write completing after a newer one does not lower the floor.
      if (info.writeId > s.floor) {
        s.floor = info.writeId;
        s.relaxed = false;
      }
    }
  }

  /** The request never completed (its node crashed): its outcome stays unknown forever. */
  writeIndeterminate(info: WriteInfo): void {
    if (info.status !== "inflight") return;
    info.status = "indeterminate";
    this.stats.indeterminate++;
  }

  /** A flush is issued: returns the ack sequence it covers when it completes. */
  flushIssued(): number {
    return this.ackSeq;
  }

  flushCompleted(coveredAckSeq: number, ok: boolean): void {
    if (ok) this.durableAckSeq = Math.max(this.durableAckSeq, coveredAckSeq);
  }

  private isDurable(info: WriteInfo): boolean {
    if (info.status !== "acked" || info.lostInCrash) return false;
    return info.fua || info.ackSeq <= this.durableAckSeq;
  }

  /**
   * A diskful node crashed: floors of the writes it issued fall back to the block's newest
   * durable acked write. Its unflushed writes may be gone from its disk, and when it comes
   * back as a crashed Primary it is the resync source for its activity-log extents, so its
   * peers may legitimately lose them too. Writes issued elsewhere are unaffected: their
   * issuer still holds them.
   */
  nodeCrashed(node: number): void {
    this.crashes++;
    // Its unflushed acked writes are given up now, for good: a flush issued later counts
    // their ack sequence as covered, but it can only make durable what the disks still hold
    // (without this, a later crash would raise a floor back to a write already lost).
    // The same holds for a write whose every holder has now crashed before it was durable
    // (a diskless issuer keeps no copy): no replica that held it survives. (Protocols A and B
    // promise only the issuer's own copy; a diskless issuer has none.)
    for (const info of this.writes.values()) {
      if (info.status !== "acked" || this.isDurable(info)) continue;
      if (info.node === node) info.lostInCrash = true;
      // No recorded holder (a diskless issuer under protocol A or B: the write completed
      // once sent): whichever node it reached may be the one that crashed.
      if (info.holders.length === 0) info.lostInCrash = true;
      if (info.holders.includes(node)) {
        info.crashedHolders |= 1 << node;
        if (info.holders.every((h) => (info.crashedHolders & (1 << h)) !== 0)) {
          info.lostInCrash = true;
        }
      }
    }
    for (const s of this.blocks) {
      if (s.floor === 0 || !this.writes.get(s.floor)!.lostInCrash) continue;
      let floor = 0;
      for (let i = s.writes.length - 1; i >= 0; i--) {
        const info = this.writes.get(s.writes[i]!)!;
        if (this.isDurable(info)) {
          floor = info.writeId;
          break;
        }
      }
      if (floor !== s.floor) this.stats.floorsLowered++;
      s.floor = floor;
      // A floor excused before (its holders became a rival's) is excused again.
      if (s.excused?.has(floor) === true) s.relaxed = true;
      if (floor > 0) {
        // Everything before the durable floor can never be acceptable again: forget it.
        const at = s.writes.indexOf(floor);
        if (at > 0) s.writes = s.writes.slice(at);
      }
    }
  }

  /** `victim` discarded its data in favour of `survivor`: relax floors only it held. */
  splitBrainVictim(victim: number, survivor: number): void {
    for (const s of this.blocks) {
      if (s.floor === 0) continue;
      const info = this.writes.get(s.floor)!;
      if (info.holders.includes(victim) && !info.holders.includes(survivor)) this.relax(s);
    }
  }

  /**
   * A node became writable with quorum off, and can reach (itself, or its Connected UpToDate
   * peers) only `reachable`: it may lack writes that only others held, and DRBD without quorum
   * or fencing lets it serve its own data. Floors no reachable node held are relaxed. With
   * quorum on this is never called: the checkers then demand every acked write.
   */
  relaxFloorsNotHeldBy(reachable: readonly number[]): void {
    for (const s of this.blocks) {
      if (s.floor === 0 || s.relaxed) continue;
      if (!this.heldByAny(s.floor, reachable)) this.relax(s);
    }
  }

  /**
   * Failover under protocol A or B: `writer` became writable reaching only `reachable`.
   * Writes another node issued that none of them held may have been only in that node's send
   * buffer: DRBD makes the old writer a sync target of the new line on its return and its
   * unreplicated blocks give way (the bitmaps are ORed). Their floors are relaxed, as
   * `relaxFloorsNotHeldBy` does with quorum off; the writer's own writes stay owed.
   */
  relaxFailover(writer: number, reachable: readonly number[]): void {
    for (const s of this.blocks) {
      if (s.floor === 0 || s.relaxed) continue;
      if (this.writes.get(s.floor)!.node === writer) continue;
      if (!this.heldByAny(s.floor, reachable)) this.relax(s);
    }
  }

  private relax(s: BlockState): void {
    s.relaxed = true;
    (s.excused ??= new Set()).add(s.floor);
    this.stats.relaxed++;
  }

  /** Whether any of `nodes` held write `writeId` when it completed. */
  heldByAny(writeId: number, nodes: readonly number[]): boolean {
    const holders = this.writes.get(writeId)?.holders ?? [];
    return nodes.some((n) => holders.includes(n));
  }

  /**
   * Split brain, for one reader (quorum off; see `Checkers.splitBrainView`): acked write
   * `writeId` need not be visible to the reader when the two are rivals (the write's session
   * is one of the reader's `rivals`, or the reader's `session` was one of the write's) and
   * none of the nodes the reader reaches held it. The same rule `relaxFloorsNotHeldBy`
   * applies when a node becomes writable, extended to writes a rival completed after that.
   */
  rivalWriteNotHeld(
    writeId: number,
    reader: { session: number; rivals: readonly number[]; reachable: readonly number[] },
  ): boolean {
    const info = this.writes.get(writeId);
    if (info === undefined) return false;
    const rivals =
      reader.rivals.includes(info.session) ||
      (reader.session !== 0 && info.rivals.includes(reader.session));
    return rivals && !this.heldByAny(writeId, reader.reachable);
  }

  /** Whether the block has a write whose outcome is open (in flight, failed, lost). */
  unsettled(block: number): boolean {
    const s = this.blocks[block]!;
    for (let i = s.writes.length - 1; i >= 0; i--) {
      const id = s.writes[i]!;
      if (id <= s.floor) break;
      if (this.writes.get(id)!.status !== "acked") return true;
    }
    return false;
  }

  floorOf(block: number): number {
    return this.blocks[block]!.floor;
  }

  /** Whether `node` owes the block's floor write (it held it when it completed). */
  owes(node: number, block: number): boolean {
    const s = this.blocks[block]!;
    if (s.floor === 0 || s.relaxed) return false;
    return this.writes.get(s.floor)!.holders.includes(node);
  }

  /**
   * Whether write id `found` may be in `block` for a reader that must see at least `floor`
   * (the floor at the time the reader looked). Returns null when fine, else why not.
   */
  check(block: number, found: number, floor = this.blocks[block]!.floor): string | null {
    const s = this.blocks[block]!;
    if (found < 0) return `block ${block} holds garbage (no valid tag)`;
    if (found === 0)
      return floor === 0 || s.relaxed ? null : `block ${block} is zero, acked write ${floor} lost`;
    const info = this.writes.get(found);
    if (info === undefined) return `block ${block} holds unknown write ${found}`;
    if (block < info.firstBlock || block >= info.firstBlock + info.blockCount) {
      return `block ${block} holds write ${found}, which never touched it`;
    }
    if (s.relaxed) return null;
    if (found < floor) {
      return `block ${block} holds write ${found} but write ${floor} was acked (holders ${this.writes.get(floor)?.holders.join(",")})`;
    }
    return null;
  }

  /** Write ids allocated so far (for stats). */
  writeCount(): number {
    return this.writeIdNext - 1;
  }
}
