//! The replicated volume on one node: a synchronous, single-threaded state machine. Inputs
//! are `Event`s (client requests, peer messages, disk and metadata completions, ticks,
//! admin commands); outputs are `Effect`s returned by `step`. No I/O, no clocks, no
//! randomness: the same events always give the same effects.
//!
//! Rules this file enforces (each is asserted or structurally guaranteed):
//! - a data write to an extent is issued only after the activity-log transaction naming it
//!   is durable (and after any UUID rotation or promotion flag it depends on);
//! - a write completes only after its local write and the acks its protocol requires
//!   (C: write ack, B: receive ack, A: none) from every peer it was sent to, or after that
//!   peer is gone and the write's blocks are marked out of sync for it;
//! - overlapping writes are ordered: a later one starts only after the earlier completed;
//! - a flush completes only once every earlier write is durable locally and on every peer
//!   (barrier acked), or the peer is gone and the blocks are marked out of sync for it;
//! - generation identifiers only move forward (current UUIDs enter the history);
//! - a split brain is never merged: a policy names a victim or both sides go StandAlone;
//! - without quorum a Primary completes no write successfully.
//!
//! Who knows which blocks a node lacks (the bitmaps):
//! - the Primary marks a write for every diskful peer it did not send it to, and, when a
//!   link breaks, every block still in that peer's transfer log (not yet barrier-acked);
//! - a Secondary marks a received write for every node its Primary does not reach (the
//!   Primary's connectedMask) and, from the Primary's peer acks, for every node that did not
//!   confirm it; writes whose peer ack never came are marked for all when the Primary is lost
//!   (reconciliation among the survivors);
//! - a crashed Primary marks its activity-log extents for every peer at restart.
//!
//! Resync: the decision table (generation.ts) picks a direction; the target sends its
//! bitmap, the source ORs it with its own and then drives: it reads marked runs and sends
//! them (or digests first with csums-alg), the target writes and acks, the source clears.
//! A target takes one source at a time; later sources wait (PausedSyncT) and only transfer
//! the blocks the earlier ones did not cover. Resync data never overwrites a block that the
//! Primary's stream wrote since we joined it, unless it comes from that Primary itself.
//!
//! Quorum: a peer's vote counts once it confirmed the connection; a Primary that loses a
//! diskful peer holds successful completions until every remaining peer acknowledged (a
//! ping after our new state) that the lost peer is behind, so no voter can help that peer
//! become Primary with data that lacks those writes. A diskless tiebreaker only lends its
//! vote to Primaries that descend from the last one it followed.
//!
//! Simplifications (see the report in the issue): a SyncTarget cannot be Primary (promotion
//! waits for the resync); dual-primary overlapping writes are not conflict-resolved; a
//! Primary is never demoted for a split brain it loses unless it lacks quorum; the UUID
//! history is bounded (older relations fall back to a full sync).

import { assert } from "../stdx/assert.js";
import { ActivityLog } from "./activity_log.js";
import { Bitmap } from "./bitmap.js";
import { resolveConfig, type ResolvedConfig } from "./config.js";
import { crc32c } from "./ondisk/crc32c.js";
import { decideSync, mintUuid, uuidCounterOf, type SyncDecision } from "./generation.js";
import { createPersistedMeta, historyUuidsMax } from "./meta.js";
import { PeerState, type StateSnapshot } from "./peer.js";
import { hasQuorum } from "./quorum.js";
import {
  makeOp,
  type FlushReq,
  type LocalOp,
  type LocalOpKind,
  type ReadReq,
  type ResyncGroup,
  type WriteReq,
} from "./requests.js";
import { splitBrainVictim } from "./split_brain.js";
import { ResizeCoordinator, type ResizeHost } from "./resize.js";
import type {
  AdminCommand,
  DiskState,
  Effect,
  Event,
  IoErrorCode,
  MetadataRecord,
  NodeId,
  PeerMessage,
  PeerView,
  PersistedMeta,
  ReplicaView,
  ReplicationState,
  ResourceConfig,
  Role,
  StateChange,
  UuidSet,
} from "./types.js";
import { blockSizeBytes } from "./types.js";

/** A confirmation round as a ping's seq: 1..2^32-1 (0 is a keepalive), wrapping. */
function confirmSeq(round: number): number {
  return ((round - 1) % 0xffffffff) + 1;
}

/** Blocks per resync request that the rate budget never cuts (a run of marked blocks, 32 KiB). */
const resyncChunkBlocksMin = 8;
/** Blocks per online-verify request (the granularity verify marks). */
const verifyChunkBlocks = 8;
/** Local reads in flight above which when-congested-remote reads from a peer. */
const congestedReadsMin = 16;

export class Replica implements ReplicaView {
  /** Replaced (never mutated) by an online grow: only `sizeBlocks` changes. */
  config: ResolvedConfig;
  readonly nodeId: NodeId;
  private readonly diskful: boolean;
  private readonly effects: Effect[] = [];
  private started = false;
  private tickNow = 0;

  // Role and local disk.
  role: Role = "Secondary";
  disk: DiskState;
  quorum = true;
  suspended = false;
  private promotionSeq = 0;
  private autoPromoted = false;
  private openCount = 0;
  private pendingPromotion:
    { commandId: number; id: number; waitMask: number; force: boolean } | undefined;
  private promotionIdNext = 1;

  // Generation identifiers and superblock flags (in memory; persisted by persistSuperblock).
  /** Visible generation: what the metadata device holds (durable). Never goes backwards. */
  currentUuid: number;
  historyUuids: number[];
  /** Intended generation: written to the superblock, visible once that write is durable. */
  private sbCurrentUuid: number;
  private sbHistoryUuids: number[];
  /** Superblock writes in flight with the generation each makes visible. */
  private readonly uuidCommits: { seq: number; current: number; history: number[] }[] = [];
  private uuidCounter: number;
  private consistent: boolean;
  private wasUpToDate: boolean;
  private primaryFlag: boolean;
  private crashedPrimary: boolean;

  readonly peerStates: (PeerState | undefined)[] = [];
  readonly peers: PeerState[] = [];
  private readonly al: ActivityLog;
  private readonly persistedAl: readonly number[];
  /** Target side: blocks made current by resync or application writes in this round. */
  private syncCovered: Bitmap | undefined = undefined;
  /**
   * Blocks written by replicated application data since we (re)joined the stream of
   * `appWrittenWriter`, the Primary writing to us. Such a block is current here: resync
   * data for it may be older (the source may lag behind the stream) and is skipped.
   */
  private readonly appWritten: Bitmap;
  private appWrittenWriter: NodeId = -1;
  /**
   * Per block, the sequence of the last write of stream `streamWrittenId` we applied (while
   * UpToDate and no peer's target, only until the writer's peer ack: settleStreamWrite).
   * Unlike `appWritten` it survives the loss of the writer: a source's resync reply stamped
   * with an older position of that stream was read before that write reached the source,
   * and is skipped.
   */
  private readonly streamWritten = new Map<number, number>();
  private streamWrittenId = 0;
  /** Reused by noteStreamWrite (the blocks whose peer ack is due). */
  private readonly scratchBlocks = new Set<number>();
  /** Current UUID of the source whose data `syncCovered` describes. */
  private syncCoveredUuid = 0;
  /** That source's write stream position (its state's streamId, streamSeq). */
  private syncCoveredStreamId = 0;
  private syncCoveredStreamSeq = 0;
  /** While Inconsistent: the generation the resync brings us to (after a restart: our own). */
  private syncTowardUuid = 0;
  /**
   * While Inconsistent: the generation our data holds outside the running bitmap resync's
   * bits (our current UUID when the first bitmap-based syncStart made us Inconsistent); 0
   * for a full sync, after invalidate or a restart (unknown: the next resync is full).
   */
  private syncBaseUuid = 0;
  /** As Primary: our write stream's id (unique, minted at promotion). */
  private streamId = 0;
  /** The stream we last received writes from (or wrote, as Primary) and how far. */
  private followedStream = 0;
  private followedSeq = 0;
  /** Diskless: the current UUID of the last Primary we followed (tiebreaker memory). */
  private lastPrimaryUuid = 0;
  /** Voter confirmation after a Primary lost a peer (see linkLost). */
  private confirmRound = 0;
  private confirmNeeded = 0;
  private confirmWaitCommit = false;
  private readonly confirmHeld: number[] = [];
  private lastPrimaryHistory: number[] = [];
  private lastPrimaryNode: NodeId = -1;

  // Metadata writes: durable in issue order.
  private metaSeqIssued = 0;
  private metaSeqDone = 0;
  private readonly metaIo = new Map<number, number>();
  private readonly metaSeqCompleted = new Set<number>();
  private readonly alTxMeta = new Map<number, number>();
  private alTxPersisted: number;
  /** Writes issued from now on wait until this metadata is durable (promotion, UUIDs). */
  private writeGateMetaSeq = 0;
  /** Resync writes wait until "inconsistent" is durable. */
  private resyncGateMetaSeq = 0;

  // Requests.
  private ioIdNext = 1;
  private readonly ioMap = new Map<number, LocalOp>();
  /** Range operations in arrival order (the overlap scheduler). */
  private readonly ops: LocalOp[] = [];
  /** A clean detach under way (admin down): 0 draining, -1 flushing, > 0 its AL write. */
  private down: { readonly commandId: number; metaSeq: number } | undefined = undefined;
  private readonly writes: WriteReq[] = [];
  private readonly writesBySeq = new Map<number, WriteReq>();
  private readonly flushes: FlushReq[] = [];
  private readonly remoteReads = new Map<number, ReadReq>();
  private readonly suspendedEvents: Event[] = [];
  /** Completions held while quorum is lost with on-no-quorum=suspend-io. */
  private readonly heldWrites: WriteReq[] = [];
  private submitSeqNext = 1;
  private writeSeqNext = 1;
  private readIdNext = 1;
  private handshakeIdNext = 1;
  private epochCurrent = 0;
  private epochWrites = 0;
  private epochTick = 0;
  private localReadsPending = 0;
  private roundRobin = 0;
  private alFlushPending = false;
  private appIoThisTick = false;
  private appIoLastTick = false;
  // Online resize (resize.ts).
  /** Blocks the local backing device can hold, as the shell last said. */
  private capacityBlocks: number;
  private readonly resize = new ResizeCoordinator();

  constructor(config: ResourceConfig, nodeId: NodeId, persisted?: PersistedMeta) {
    this.config = resolveConfig(config);
    this.nodeId = nodeId;
    const self = this.config.byId[nodeId];
    assert(self !== undefined, `node ${nodeId} is not in the resource`);
    this.diskful = self.disk === "diskful";
    const fresh = persisted === undefined;
    const meta = persisted ?? createPersistedMeta(this.config.sizeBlocks, this.diskful);
    const sb = meta.superblock;
    this.currentUuid = sb.currentUuid;
    this.historyUuids = sb.historyUuids.slice();
    this.sbCurrentUuid = sb.currentUuid;
    this.sbHistoryUuids = sb.historyUuids.slice();
    this.uuidCounter = sb.uuidCounter;
    this.consistent = sb.consistent;
    this.wasUpToDate = sb.wasUpToDate;
    this.primaryFlag = sb.primary;
    this.crashedPrimary = sb.crashedPrimary;
    if (!this.diskful) this.disk = "Diskless";
    else if (!sb.consistent) this.disk = "Inconsistent";
    else if (!sb.wasUpToDate) this.disk = "Outdated";
    else this.disk = fresh ? "UpToDate" : "Consistent";
    // Restarted Inconsistent: the resync we were under was bringing us at least to our own
    // generation (its target is not persisted); a source must reach it (row @J0).
    if (this.disk === "Inconsistent") this.syncTowardUuid = sb.currentUuid;
    const o = this.config.options;
    for (const node of this.config.nodes) {
      if (node.id === nodeId) continue;
      const bits = this.diskful ? meta.bitmaps[node.id] : undefined;
      const p = new PeerState(
        node.id,
        node.name,
        node.disk === "diskful",
        this.config.sizeBlocks,
        o,
        bits,
      );
      p.bitmapUuid = sb.bitmapUuids[node.id] ?? 0;
      this.peerStates[node.id] = p;
      this.peers.push(p);
    }
    this.al = new ActivityLog(o.alExtents, o.alExtentBlocks, meta.alExtents, meta.alTransactionSeq);
    this.persistedAl = meta.alExtents.slice();
    this.alTxPersisted = meta.alTransactionSeq;
    this.appWritten = new Bitmap(this.diskful ? this.config.sizeBlocks : 0);
    this.capacityBlocks = this.config.sizeBlocks;
  }

  // ---------------------------------------------------------------------------------------
  // Inspection.

  get alExtents(): readonly number[] {
    return this.al.list();
  }

  peer(id: NodeId): PeerView | undefined {
    return this.peerStates[id];
  }

  /** The inspection view for checkers: the replica itself, read-only, no copies. */
  view(): ReplicaView {
    return this;
  }

  canWrite(): boolean {
    if (this.role !== "Primary" || this.suspended) return false;
    if (!this.quorumOk()) return false;
    return this.hasDataAccess();
  }

  get nextUuid(): number {
    return this.sbCurrentUuid;
  }

  /** In-flight client writes (for tests and status). */
  get writesInFlight(): number {
    return this.writes.length;
  }

  // ---------------------------------------------------------------------------------------
  // Input.

  step(event: Event): readonly Effect[] {
    this.effects.length = 0;
    if (event.type !== "start") assert(this.started, "start the replica first");
    switch (event.type) {
      case "start":
        this.onStart();
        break;
      case "clientWrite":
        this.onClientWrite(event);
        break;
      case "clientRead":
        this.onClientRead(event);
        break;
      case "clientFlush":
        this.onClientFlush(event.requestId);
        break;
      case "peerConnected":
        this.onPeerConnected(event.peer);
        break;
      case "peerDisconnected":
        this.onPeerDisconnected(event.peer);
        break;
      case "peerMessage":
        this.onPeerMessage(event.from, event.message);
        break;
      case "diskCompleted":
        this.onDiskCompleted(event.ioId, event.ok, event.data);
        break;
      case "metadataCompleted":
        this.onMetadataCompleted(event.ioId, event.ok);
        break;
      case "tick":
        this.onTick();
        break;
      case "admin":
        this.onAdmin(event.commandId, event.command);
        break;
      case "backingCapacity":
        this.capacityBlocks = event.sizeBlocks;
        break;
    }
    // Completions can unblock other queues; run them until nothing more happens.
    for (let round = 0; round < 8; round++) {
      const before = this.effects.length;
      this.pump();
      if (this.effects.length === before) break;
    }
    return this.effects;
  }

  private onStart(): void {
    assert(!this.started, "start once");
    this.started = true;
    if (this.diskful && (this.primaryFlag || this.persistedAl.length > 0)) {
      // Crashed (as Primary, or as a Secondary that logged replicated writes): whatever was
      // hot in the activity log may differ on any peer. The handshake makes the peer that
      // did not crash the source for those blocks (generation.ts @E2).
      this.crashedPrimary = true;
      this.primaryFlag = false;
      const eb = this.config.options.alExtentBlocks;
      for (const extent of this.persistedAl) {
        const first = extent * eb;
        if (first >= this.config.sizeBlocks) continue;
        const count = Math.min(eb, this.config.sizeBlocks - first);
        for (const p of this.peers) if (p.diskful) this.markOutOfSync(p, first, count);
      }
      this.persistSuperblock();
    }
    for (const p of this.peers) {
      p.want = true;
      this.setConnection(p, "Connecting");
      this.emit({ type: "connectPeer", peer: p.peer });
    }
    // The starting quorum is what it is; only losing quorum later outdates a Secondary.
    this.quorum = hasQuorum(this.config.options.quorum, this.config.nodes.length, 1);
    if (!this.quorum) this.emitState({ kind: "quorum", quorum: false });
    // A resource of one node: its data is the only data there is.
    if (this.peers.length === 0 && this.diskful) {
      this.crashedPrimary = false;
      this.maybeConfirmData();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Client writes.

  private onClientWrite(e: Extract<Event, { type: "clientWrite" }>): void {
    const error = this.validateRange(e.offsetBytes, e.data.length, true);
    if (error !== undefined) return this.completeRequest(e.requestId, false, error);
    if (this.role !== "Primary") return this.completeRequest(e.requestId, false, "EPERM");
    if (this.quorumBlocksIo(e)) return;
    if (!this.hasDataAccess()) return this.completeRequest(e.requestId, false, "EIO");
    this.appIoThisTick = true;
    const req: WriteReq = {
      requestId: e.requestId,
      firstBlock: e.offsetBytes / blockSizeBytes,
      blockCount: e.data.length / blockSizeBytes,
      data: e.data,
      fua: e.fua,
      submitSeq: this.submitSeqNext++,
      seq: 0,
      epoch: 0,
      phase: "waiting",
      hasLocal: false,
      localPending: false,
      localOk: false,
      acksPendingMask: 0,
      ackedOkMask: 0,
      ackLostMask: 0,
      sentMask: 0,
      startTick: this.tickNow,
      alHeld: false,
      replicated: false,
    };
    this.writes.push(req);
  }

  private validateRange(
    offsetBytes: number,
    lengthBytes: number,
    write: boolean,
  ): IoErrorCode | undefined {
    if (!Number.isInteger(offsetBytes) || !Number.isInteger(lengthBytes)) return "EINVAL";
    if (offsetBytes < 0 || lengthBytes <= 0) return "EINVAL";
    if (offsetBytes % blockSizeBytes !== 0 || lengthBytes % blockSizeBytes !== 0) return "EINVAL";
    if (offsetBytes + lengthBytes > this.config.sizeBlocks * blockSizeBytes) {
      return write ? "ENOSPC" : "EINVAL";
    }
    return undefined;
  }

  /** Handles a request while quorum is lost; true when the request was consumed. */
  private quorumBlocksIo(e: Event): boolean {
    if (this.quorumOk() && !this.suspended) return false;
    const id =
      e.type === "clientWrite" || e.type === "clientRead" || e.type === "clientFlush"
        ? e.requestId
        : -1;
    assert(id >= 0, "client request");
    if (this.config.options.onNoQuorum === "io-error" && !this.quorumOk()) {
      this.completeRequest(id, false, "EIO");
    } else {
      this.suspendedEvents.push(e);
    }
    return true;
  }

  /** Starts waiting writes whose turn has come. */
  private pumpWrites(): void {
    if (this.role !== "Primary") return;
    for (const p of this.peers) if (p.link && !p.handshakeDone && p.want) return;
    for (let i = 0; i < this.writes.length; i++) {
      const req = this.writes[i]!;
      if (req.phase !== "waiting") continue;
      if (this.overlapsEarlierWrite(i)) continue;
      if (!this.startWrite(req)) return;
    }
  }

  private overlapsEarlierWrite(index: number): boolean {
    const req = this.writes[index]!;
    for (let j = 0; j < index; j++) {
      const w = this.writes[j]!;
      if (w.phase === "done") continue;
      if (overlaps(w.firstBlock, w.blockCount, req.firstBlock, req.blockCount)) return true;
    }
    return false;
  }

  /** Starts one write; false when the activity log is full (try again later). */
  private startWrite(req: WriteReq): boolean {
    const local = this.diskful && this.disk === "UpToDate";
    let needMeta = 0;
    // A diskless Primary too: a peer that went away while we could not write (no quorum,
    // no new generation then) must find itself behind when it returns.
    if (!this.diskful && this.role === "Primary" && this.sbCurrentUuid !== 0) {
      this.maybeRotateUuid();
    }
    if (local) {
      this.maybeRotateUuid();
      if (!this.config.faults.skipActivityLog) {
        needMeta = this.activateAl(req.firstBlock, req.blockCount);
        if (needMeta < 0) return false;
        req.alHeld = true;
      }
    }
    req.phase = "inflight";
    req.seq = this.writeSeqNext++;
    this.writesBySeq.set(req.seq, req);
    if (local) {
      // The data goes to the peers when the local write is issued, i.e. once the AL
      // transaction is durable: a peer never holds a write that a crashed Primary's
      // activity log does not cover.
      const op = makeOp("clientWrite", true, req.firstBlock, req.blockCount);
      op.needMetaSeq = Math.max(needMeta, this.writeGateMetaSeq);
      op.data = req.data;
      op.writeReq = req;
      req.hasLocal = true;
      req.localPending = true;
      this.ops.push(op);
    } else {
      this.replicateWrite(req);
    }
    this.maybeCompleteWrite(req);
    return true;
  }

  /** Sends the write to every replicating peer; marks it out of sync for the others. */
  private replicateWrite(req: WriteReq): void {
    req.replicated = true;
    // ko-count measures the peers' answer time, not our own queueing before the send.
    req.startTick = this.tickNow;
    req.epoch = this.epochCurrent;
    this.epochWrites++;
    const protocol = this.config.protocol;
    const ack = protocol === "C" ? "write" : protocol === "B" ? "recv" : "none";
    // Receivers learn who else gets this write and mark it for everyone else at once.
    let targets = 1 << this.nodeId;
    for (const p of this.peers) {
      if (p.diskful && p.replicating && this.peerUsable(p)) targets |= 1 << p.peer;
    }
    for (const p of this.peers) {
      if (!p.diskful) continue;
      if (p.replicating && this.peerUsable(p)) {
        this.send(p.peer, {
          type: "data",
          seq: req.seq,
          epoch: req.epoch,
          firstBlock: req.firstBlock,
          data: req.data,
          ack,
          targets,
        });
        req.sentMask |= 1 << p.peer;
        if (ack !== "none") req.acksPendingMask |= 1 << p.peer;
        p.transferLog.push(req.epoch, req.firstBlock, req.blockCount);
        p.lastEpochSent = req.epoch;
      } else if (this.diskful) {
        this.markOutOfSync(p, req.firstBlock, req.blockCount);
      }
    }
    if (this.epochWrites >= this.config.options.maxEpochSize) this.closeEpoch();
  }

  /**
   * A peer that becomes replicating while writes are in flight gets them too: every peer
   * connected when a write completes holds it (or is marked and resyncing).
   */
  private lateReplicate(p: PeerState): void {
    if (this.role !== "Primary" || !p.replicating || !this.peerUsable(p)) return;
    const protocol = this.config.protocol;
    const ack = protocol === "C" ? "write" : protocol === "B" ? "recv" : "none";
    const bit = 1 << p.peer;
    for (const req of this.writes) {
      if (req.phase !== "inflight" || !req.replicated || (req.sentMask & bit) !== 0) continue;
      this.send(p.peer, {
        type: "data",
        seq: req.seq,
        epoch: this.epochCurrent,
        firstBlock: req.firstBlock,
        data: req.data,
        ack,
        targets: req.sentMask | bit | (1 << this.nodeId),
      });
      this.epochWrites++;
      req.startTick = this.tickNow;
      req.sentMask |= bit;
      if (ack !== "none") req.acksPendingMask |= bit;
      p.transferLog.push(this.epochCurrent, req.firstBlock, req.blockCount);
      p.lastEpochSent = this.epochCurrent;
    }
  }

  /** Whether peer `q` receives the writes that Primary `writer` sends (as far as we know). */
  private getsWritesFrom(q: PeerState, writer: PeerState): boolean {
    return (writer.peerConnectedMask & (1 << q.peer)) !== 0;
  }

  /**
   * Forgets which blocks the writer's stream reached: from now on (a new writer, or none)
   * we may miss writes, so only blocks written again are known current.
   */
  private resetAppWritten(writer: NodeId): void {
    if (this.appWrittenWriter !== -1 || writer !== -1) this.appWritten.clearAll();
    if (this.appWrittenWriter !== -1) for (const q of this.peers) q.lacksPrimaryWrite.clearAll();
    this.appWrittenWriter = writer;
  }

  /** Records a stream write for ordering resync data against it (see `streamWritten`). */
  private noteStreamWrite(writer: PeerState, seq: number, first: number, count: number): void {
    const stream = writer.peerStreamId;
    if (stream !== this.streamWrittenId) {
      this.streamWritten.clear();
      this.streamWrittenId = stream;
    }
    if (stream === 0) {
      this.streamWritten.clear();
      return;
    }
    // UpToDate and no peer's target: only writes whose peer ack is still due are kept. One
    // pass over the blocks still awaiting an ack (not one scan of them per record: at depth
    // 64 that was most of a Secondary's engine time).
    if (!this.mayTakeResync() && this.streamWritten.size > 0) {
      const due = this.scratchBlocks;
      due.clear();
      for (const [f, c] of writer.unackedWrites) for (let b = f; b < f + c; b++) due.add(b);
      for (const b of this.streamWritten.keys()) if (!due.has(b)) this.streamWritten.delete(b);
    }
    for (let b = first; b < first + count; b++) this.streamWritten.set(b, seq);
  }

  /**
   * The writer's peer ack says who holds a write. Until then an UpToDate follower keeps its
   * record: if the writer is lost first, the survivors resync its blocks among themselves,
   * and we may become the target of one that had not received it.
   */
  private settleStreamWrite(writer: PeerState, first: number, count: number): void {
    if (this.mayTakeResync() || writer.peerStreamId !== this.streamWrittenId) return;
    for (let b = first; b < first + count; b++)
      if (!writer.awaitsPeerAck(b)) this.streamWritten.delete(b);
  }

  private mayTakeResync(): boolean {
    return (
      this.disk !== "UpToDate" ||
      this.peers.some((q) => q.replication === "SyncTarget" || q.replication === "PausedSyncT")
    );
  }

  /** A diskless primary only uses peers of its own data generation. */
  private peerUsable(p: PeerState): boolean {
    if (this.diskful) return true;
    return p.peerDisk === "UpToDate" || p.peerDisk === "Inconsistent" || p.peerDisk === "Outdated";
  }

  /**
   * Lazily starts a new data generation on the first write while a diskful peer is away,
   * so that the peer's reconnect finds our bitmap UUID equal to its current UUID.
   */
  private maybeRotateUuid(): void {
    let rotate = false;
    for (const p of this.peers) {
      if (p.diskful && !p.replicating && p.bitmapUuid === 0) rotate = true;
    }
    if (!rotate) return;
    const old = this.sbCurrentUuid;
    for (const p of this.peers) {
      if (p.diskful && !p.replicating && p.bitmapUuid === 0) p.bitmapUuid = old;
    }
    this.pushHistory(old);
    this.uuidCounter++;
    this.sbCurrentUuid = mintUuid(this.uuidCounter, this.nodeId);
    if (!this.diskful) {
      // The peers that follow our stream adopt the new generation from our state message
      // (maybeAdoptUuid) and keep bitmap UUIDs for the ones that miss it.
      for (const p of this.peers) {
        if (p.replicating && p.exposedMatch) p.exposedRotatedFrom = old;
        else p.exposedMatch = false;
      }
    }
    this.writeGateMetaSeq = this.persistSuperblock();
  }

  /**
   * Diskless Primary: the generation we expose is that of the peer data we use. Peers on
   * another generation (they missed writes while away) get our writes but serve no reads
   * and give no data access until a resync brings them to our generation.
   */
  private trackExposed(p: PeerState, peerCurrent: number): void {
    if (this.diskful || this.role !== "Primary" || !p.diskful) return;
    if (peerCurrent === this.sbCurrentUuid) {
      p.exposedMatch = true;
      p.exposedRotatedFrom = 0;
      // Back on our generation: losing it again needs a new one (maybeRotateUuid).
      p.bitmapUuid = 0;
    } else if (p.exposedRotatedFrom === 0 || peerCurrent !== p.exposedRotatedFrom) {
      p.exposedMatch = false;
      p.exposedRotatedFrom = 0;
    }
  }

  /** Diskless promotion: expose the generation of an UpToDate peer we reach. */
  private exposePeerGeneration(): void {
    let chosen: UuidSet | undefined;
    for (const p of this.peers) {
      if (p.established && p.diskful && p.peerDisk === "UpToDate" && p.peerUuids !== undefined) {
        if (!this.onFollowedLine(p.peerUuids)) continue;
        chosen = p.peerUuids;
        break;
      }
    }
    if (chosen === undefined) return;
    this.sbCurrentUuid = chosen.currentUuid;
    this.sbHistoryUuids = chosen.historyUuids.slice(0, historyUuidsMax);
    for (const p of this.peers) {
      p.bitmapUuid = 0;
      p.exposedRotatedFrom = 0;
      p.exposedMatch = p.established && p.peerUuids?.currentUuid === chosen.currentUuid;
    }
    this.commitUuid(this.sbCurrentUuid, this.sbHistoryUuids.slice());
    this.maybeRotateUuid();
  }

  private pushHistory(uuid: number): void {
    if (uuid === 0) return;
    if (this.sbHistoryUuids[0] === uuid) return;
    this.sbHistoryUuids.unshift(uuid);
    if (this.sbHistoryUuids.length > historyUuidsMax) this.sbHistoryUuids.length = historyUuidsMax;
  }

  private maybeCompleteWrite(req: WriteReq): void {
    if (req.phase !== "inflight") return;
    if (req.localPending) return;
    if (req.acksPendingMask !== 0 && !this.config.faults.completeBeforePeerAck) return;
    const local = req.hasLocal && req.localOk;
    let replicated = this.config.protocol === "A" ? req.sentMask !== 0 : req.ackedOkMask !== 0;
    // Without a local disk we keep no bitmap; a peer that missed this write is known to the
    // peers that hold it through the peer ack sent at completion (or, if we are lost before
    // it arrives, through their reconciliation of unacked writes), so they resync it.
    if (!local && replicated && this.config.protocol !== "A" && !this.ackedByServingPeer(req)) {
      // Only peers we would read it back from count: a write that reached only a resync
      // target (or a peer of another generation) could not be read back if it failed now.
      replicated = false;
    }
    const ok = local || replicated;
    if (ok && req.fua) {
      req.phase = "flushing";
      this.flushes.push(newFlush(req.requestId, req.submitSeq + 1, req));
      return;
    }
    this.finishWrite(req, ok);
  }

  private ackedByServingPeer(req: WriteReq): boolean {
    for (const p of this.peers) {
      if ((req.ackedOkMask & (1 << p.peer)) === 0) continue;
      if (p.established && p.peerDisk === "UpToDate" && this.exposesOurData(p)) return true;
    }
    return false;
  }

  private finishWrite(req: WriteReq, ok: boolean): void {
    this.sendPeerAcks(req);
    if (ok && this.config.options.quorum !== "off" && !this.quorumOk()) {
      if (this.config.options.onNoQuorum === "suspend-io") {
        req.phase = "done";
        this.heldWrites.push(req);
        this.removeWrite(req);
        return;
      }
      ok = false;
    }
    req.phase = "done";
    this.removeWrite(req);
    // A peer that acked a write now holds these blocks: they are in sync with it.
    if (ok && req.hasLocal && req.localOk && this.config.protocol === "C") {
      for (const p of this.peers) {
        // Only while still connected: a peer lost since its ack may have lost the data
        // with its cache, and linkLost marked these blocks for it on purpose.
        const bit = 1 << p.peer;
        const acked = (req.ackedOkMask & bit) !== 0 && (req.ackLostMask & bit) === 0;
        if (acked && p.established && p.bitmap.count() > 0) {
          p.bitmap.clearRange(req.firstBlock, req.blockCount);
        }
      }
    }
    if (ok && !this.confirmedByVoters()) {
      this.confirmHeld.push(req.requestId);
      return;
    }
    this.completeRequest(req.requestId, ok, ok ? undefined : "EIO");
  }

  /** Tells the peers that got the write which nodes hold it (see the peerAck message). */
  private sendPeerAcks(req: WriteReq): void {
    if (req.sentMask === 0) return;
    let mask = req.ackedOkMask;
    if (req.hasLocal && req.localOk) mask |= 1 << this.nodeId;
    if (this.config.protocol === "A") mask |= req.sentMask;
    for (const p of this.peers) {
      if ((req.sentMask & (1 << p.peer)) === 0 || !p.established) continue;
      this.send(p.peer, {
        type: "peerAck",
        firstBlock: req.firstBlock,
        blockCount: req.blockCount,
        mask,
      });
    }
  }

  private removeWrite(req: WriteReq): void {
    const i = this.writes.indexOf(req);
    if (i >= 0) this.writes.splice(i, 1);
    this.writesBySeq.delete(req.seq);
  }

  private onAck(from: NodeId, seq: number, ok: boolean): void {
    const p = this.peerStates[from]!;
    const req = this.writesBySeq.get(seq);
    if (!ok) {
      // The peer failed to write: it lacks these blocks whether or not we still wait.
      if (req !== undefined) this.markOutOfSync(p, req.firstBlock, req.blockCount);
    }
    if (req === undefined) return;
    const bit = 1 << from;
    if ((req.acksPendingMask & bit) === 0) return;
    req.acksPendingMask &= ~bit;
    if (ok) req.ackedOkMask |= bit;
    this.maybeCompleteWrite(req);
  }

  // ---------------------------------------------------------------------------------------
  // Epochs, barriers and flushes.

  /** Ends the current epoch: every peer that got writes in it receives a barrier. */
  private closeEpoch(): void {
    if (this.epochWrites === 0) return;
    for (const p of this.peers) {
      if (p.replicating && p.lastEpochSent === this.epochCurrent) {
        this.send(p.peer, { type: "barrier", epoch: this.epochCurrent });
      }
    }
    this.epochCurrent++;
    this.epochWrites = 0;
    this.epochTick = this.tickNow;
  }

  private onClientFlush(requestId: number): void {
    if (this.role !== "Primary") return this.completeRequest(requestId, false, "EPERM");
    if (this.quorumBlocksIo({ type: "clientFlush", requestId })) return;
    this.flushes.push(newFlush(requestId, this.submitSeqNext, undefined));
  }

  private pumpFlushes(): void {
    for (let i = 0; i < this.flushes.length; i++) {
      const f = this.flushes[i]!;
      if (!f.started) {
        if (!this.earlierWritesDone(f.beforeSubmitSeq)) continue;
        this.startFlush(f);
      }
      if (this.flushDone(f)) {
        this.flushes.splice(i, 1);
        i--;
        this.finishFlush(f);
      }
    }
  }

  private earlierWritesDone(beforeSubmitSeq: number): boolean {
    for (const w of this.writes) {
      if (w.submitSeq < beforeSubmitSeq && w.phase !== "flushing") return false;
    }
    return true;
  }

  private startFlush(f: FlushReq): void {
    f.started = true;
    this.closeEpoch();
    if (!this.config.faults.flushWithoutBarrier) {
      for (const p of this.peers) {
        if (p.replicating && p.transferLog.length > 0) {
          const lastEpoch = p.transferLog[p.transferLog.length - 3]!;
          if (lastEpoch > p.barrierAckedEpoch) f.peerEpochs[p.peer] = lastEpoch;
        }
      }
    }
    if (this.diskful && this.disk === "UpToDate") {
      const op = makeOp("flushClient", false, 0, 0);
      op.flushReq = f;
      op.aux = this.al.flushStart();
      f.localPending = true;
      this.issueFlush(op);
    } else {
      // Diskless (or detached): the data lives on the peers whose barrier acks we await.
      f.localOk = this.hasDataAccess();
    }
  }

  private flushDone(f: FlushReq): boolean {
    if (!f.started || f.localPending) return false;
    for (const p of this.peers) {
      const e = f.peerEpochs[p.peer]!;
      if (e < 0) continue;
      if (!p.replicating || p.barrierAckedEpoch >= e) f.peerEpochs[p.peer] = -1;
      else return false;
    }
    return true;
  }

  private finishFlush(f: FlushReq): void {
    // A diskless node's flush succeeds when the peers that hold the data flushed.
    const ok = f.localOk;
    if (f.write !== undefined) return this.finishWrite(f.write, ok);
    this.completeRequest(f.requestId, ok, ok ? undefined : "EIO");
  }

  private issueFlush(op: LocalOp): void {
    op.ioId = this.ioIdNext++;
    op.issued = true;
    this.ioMap.set(op.ioId, op);
    this.emit({ type: "diskFlush", ioId: op.ioId });
  }

  /**
   * Takes activity-log references for a write; returns the metadata sequence number the
   * write must wait for, or -1 when the log is full (try again later).
   */
  private activateAl(firstBlock: number, blockCount: number): number {
    const act = this.al.activate(firstBlock, blockCount);
    if (act.kind === "blocked") {
      if (act.needFlush) this.maybeFlushForAl();
      return -1;
    }
    if (act.kind === "transaction") {
      const seq = this.persist({
        kind: "activityLog",
        transactionSeq: act.txSeq,
        extents: this.al.list(),
      });
      this.alTxMeta.set(act.txSeq, seq);
    }
    if (act.txSeq > this.alTxPersisted) return this.alTxMeta.get(act.txSeq) ?? 0;
    return 0;
  }

  private maybeFlushForAl(): void {
    if (this.alFlushPending) return;
    this.alFlushPending = true;
    const op = makeOp("flushAl", false, 0, 0);
    op.aux = this.al.flushStart();
    this.issueFlush(op);
  }

  // ---------------------------------------------------------------------------------------
  // Reads.

  private onClientRead(e: Extract<Event, { type: "clientRead" }>): void {
    const error = this.validateRange(e.offsetBytes, e.lengthBytes, false);
    if (error !== undefined) return this.completeRequest(e.requestId, false, error);
    if (this.role === "Primary" && this.quorumBlocksIo(e)) return;
    const req: ReadReq = {
      requestId: e.requestId,
      firstBlock: e.offsetBytes / blockSizeBytes,
      blockCount: e.lengthBytes / blockSizeBytes,
      triedMask: 0,
      localTried: false,
      peer: -1,
      startTick: this.tickNow,
    };
    this.dispatchRead(req);
  }

  /** Sends a read to the local disk or a peer per read-balancing; EIO when none is left. */
  private dispatchRead(req: ReadReq): void {
    const localOk = !req.localTried && this.diskful && this.disk === "UpToDate";
    const remote = this.pickReadPeer(req);
    let useLocal: boolean;
    switch (this.config.options.readBalancing) {
      case "prefer-local":
        useLocal = localOk;
        break;
      case "prefer-remote":
        useLocal = localOk && remote === undefined;
        break;
      case "round-robin":
        useLocal = localOk && (remote === undefined || this.roundRobin++ % 2 === 0);
        break;
      case "least-pending":
        useLocal =
          localOk && (remote === undefined || this.localReadsPending <= remote.readsPending);
        break;
      case "when-congested-remote":
        useLocal = localOk && (remote === undefined || this.localReadsPending < congestedReadsMin);
        break;
    }
    if (useLocal) {
      req.localTried = true;
      req.peer = -1;
      const op = makeOp("clientRead", false, req.firstBlock, req.blockCount);
      op.readReq = req;
      this.localReadsPending++;
      this.ops.push(op);
      return;
    }
    if (remote === undefined) return this.completeRequest(req.requestId, false, "EIO");
    req.triedMask |= 1 << remote.peer;
    req.peer = remote.peer;
    req.startTick = this.tickNow;
    remote.readsPending++;
    const id = this.readIdNext++;
    this.remoteReads.set(id, req);
    this.send(remote.peer, {
      type: "readRequest",
      id,
      firstBlock: req.firstBlock,
      blockCount: req.blockCount,
    });
  }

  private pickReadPeer(req: ReadReq): PeerState | undefined {
    let best: PeerState | undefined;
    const n = this.peers.length;
    const startAt =
      this.config.options.readBalancing === "round-robin" ? this.roundRobin % Math.max(1, n) : 0;
    for (let k = 0; k < n; k++) {
      const p = this.peers[(startAt + k) % n]!;
      if (!p.established || p.peerDisk !== "UpToDate" || p.replication !== "Established") continue;
      if (!this.exposesOurData(p)) continue;
      // A peer that may lack some block of the read would return stale data.
      if (this.diskful && p.bitmap.count() > 0 && p.bitmap.anySet(req.firstBlock, req.blockCount)) {
        continue;
      }
      if ((req.triedMask & (1 << p.peer)) !== 0) continue;
      if (best === undefined || p.readsPending < best.readsPending) best = p;
    }
    return best;
  }

  private onReadReply(from: NodeId, m: Extract<PeerMessage, { type: "readReply" }>): void {
    const req = this.remoteReads.get(m.id);
    if (req === undefined || req.peer !== from) return;
    this.remoteReads.delete(m.id);
    const p = this.peerStates[from]!;
    p.readsPending--;
    if (m.ok && m.data !== undefined) {
      return this.completeRequest(req.requestId, true, undefined, m.data);
    }
    this.dispatchRead(req);
  }

  /** Re-dispatches every remote read that was waiting on `p` (it disconnected). */
  private failoverReads(p: PeerState): void {
    for (const [id, req] of this.remoteReads) {
      if (req.peer !== p.peer) continue;
      this.remoteReads.delete(id);
      this.dispatchRead(req);
    }
    p.readsPending = 0;
  }

  // ---------------------------------------------------------------------------------------
  // The local scheduler: overlap ordering and metadata dependencies.

  private pumpOps(): void {
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      if (op.issued) continue;
      if (op.needMetaSeq > this.metaSeqDone) continue;
      if (this.blockedByEarlier(i)) continue;
      if (op.alState === 1 && this.diskful && this.disk !== "Diskless") {
        // A Secondary logs the extents of replicated writes too: after its own crash they
        // are what its volatile cache may have lost, and they are resynced from a peer.
        const needMeta = this.activateAl(op.firstBlock, op.blockCount);
        if (needMeta < 0) continue;
        op.alState = 2;
        if (needMeta > op.needMetaSeq) op.needMetaSeq = needMeta;
        if (op.needMetaSeq > this.metaSeqDone) continue;
      }
      if (op.kind === "clientWrite") this.replicateWrite(op.writeReq!);
      if (!this.diskful || this.disk === "Diskless" || this.disk === "Failed") {
        this.ops.splice(i, 1);
        i--;
        this.finishOp(op, false, undefined);
        continue;
      }
      op.issued = true;
      op.ioId = this.ioIdNext++;
      this.ioMap.set(op.ioId, op);
      const offsetBytes = op.firstBlock * blockSizeBytes;
      if (op.write) {
        assert(
          op.data !== undefined && op.data.length === op.blockCount * blockSizeBytes,
          "write data",
        );
        if (op.kind === "resyncWrite")
          this.emit({ type: "diskWrite", ioId: op.ioId, offsetBytes, data: op.data, bulk: true });
        else this.emit({ type: "diskWrite", ioId: op.ioId, offsetBytes, data: op.data });
      } else {
        const lengthBytes = op.blockCount * blockSizeBytes;
        this.emit({ type: "diskRead", ioId: op.ioId, offsetBytes, lengthBytes });
      }
    }
  }

  private blockedByEarlier(index: number): boolean {
    const op = this.ops[index]!;
    for (let j = 0; j < index; j++) {
      const e = this.ops[j]!;
      if (!op.write && !e.write) continue;
      if (overlaps(e.firstBlock, e.blockCount, op.firstBlock, op.blockCount)) return true;
    }
    return false;
  }

  private onDiskCompleted(ioId: number, ok: boolean, data: Uint8Array | undefined): void {
    const op = this.ioMap.get(ioId);
    assert(op !== undefined, `unknown io id ${ioId}`);
    this.ioMap.delete(ioId);
    if (op.blockCount > 0) {
      const i = this.ops.indexOf(op);
      assert(i >= 0, "completed op is scheduled");
      this.ops.splice(i, 1);
    }
    if (ok && !op.write && op.blockCount > 0) {
      assert(
        data !== undefined && data.length === op.blockCount * blockSizeBytes,
        "read data size",
      );
    }
    this.finishOp(op, ok, data);
    if (!ok) this.onLocalIoError();
  }

  private finishOp(op: LocalOp, ok: boolean, data: Uint8Array | undefined): void {
    const kind: LocalOpKind = op.kind;
    switch (kind) {
      case "clientWrite":
        return this.clientWriteDone(op, ok);
      case "peerWrite":
        return this.peerWriteDone(op, ok);
      case "resyncWrite":
        return this.resyncWriteDone(op, ok);
      case "clientRead":
        return this.clientReadDone(op, ok, data);
      case "peerRead":
        this.send(op.peer, { type: "readReply", id: op.aux, ok, ...(ok ? { data: data! } : {}) });
        return;
      case "resyncRead":
      case "csumSourceRead":
        return this.resyncReadDone(op, ok, data);
      case "csumTargetRead":
        return this.csumTargetReadDone(op, ok, data);
      case "verifySourceRead":
      case "verifyTargetRead":
        return this.verifyReadDone(op, ok, data);
      case "flushClient":
        op.flushReq!.localPending = false;
        op.flushReq!.localOk = ok;
        if (ok) this.al.flushDone(op.aux);
        return;
      case "flushAl":
        this.alFlushPending = false;
        if (ok) this.al.flushDone(op.aux);
        return;
      case "flushBarrier":
        return this.barrierFlushDone(op, ok);
      case "flushDown":
        return this.downFlushDone(op, ok);
      case "flushDemote":
        if (ok) {
          this.al.flushDone(op.aux);
          if (this.role === "Secondary") {
            this.primaryFlag = false;
            this.persistSuperblock();
          }
        }
        return;
      case "flushSyncDone":
        // A flush of an earlier round (the source renegotiated meanwhile) finishes nothing.
        if (op.seq !== this.peerStates[op.peer]!.targetRound) return;
        return this.syncTargetFinish(op.peer, ok);
    }
  }

  private clientWriteDone(op: LocalOp, ok: boolean): void {
    const req = op.writeReq!;
    req.localPending = false;
    req.localOk = ok;
    if (req.alHeld) {
      this.al.release(req.firstBlock, req.blockCount);
      req.alHeld = false;
    }
    this.maybeCompleteWrite(req);
  }

  private clientReadDone(op: LocalOp, ok: boolean, data: Uint8Array | undefined): void {
    const req = op.readReq!;
    this.localReadsPending--;
    if (ok) return this.completeRequest(req.requestId, true, undefined, data);
    this.dispatchRead(req);
  }

  /** on-io-error=detach: the local disk is given up; the node continues diskless. */
  private onLocalIoError(): void {
    if (this.disk === "Diskless" || this.disk === "Failed") return;
    this.setDisk("Failed");
    for (const p of this.peers) {
      if (p.replication !== "Established" && p.replication !== "Off")
        this.setReplication(p, p.established ? "Established" : "Off");
    }
    this.setDisk("Diskless");
    this.broadcastState();
  }

  // ---------------------------------------------------------------------------------------
  // Metadata.

  private persist(record: MetadataRecord): number {
    const ioId = this.ioIdNext++;
    const seq = ++this.metaSeqIssued;
    this.metaIo.set(ioId, seq);
    this.emit({ type: "metadataWrite", ioId, record });
    return seq;
  }

  private persistSuperblock(): number {
    if (!this.diskful) {
      this.commitUuid(this.sbCurrentUuid, this.sbHistoryUuids.slice());
      return this.metaSeqDone;
    }
    const bitmapUuids = new Array<number>(32).fill(0);
    for (const p of this.peers) bitmapUuids[p.peer] = p.bitmapUuid;
    const seq = this.persist({
      kind: "superblock",
      superblock: {
        currentUuid: this.sbCurrentUuid,
        bitmapUuids,
        historyUuids: this.sbHistoryUuids.slice(),
        uuidCounter: this.uuidCounter,
        consistent: this.consistent,
        wasUpToDate: this.wasUpToDate,
        primary: this.primaryFlag,
        crashedPrimary: this.crashedPrimary,
      },
    });
    this.uuidCommits.push({
      seq,
      current: this.sbCurrentUuid,
      history: this.sbHistoryUuids.slice(),
    });
    return seq;
  }

  /** Makes a generation visible (once durable) and tells the peers. */
  private commitUuid(current: number, history: number[]): void {
    const changed = current !== this.currentUuid;
    this.currentUuid = current;
    this.historyUuids = history;
    if (changed) this.broadcastState();
    if (this.confirmWaitCommit && current === this.sbCurrentUuid) {
      this.confirmWaitCommit = false;
      this.sendConfirm();
    }
  }

  /** Our state, then a ping: its ack proves the peer has seen that state (FIFO links). */
  private sendConfirm(): void {
    for (const q of this.peers) {
      if (!q.established) continue;
      this.send(q.peer, this.stateMessage(this.snapshot(q), true, 0, q.judgedPeerId));
      // Only the answer to this ping proves it: an ack of an earlier (keepalive) ping may
      // have left the peer before our state arrived.
      this.send(q.peer, { type: "ping", seq: confirmSeq(this.confirmNeeded) });
      q.confirmPending = this.confirmNeeded;
    }
  }

  private confirmedByVoters(): boolean {
    if (this.confirmNeeded === 0) return true;
    if (this.confirmWaitCommit) return false;
    for (const q of this.peers) {
      if (q.established && q.confirmedRound < this.confirmNeeded) return false;
    }
    this.confirmNeeded = 0;
    return true;
  }

  /** Completes writes held for the voters' confirmation once they have it. */
  private releaseConfirmHeld(): void {
    if (this.confirmHeld.length === 0 || !this.confirmedByVoters()) return;
    const ok = this.role === "Primary" && this.quorumOk();
    for (const id of this.confirmHeld.splice(0))
      this.completeRequest(id, ok, ok ? undefined : "EIO");
  }
  private onMetadataCompleted(ioId: number, ok: boolean): void {
    const seq = this.metaIo.get(ioId);
    assert(seq !== undefined, `unknown metadata io id ${ioId}`);
    this.metaIo.delete(ioId);
    // Completions are expected in order; tolerate reordered events by advancing only over
    // a contiguous prefix of completed writes.
    this.metaSeqCompleted.add(seq);
    while (this.metaSeqCompleted.has(this.metaSeqDone + 1)) {
      this.metaSeqCompleted.delete(this.metaSeqDone + 1);
      this.metaSeqDone++;
    }
    while (this.uuidCommits.length > 0 && this.uuidCommits[0]!.seq <= this.metaSeqDone) {
      const c = this.uuidCommits.shift()!;
      this.commitUuid(c.current, c.history);
    }
    for (const [tx, s] of this.alTxMeta) {
      if (s <= this.metaSeqDone) {
        if (tx > this.alTxPersisted) this.alTxPersisted = tx;
        this.alTxMeta.delete(tx);
      }
    }
    const d = this.down;
    if (d !== undefined && d.metaSeq > 0 && this.metaSeqDone >= d.metaSeq) {
      this.down = undefined;
      this.adminDone(d.commandId, ok);
    }
    if (!ok) this.onLocalIoError();
  }

  /** Sets bits for `p` and persists the change (only bits that were clear). */
  private markOutOfSync(p: PeerState, firstBlock: number, blockCount: number): void {
    if (!this.diskful || !p.diskful || this.disk === "Diskless") return;
    if (this.config.faults.skipBitmapMarking) return;
    if (p.resyncInFlightBlocks > 0) {
      // Changed again while its resync data is on the way: that data is already stale, so
      // the ack for it must not clear the bit.
      for (let b = firstBlock; b < firstBlock + blockCount; b++) {
        if (p.resyncInFlightBits.isSet(b)) p.resyncRedirty.set(b);
      }
    }
    // As its target we only clear what the source sent us; a block marked now is one the
    // source lacks, and finishing the resync must not forget it.
    if (takesResync(p.replication)) p.resyncRedirty.setRange(firstBlock, blockCount);
    if (p.bitmap.setRange(firstBlock, blockCount) === 0) return;
    this.persist({ kind: "bitmap", peer: p.peer, firstBlock, blockCount, value: true });
  }

  // ---------------------------------------------------------------------------------------
  // Connections and the handshake.

  private onPeerConnected(id: NodeId): void {
    const p = this.peerStates[id];
    assert(p !== undefined, "known peer");
    if (!p.want) {
      this.emit({ type: "disconnectPeer", peer: id, reconnect: false });
      return;
    }
    if (p.link) this.linkLost(p, "NetworkFailure");
    p.link = true;
    p.confirmed = false;
    p.handshakeRequestId = 0;
    p.linkGen++;
    p.handshakeDone = false;
    p.barrierFlushing = false;
    p.lastRecvTick = this.tickNow;
    p.pingSentTick = -1;
    p.barrierAckedEpoch = -1;
    p.lastEpochSent = -1;
    p.transferLog.length = 0;
    p.recvEpochPending.clear();
    p.barriersPending.length = 0;
    this.setConnection(p, "Connecting");
    p.sent = this.snapshot(p);
    p.helloId = this.handshakeIdNext++;
    p.judgedPeerId = 0;
    this.send(id, this.stateMessage(p.sent, false, p.helloId, 0));
  }

  private onPeerDisconnected(id: NodeId): void {
    const p = this.peerStates[id];
    assert(p !== undefined, "known peer");
    if (!p.link) return;
    this.linkLost(p, p.want ? "Connecting" : "StandAlone");
  }

  /**
   * Goes StandAlone after a handshake verdict, but keeps the link for a while so that the
   * peer still receives our state and reaches the same verdict (a graceful close).
   */
  private gracefulDrop(p: PeerState): void {
    p.want = false;
    p.renegotiating = false;
    p.handshakeDone = false;
    p.dropAtTick = this.tickNow + this.config.options.pingTimeoutTicks + 2;
    this.setReplication(p, "Off");
    this.setConnection(p, "Disconnecting");
    this.updateQuorum();
  }

  /** Drops the link to `p` on our own initiative (timeout, policy, admin). */
  private dropPeer(p: PeerState, reconnect: boolean): void {
    if (!reconnect) p.want = false;
    this.emit({ type: "disconnectPeer", peer: p.peer, reconnect });
    if (p.link) this.linkLost(p, reconnect ? "NetworkFailure" : "StandAlone");
    else this.setConnection(p, reconnect ? "Connecting" : "StandAlone");
    if (reconnect && p.connection !== "Connecting") this.setConnection(p, "Connecting");
  }

  private linkLost(p: PeerState, next: "Connecting" | "StandAlone" | "NetworkFailure"): void {
    p.link = false;
    p.confirmed = false;
    p.renegotiating = false;
    // Reconciliation: writes of the lost Primary whose peer ack never came may be missing
    // on any other node; mark them so that the survivors resync them among themselves.
    for (const [first, count] of p.unackedWrites) {
      for (const q of this.peers) if (q !== p && q.diskful) this.markOutOfSync(q, first, count);
    }
    p.unackedWrites.clear();
    p.handshakeDone = false;
    p.barrierFlushing = false;
    // Everything the peer has not confirmed durable may be missing there. The other peers
    // learn it too (a peer ack naming every holder but the lost peer): they may have been
    // told it held those writes (protocol A, B), and would not resync them to it if we
    // are lost next.
    const tl = p.transferLog;
    const holders = this.connectedMask() & ~(1 << p.peer);
    for (let i = 0; i < tl.length; i += 3) {
      const first = tl[i + 1]!;
      const count = tl[i + 2]!;
      this.markOutOfSync(p, first, count);
      if (this.role !== "Primary" || !p.diskful) continue;
      // A peer whose ack for a write of these blocks is still due does not hold it yet.
      let pending = 0;
      for (const w of this.writes) {
        if (w.phase === "inflight" && overlaps(w.firstBlock, w.blockCount, first, count))
          pending |= w.acksPendingMask;
      }
      const mask = holders & ~pending;
      for (const q of this.peers) {
        if (q === p || !q.diskful || !q.established) continue;
        this.send(q.peer, { type: "peerAck", firstBlock: first, blockCount: count, mask });
      }
    }
    tl.length = 0;
    const bit = 1 << p.peer;
    for (const w of this.writes) {
      // Acked over this link but not yet completed: after a reconnect the peer may no
      // longer hold it (a crash loses its cache), so completion must not clear its bits.
      if ((w.ackedOkMask & bit) !== 0) w.ackLostMask |= bit;
      if ((w.acksPendingMask & bit) !== 0) {
        w.acksPendingMask &= ~bit;
        this.markOutOfSync(p, w.firstBlock, w.blockCount);
      }
    }
    p.resyncInFlight.clear();
    p.resyncInFlightBits.clearAll();
    p.resyncRedirty.clearAll();
    p.resyncInFlightBlocks = 0;
    p.verifyPending.clear();
    if (this.appWrittenWriter === p.peer) this.resetAppWritten(-1);
    p.recvEpochPending.clear();
    p.barriersPending.length = 0;
    p.grantedUntilTick = -1;
    if (this.pendingPromotion !== undefined) this.pendingPromotion.waitMask &= ~bit;
    // Flushes stop waiting for this peer: its unacked epochs were just marked out of sync.
    for (const f of this.flushes) f.peerEpochs[p.peer] = -1;
    p.peerRole = "Unknown";
    this.setPeerDisk(p, "DUnknown");
    this.setReplication(p, "Off");
    if (next === "NetworkFailure") {
      this.setConnection(p, "NetworkFailure");
      this.setConnection(p, "Connecting");
    } else {
      this.setConnection(p, next);
    }
    this.failoverReads(p);
    this.resumePausedTargets();
    // Quorum first: a write must not complete successfully on a Primary that just lost it.
    this.updateQuorum();
    // Peers learn whom we reach (connectedMask): they track writes for nodes we miss.
    this.broadcastState();
    // Without quorum we cannot write, so no new generation (it would fake a split brain).
    p.exposedMatch = false;
    p.exposedRotatedFrom = 0;
    const ownData = this.diskful ? this.disk === "UpToDate" : this.sbCurrentUuid !== 0;
    if (this.role === "Primary" && ownData && this.quorumOk()) {
      this.maybeRotateUuid();
      // Before completing writes the lost peer lacks, the remaining voters must know it is
      // behind (our new generation, our connectedMask); else they could vote it Primary.
      if (this.config.options.quorum !== "off" && p.diskful) {
        this.confirmRound++;
        this.confirmNeeded = this.confirmRound;
        this.confirmWaitCommit = this.sbCurrentUuid !== this.currentUuid;
        if (!this.confirmWaitCommit) this.sendConfirm();
      }
    }
    for (const w of this.writes.slice()) this.maybeCompleteWrite(w);
  }

  private snapshot(p: PeerState): StateSnapshot {
    return {
      role: this.role,
      disk: this.disk,
      consistent:
        this.disk === "UpToDate" || this.disk === "Outdated" || this.disk === "Consistent",
      uuids: this.uuidSet(),
      crashedPrimary: this.crashedPrimary,
      bitsForYou: this.diskful ? p.bitmap.count() : 0,
      discardMyData: p.discardMyData,
      connectedMask: this.connectedMask(),
      syncTowardUuid: this.disk === "Inconsistent" ? this.syncTowardUuid : 0,
      syncBaseUuid: this.disk === "Inconsistent" ? this.syncBaseUuid : 0,
      streamId: this.role === "Primary" ? this.streamId : this.followedStream,
      streamSeq: this.role === "Primary" ? this.writeSeqNext - 1 : this.followedSeq,
    };
  }

  private connectedMask(): number {
    let mask = 0;
    for (const q of this.peers) if (q.established) mask |= 1 << q.peer;
    return mask;
  }

  /** Whether a node that reached the nodes in `mask` had quorum (true when quorum is off). */
  private quorumOfMask(mask: number): boolean {
    let reachable = 1;
    for (let i = 0; i < 32; i++) if ((mask & (1 << i)) !== 0) reachable++;
    return hasQuorum(this.config.options.quorum, this.config.nodes.length, reachable);
  }

  private uuidSet(): UuidSet {
    const bitmapUuids = new Array<number>(32).fill(0);
    for (const p of this.peers) bitmapUuids[p.peer] = p.bitmapUuid;
    // Peers see the generation we are committed to (writes wait for it to be durable).
    return {
      currentUuid: this.sbCurrentUuid,
      bitmapUuids,
      historyUuids: this.sbHistoryUuids.slice(),
    };
  }

  private stateMessage(
    s: StateSnapshot,
    reply: boolean,
    handshakeId: number,
    judged: number,
  ): PeerMessage {
    return {
      handshakeId,
      judged,
      type: "state",
      role: s.role,
      disk: s.disk,
      uuids: s.uuids,
      crashedPrimary: s.crashedPrimary,
      bitsForYou: s.bitsForYou,
      discardMyData: s.discardMyData,
      promotionSeq: this.promotionSeq,
      reply,
      connectedMask: s.connectedMask,
      syncTowardUuid: s.syncTowardUuid,
      syncBaseUuid: s.syncBaseUuid,
      streamId: s.streamId,
      streamSeq: s.streamSeq,
    };
  }

  /** Tells every connected peer our current role, disk and UUIDs. */
  private broadcastState(): void {
    for (const p of this.peers) {
      // Not while our side of a handshake is open: the peer takes any state after our first
      // one as our verdict on it (its vote, see onState's confirmed); ours follows the verdict.
      if (!p.link || p.sent === undefined) continue;
      this.send(p.peer, this.stateMessage(this.snapshot(p), true, 0, p.judgedPeerId));
    }
  }

  private onState(p: PeerState, m: Extract<PeerMessage, { type: "state" }>): void {
    for (const u of [m.uuids.currentUuid, ...m.uuids.historyUuids, m.streamId ?? 0]) {
      const c = uuidCounterOf(u);
      if (c > this.uuidCounter) this.uuidCounter = c;
    }
    const wasPrimary = p.peerRole === "Primary";
    const wasUsable = this.peerUsable(p);
    p.peerRole = m.role;
    this.setPeerDisk(p, m.disk);
    // A diskless Primary's peer whose data just became usable gets the writes still in
    // flight that were not sent to it (its other peers mark only what completed before).
    if (!this.diskful && p.handshakeDone && !wasUsable) this.lateReplicate(p);
    const peerCurrentBefore = p.peerUuids?.currentUuid ?? 0;
    p.peerUuids = m.uuids;
    p.peerCrashedPrimary = m.crashedPrimary;
    p.peerBitsForUs = m.bitsForYou;
    p.peerConnectedMask = m.connectedMask;
    p.peerStreamId = m.streamId ?? 0;
    p.peerStreamSeq = m.streamSeq ?? 0;
    this.trackExposed(p, m.uuids.currentUuid);
    if (m.role === "Primary" && !this.diskful && this.role !== "Primary") {
      const u = m.uuids;
      if (u.currentUuid !== 0 && this.onFollowedLine(u)) {
        this.lastPrimaryUuid = u.currentUuid;
        this.lastPrimaryHistory = u.historyUuids.slice();
        this.lastPrimaryNode = p.peer;
      }
    }
    if (m.role === "Primary" || wasPrimary) p.grantedUntilTick = -1;
    if (!p.confirmed && p.helloId !== 0 && (m.judged ?? 0) >= p.helloId) {
      // The peer has judged our first state on this link and still talks to us: it
      // accepted us (states it sent before that verdict do not count). It may echo a later
      // request of ours (a renegotiation it answered): ids only grow, and our first state
      // came first on the link, so it was judged too. This holds while we renegotiate.
      p.confirmed = true;
      this.updateQuorum();
    }
    if (!p.handshakeDone) {
      if (p.handshakeRequestId !== 0) {
        // We renegotiate: only the answer to our request decides (both sides then judge
        // the same pair of snapshots). States the peer sent before it saw our request are
        // news, not answers.
        const id = m.handshakeId ?? 0;
        if (m.reply && id !== p.handshakeRequestId) return;
        if (!m.reply && id !== 0) {
          // Both asked at once: the lower node id's request stands, the other answers it.
          if (this.nodeId < p.peer) return;
          this.renegotiate(p, false, id);
        }
      }
      return this.handshake(p, m);
    }
    if (m.role === "Primary" && !wasPrimary && !this.config.options.allowTwoPrimaries) {
      // A peer became Primary while we follow another: keep the one we had (the newcomer
      // loses our vote and thereby, with quorum on, its quorum).
      for (const q of this.peers) {
        if (q !== p && q.established && q.peerRole === "Primary") return this.dropPeer(p, true);
      }
    }
    this.maybeConfirmData();
    if (!m.reply) {
      // The peer renegotiates on the live link: answer with a fresh snapshot and decide.
      this.renegotiate(p, false, m.handshakeId ?? 0);
      return this.handshake(p, m);
    }
    this.maybeAdoptUuid(p, peerCurrentBefore);
  }

  private persistBitmapClear(p: PeerState): void {
    this.persist({
      kind: "bitmap",
      peer: p.peer,
      firstBlock: 0,
      blockCount: this.config.sizeBlocks,
      value: false,
    });
  }

  /**
   * After a resync as target ended or broke off, the next waiting source starts. It is told
   * which blocks we already received (`covered`) and transfers only the rest of its bits,
   * often nothing at all.
   */
  private resumePausedTargets(): void {
    for (const q of this.peers) {
      if (q.replication !== "PausedSyncT") continue;
      q.replication = "Off";
      this.beginTarget(q, true);
    }
  }

  private handshake(p: PeerState, m: Extract<PeerMessage, { type: "state" }>): void {
    const sent = p.sent;
    assert(sent !== undefined, "our state goes first on a link");
    p.handshakeDone = true;
    p.handshakeRequestId = 0;
    if (!m.reply) p.judgedPeerId = m.handshakeId ?? 0;
    p.renegotiating = false;
    // The handshake carried our current state: nothing older is left to confirm to it.
    p.confirmedRound = this.confirmRound;
    p.confirmPending = 0;
    this.setConnection(p, "Connected");
    const pending = this.pendingPromotion;
    if (pending !== undefined && !this.config.options.allowTwoPrimaries) {
      // A peer that joins while we collect promotion votes must vote too.
      pending.waitMask |= 1 << p.peer;
      this.send(p.peer, { type: "promoteRequest", id: pending.id });
    }
    const me = this.nodeId;
    let d: SyncDecision = decideSync(
      {
        nodeId: me,
        diskful: this.diskful && sent.disk !== "Diskless",
        consistent: sent.consistent,
        primary: sent.role === "Primary",
        crashedPrimary: sent.crashedPrimary,
        uuids: sent.uuids,
        bitsForOther: sent.bitsForYou,
        syncTowardUuid: sent.syncTowardUuid,
        syncBaseUuid: sent.syncBaseUuid,
        upToDate: sent.disk === "UpToDate",
        streamId: sent.streamId,
        streamSeq: sent.streamSeq,
      },
      {
        nodeId: p.peer,
        diskful: p.diskful && m.disk !== "Diskless",
        consistent: m.disk === "UpToDate" || m.disk === "Outdated" || m.disk === "Consistent",
        primary: m.role === "Primary",
        crashedPrimary: m.crashedPrimary,
        uuids: m.uuids,
        bitsForOther: m.bitsForYou,
        syncTowardUuid: m.syncTowardUuid ?? 0,
        syncBaseUuid: m.syncBaseUuid ?? 0,
        upToDate: m.disk === "UpToDate",
        streamId: m.streamId ?? 0,
        streamSeq: m.streamSeq ?? 0,
      },
    );
    const bothPrimary = sent.role === "Primary" && m.role === "Primary";
    if (m.role === "Primary" && !this.diskful && this.lastPrimaryUuid !== 0) {
      // A diskless tiebreaker lends its vote only to the line of Primaries it has followed:
      // a Primary whose generation does not descend from the last one we saw is the other
      // side of a split and must not regain quorum through us.
      if (!this.onFollowedLine(m.uuids)) return this.dropPeer(p, true);
    }
    if (m.role === "Primary" && !this.config.options.allowTwoPrimaries) {
      // We already follow another Primary, or promised to let another node become one: a
      // second Primary may not join through us.
      for (const q of this.peers) {
        if (q === p) continue;
        const promised = q.grantedUntilTick >= this.tickNow;
        if (promised || (q.established && q.peerRole === "Primary")) return this.dropPeer(p, true);
      }
    }
    if (d.kind === "splitBrain" && this.config.faults.mergeSplitBrain)
      d = { kind: "none", row: "@merge" };
    const twoPrimaries = bothPrimary && !this.config.options.allowTwoPrimaries;
    if (twoPrimaries && (!this.diskful || !p.diskful)) {
      // Two Primaries, one without a disk: no data to compare or resync. The one without
      // quorum steps down; otherwise neither may join the other (an operator demotes one).
      const quorumMe = this.quorumOfMask(sent.connectedMask);
      const quorumPeer = this.quorumOfMask(m.connectedMask);
      if (quorumMe === quorumPeer) {
        this.emitState({ kind: "splitBrain", peer: p.peer, resolution: "disconnect" });
        return this.gracefulDrop(p);
      }
      if (!quorumMe) this.forceSecondary();
      d = { kind: "none", row: "@2PD" };
    } else if (d.kind !== "unrelated" && twoPrimaries) {
      d = { kind: "splitBrain", row: "@2P" };
    }
    if (d.kind === "splitBrain") d = this.resolveSplitBrain(p, m, sent);
    if (d.kind === "target" && !this.config.options.allowTwoPrimaries && m.role !== "Primary") {
      // We follow a Primary whose line the source's data is not on, and the source does not
      // reach that Primary (it is on the other side of a split): taking its data would mix
      // both sides. Refuse, as for a second Primary (onState).
      for (const q of this.peers) {
        if (q === p || !q.established || q.peerRole !== "Primary") continue;
        const apart = (m.connectedMask & (1 << q.peer)) === 0;
        if (apart && !sameLine(q.peerUuids, m.uuids)) return this.dropPeer(p, true);
      }
    }
    if (d.kind === "target") {
      // We are a split-brain victim taking the survivor's data: a second source off the
      // survivor's line (the other side's Primary) would mix both sides in our data. Refuse
      // it until that round is over (the link is dropped and retried).
      for (const q of this.peers) {
        if (q === p || !q.victimRound || !q.established) continue;
        if (takesResync(q.replication) && !sameLine(q.peerUuids, m.uuids))
          return this.dropPeer(p, true);
      }
    }
    p.decision = `${d.kind}${"full" in d && d.full ? " full" : ""} ${d.row}`;
    p.victimRound = d.row === "@SBv" || d.row === "@SBvd";
    p.discardMyData = false;
    if ((d.kind === "source" || d.kind === "target") && this.snapshotStale(sent)) {
      // Our data moved on since the peer saw it (a resync elsewhere ended, a new
      // generation): a resync decided on the old snapshot could overwrite newer data with
      // older. Ask again with the current one; the peer re-decides on our request.
      this.setConnection(p, "Connected");
      return this.renegotiate(p, true);
    }
    switch (d.kind) {
      case "unrelated":
        this.emitState({ kind: "unrelatedData", peer: p.peer });
        return this.gracefulDrop(p);
      case "splitBrain":
        return this.gracefulDrop(p);
      case "none":
        this.setReplication(p, "Established");
        this.afterEstablished(p);
        break;
      case "source":
        p.syncFull = d.full;
        p.syncJoined = d.row === "@JB";
        this.setReplication(p, "WFBitMapS");
        break;
      case "target":
        if (d.row === "@SBvd") this.resetAppWritten(-1);
        if (this.role === "Primary") {
          // A Primary that lost quorum and finds newer data elsewhere steps down
          // (on-suspended-primary-outdated=force-secondary); one that can write refuses.
          if (this.quorumOfMask(sent.connectedMask)) return this.gracefulDrop(p);
          this.forceSecondary();
        }
        this.beginTarget(p);
        break;
    }
    this.updateQuorum();
    this.maybeConfirmData();
    this.broadcastState();
    this.lateReplicate(p);
  }

  private resolveSplitBrain(
    p: PeerState,
    m: Extract<PeerMessage, { type: "state" }>,
    sent: StateSnapshot,
  ): SyncDecision {
    const self = this.config.byId[this.nodeId]!;
    // With quorum on, a side that had no quorum completed no write since it lost it: its
    // changes are failed writes only, and the side with quorum survives.
    const quorumMe = this.quorumOfMask(sent.connectedMask);
    const quorumPeer = this.quorumOfMask(m.connectedMask);
    const byQuorum = quorumMe !== quorumPeer ? (quorumMe ? p.peer : this.nodeId) : undefined;
    const victim =
      byQuorum ??
      splitBrainVictim(
        {
          nodeId: this.nodeId,
          name: self.name,
          primary: sent.role === "Primary",
          currentUuid: sent.uuids.currentUuid,
          changes: sent.bitsForYou,
          discardMyData: sent.discardMyData,
        },
        {
          nodeId: p.peer,
          name: p.name,
          primary: m.role === "Primary",
          currentUuid: m.uuids.currentUuid,
          changes: m.bitsForYou,
          discardMyData: m.discardMyData,
        },
        this.config.options,
      );
    if (victim === undefined) {
      this.emitState({ kind: "splitBrain", peer: p.peer, resolution: "disconnect" });
      return { kind: "splitBrain", row: "@SB" };
    }
    const iAmVictim = victim === this.nodeId;
    if (iAmVictim && !this.config.options.allowTwoPrimaries) {
      // We follow a Primary of another generation: taking the survivor's data would mix
      // both sides of the split.
      for (const q of this.peers) {
        if (
          q !== p &&
          q.established &&
          q.peerRole === "Primary" &&
          !sameLine(q.peerUuids, m.uuids)
        ) {
          this.emitState({ kind: "splitBrain", peer: p.peer, resolution: "disconnect" });
          return { kind: "splitBrain", row: "@SBf" };
        }
      }
    }
    this.emitState({
      kind: "splitBrain",
      peer: p.peer,
      resolution: iAmVictim ? "victim" : "survivor",
    });
    if (!iAmVictim) return { kind: "source", full: false, row: "@SBs" };
    if (this.appWrittenWriter !== -1) {
      // The victim discards its changes, and the writes of the stream it followed are among
      // them unless that stream is still a Primary on the survivor's line: its blocks are
      // no longer newer than the survivor's resync data (forgotten with the verdict).
      const w = this.peerStates[this.appWrittenWriter];
      const keep =
        w !== undefined &&
        w.established &&
        w.peerRole === "Primary" &&
        sameLine(w.peerUuids, m.uuids);
      if (!keep) return { kind: "target", full: false, row: "@SBvd" };
    }
    return { kind: "target", full: false, row: "@SBv" };
  }

  /** After a no-sync handshake: consistent data confirmed by a peer becomes UpToDate. */
  private afterEstablished(p: PeerState): void {
    if (this.diskful && p.diskful && this.disk !== "Diskless") {
      // Equal generations and no bits in either snapshot. Bits set since (writes issued
      // during the handshake) stay and are resolved by a later renegotiation.
      if (p.bitmapUuid !== 0 && p.bitmap.count() === 0) {
        this.pushHistory(p.bitmapUuid);
        p.bitmapUuid = 0;
        this.persistSuperblock();
      }
    }
  }

  /**
   * Consistent (restarted) or Outdated data becomes UpToDate only when vouched for: an
   * UpToDate peer of the same generation with no resync between us, or, when no node has
   * UpToDate data, every diskful node connected and of the same generation.
   */
  private maybeConfirmData(): void {
    if (this.disk !== "Consistent" && this.disk !== "Outdated") return;
    for (const p of this.peers) {
      if (p.replication !== "Established" && p.replication !== "Off") return; // resyncing
      // An UpToDate peer that has bits for us holds writes we lack: wait for its resync
      // (whichever other peer would vouch for our data).
      if (p.diskful && p.link && p.peerDisk === "UpToDate" && p.peerBitsForUs > 0) return;
    }
    let all = true;
    for (const p of this.peers) {
      if (!p.diskful) continue;
      const same = p.established && p.peerUuids?.currentUuid === this.sbCurrentUuid;
      // A peer that still has bits for us holds writes we lack: wait for its resync.
      if (same && p.replication === "Established" && p.peerDisk === "UpToDate") {
        // Blocks we marked for it need a resync first (its bits for us: checked above).
        if (p.bitmap.count() > 0) return;
        return this.becomeUpToDate();
      }
      const consistent =
        p.peerDisk === "Consistent" || p.peerDisk === "Outdated" || p.peerDisk === "UpToDate";
      if (!same || p.replication !== "Established" || !consistent) all = false;
    }
    if (all) this.becomeUpToDate();
  }

  private becomeUpToDate(): void {
    if (this.disk === "UpToDate") return;
    this.consistent = true;
    this.wasUpToDate = true;
    this.setDisk("UpToDate");
    this.persistSuperblock();
    this.broadcastState();
  }

  /**
   * A secondary follows the data generation of the Primary that writes to it, so that it
   * tracks (via bitmap UUIDs) the peers that miss those writes.
   */
  private maybeAdoptUuid(p: PeerState, peerCurrentBefore: number): void {
    const u = p.peerUuids;
    if (u === undefined || !this.diskful || p.peerRole !== "Primary") return;
    // Only a follower that was on the Primary's generation when it moved on got every write
    // of the new one; a peer that joined later (a diskless Primary resyncs nobody) did not.
    if (peerCurrentBefore !== this.sbCurrentUuid) return;
    if (this.role === "Primary" || u.currentUuid === this.sbCurrentUuid) return;
    if (p.replication !== "Established" || this.disk !== "UpToDate") return;
    if (!u.historyUuids.includes(this.sbCurrentUuid)) return;
    const old = this.sbCurrentUuid;
    for (const q of this.peers) {
      if (q !== p && q.diskful && !this.getsWritesFrom(q, p) && q.bitmapUuid === 0) {
        q.bitmapUuid = old;
      }
    }
    this.pushHistory(old);
    this.sbCurrentUuid = u.currentUuid;
    this.writeGateMetaSeq = this.persistSuperblock();
    // A peer we are Established with that misses the Primary's writes is now behind us:
    // renegotiate so that the handshake starts the resync it needs.
    for (const q of this.peers) {
      if (q !== p && q.diskful && q.established && !this.getsWritesFrom(q, p)) {
        this.dropPeer(q, true);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Resync: the source drives, the target writes and acks; bits clear on the ack.

  private beginTarget(p: PeerState, resume = false): void {
    // One source at a time: further sources wait (PausedSyncT) and are usually released
    // without any transfer once the first resync made us equal to them.
    for (const q of this.peers) {
      if (q !== p && (q.replication === "WFBitMapT" || q.replication === "SyncTarget")) {
        this.setReplication(p, "PausedSyncT");
        return;
      }
    }
    let round = resume;
    for (const q of this.peers) if (q !== p && q.replication === "PausedSyncT") round = true;
    if (!round) this.syncCovered = undefined;
    this.syncCovered ??= new Bitmap(this.config.sizeBlocks);
    p.targetRound++;
    p.targetStartUuid = this.sbCurrentUuid;
    this.setReplication(p, "WFBitMapT");
    const ranges = this.diskful ? p.bitmap.toRanges() : [];
    // Only a source of the generation that covered those blocks may skip them.
    const same = p.peerUuids !== undefined && p.peerUuids.currentUuid === this.syncCoveredUuid;
    let covered: number[] = [];
    if (resume && same) {
      // A block we kept over the previous source's data (a write of the diskless Primary we
      // follow) is not covered for a source that Primary's peer ack left out: that source
      // lacks it too, and its bit must stay for a resync our way.
      const c = new Bitmap(this.config.sizeBlocks, this.syncCovered.toBytes());
      if (this.appWrittenWriter !== -1 && this.appWrittenWriter !== p.peer)
        for (let b = p.lacksPrimaryWrite.findNextSet(0); b !== -1;) {
          if (this.appWritten.isSet(b)) c.clear(b);
          b = p.lacksPrimaryWrite.findNextSet(b + 1);
        }
      covered = c.toRanges();
    }
    this.send(p.peer, {
      type: "bitmap",
      ranges,
      last: true,
      covered,
      coveredStreamId: covered.length > 0 ? this.syncCoveredStreamId : 0,
      coveredStreamSeq: covered.length > 0 ? this.syncCoveredStreamSeq : 0,
    });
  }

  private onBitmap(p: PeerState, m: Extract<PeerMessage, { type: "bitmap" }>): void {
    // Sent for a handshake we have since asked to redo (our request is on its way and the
    // peer re-decides on it): serving it would start a resync neither new verdict wants.
    if (!p.handshakeDone) return;
    // A target that resumes a paused resync asks with its bitmap; serve it if we can.
    const resumed = p.replication === "Established" && this.dataConsistent();
    if (p.replication !== "WFBitMapS" && !resumed) return;
    // A target that meanwhile synced to our generation from elsewhere needs only our bits.
    const caughtUp =
      p.peerUuids?.currentUuid === this.sbCurrentUuid &&
      (p.peerDisk === "UpToDate" || p.peerDisk === "Outdated");
    const full = resumed || caughtUp ? false : p.syncFull;
    // A Primary's own bits (its writes the target missed, e.g. lost with a broken link) stand
    // whatever another source sent the target: that source may have read those blocks
    // before it received the writes. So do ours when the target joined us in the middle of a
    // bitmap resync from another source (@JB) and we are not behind that source in the write
    // stream we both followed: on our generation, our bits for it are writes it missed (a
    // Primary told us which), possibly after the other source read those blocks.
    const own = new Bitmap(
      this.config.sizeBlocks,
      this.role === "Primary" ? p.bitmap.toBytes() : undefined,
    );
    const joined =
      p.syncJoined && !full ? new Bitmap(this.config.sizeBlocks, p.bitmap.toBytes()) : undefined;
    if (full) {
      p.bitmap.setAll();
      this.persist({
        kind: "bitmap",
        peer: p.peer,
        firstBlock: 0,
        blockCount: this.config.sizeBlocks,
        value: true,
      });
    } else {
      for (let i = 0; i < m.ranges.length; i += 2)
        this.markOutOfSync(p, m.ranges[i]!, m.ranges[i + 1]!);
    }
    // Blocks the target already received from another source are current there, unless
    // we know some other node lacks them: that may be the source it got them from. When
    // both of us followed the same write stream, the one that got further is newer.
    const covered = m.covered ?? [];
    const myStream = this.role === "Primary" ? this.streamId : this.followedStream;
    const mySeq = this.role === "Primary" ? this.writeSeqNext - 1 : this.followedSeq;
    const coveredStream = m.coveredStreamId ?? 0;
    const sameStream = coveredStream !== 0 && coveredStream === myStream;
    const behind = sameStream && mySeq <= (m.coveredStreamSeq ?? 0);
    // A block we got a later write of that stream for than the covering source had read
    // (no peer ack settled it yet) is newer here than what the target holds, unless that
    // stream's Primary is still connected to both of us: it sends the target the write too.
    const delivered = this.peers.some(
      (q) =>
        q.established &&
        q.peerRole === "Primary" &&
        q.peerStreamId === coveredStream &&
        this.getsWritesFrom(p, q),
    );
    const newer = (b: number): boolean =>
      sameStream &&
      !delivered &&
      coveredStream === this.streamWrittenId &&
      (this.streamWritten.get(b) ?? 0) > (m.coveredStreamSeq ?? 0);
    for (let i = 0; i < covered.length; i += 2) {
      const first = covered[i]!;
      const count = Math.min(covered[i + 1]!, this.config.sizeBlocks - first);
      for (let b = first; b < first + count; b++) {
        if (own.isSet(b) || newer(b) || (!behind && this.othersLack(p, b))) continue;
        if (!behind && joined?.isSet(b) === true) continue;
        p.bitmap.clear(b);
      }
    }
    this.startResyncAsSource(p, full);
  }

  /** Whether our bitmap for any diskful peer but `p` marks block `b`. */
  private othersLack(p: PeerState, b: number): boolean {
    for (const q of this.peers) if (q !== p && q.diskful && q.bitmap.isSet(b)) return true;
    return false;
  }

  private startResyncAsSource(p: PeerState, full: boolean): void {
    p.resyncCursor = 0;
    p.resyncInFlight.clear();
    p.resyncInFlightBits.clearAll();
    p.resyncRedirty.clearAll();
    p.resyncInFlightBlocks = 0;
    p.resyncFull = full;
    this.setReplication(p, "SyncSource");
    // Nothing to transfer: finish at once, without making the target Inconsistent.
    if (p.bitmap.count() === 0) return this.maybeFinishResync(p);
    this.send(p.peer, { type: "syncStart", uuids: this.uuidSet(), full });
  }

  private onSyncStart(p: PeerState, full: boolean): void {
    if (!this.diskful || this.disk === "Diskless") return;
    // Decided on a handshake we have since asked to redo: the new one decides.
    if (!p.handshakeDone) return;
    if (this.role === "Primary") return this.dropPeer(p, false);
    // A target already made Inconsistent by our syncStart depends on us. Unless the new
    // source is clearly ahead of us (a Primary, a newer generation, a better disk), refuse to
    // become a target ourselves: handshakes decided pairwise within one generation can form
    // a cycle of sources, and giving in would leave every node of it Inconsistent. The
    // source retries on reconnect.
    // We crashed and the source did not: our hot extents are suspect, take its data first.
    const ahead =
      p.peerRole === "Primary" ||
      p.peerUuids?.currentUuid !== this.sbCurrentUuid ||
      diskRank(p.peerDisk) > diskRank(this.disk) ||
      (this.crashedPrimary && !p.peerCrashedPrimary);
    if (!ahead) {
      for (const q of this.peers) {
        const serving = q.replication === "SyncSource" || q.replication === "PausedSyncS";
        if (q !== p && serving) return this.dropPeer(p, true);
      }
    }
    // Our data is about to change under any resync we are about to serve: those targets
    // must start over (they renegotiate and pick a source whose data holds still).
    for (const q of this.peers) {
      const serving =
        q.replication === "SyncSource" ||
        q.replication === "WFBitMapS" ||
        q.replication === "PausedSyncS";
      if (q !== p && serving) this.dropPeer(q, true);
    }
    // Outside the bits of a bitmap resync our data stays on our generation; a second bitmap
    // source of the same round keeps the base the first one found, a full sync loses it.
    const wasInconsistent = this.disk === "Inconsistent";
    if (full) this.syncBaseUuid = 0;
    else if (!wasInconsistent) this.syncBaseUuid = this.sbCurrentUuid;
    this.consistent = false;
    this.wasUpToDate = false;
    this.setDisk("Inconsistent");
    this.resyncGateMetaSeq = this.persistSuperblock();
    this.syncCoveredUuid = p.peerUuids?.currentUuid ?? 0;
    // Once Inconsistent, only data at least this new may finish the job.
    this.syncTowardUuid = p.peerUuids?.currentUuid ?? 0;
    this.forgetAbandonedStream(p);
    this.setReplication(p, "SyncTarget");
    this.broadcastState();
  }

  /**
   * The writes of the stream we followed beat a lagging source's resync data only while
   * that stream is still the source's line. A source whose generation descends from the
   * writer's, moved past it (a new Primary elsewhere after the writer was cut off): the
   * writer's later writes are on an abandoned branch and give way to the source's data.
   * Likewise once the writer is no Primary and the source's line parted from its own (the
   * other side of a split brain): its writes are that side's changes, which a target of
   * the source discards, as a split-brain victim does (@SBvd). DRBD's target takes all the
   * resync data; only an application write of the current Primary beats it.
   */
  private forgetAbandonedStream(p: PeerState): void {
    if (this.appWrittenWriter === -1 || this.appWrittenWriter === p.peer) return;
    const w = this.peerStates[this.appWrittenWriter];
    const writer = w?.peerUuids;
    const source = p.peerUuids;
    if (w === undefined || writer === undefined || source === undefined) return;
    const descends =
      source.currentUuid !== writer.currentUuid && source.historyUuids.includes(writer.currentUuid);
    const parted = w.peerRole !== "Primary" && !sameLine(writer, source);
    if (descends || parted) this.resetAppWritten(-1);
  }

  /** Issues this tick's share of resync (or verify) reads toward `p`. */
  private resyncTick(p: PeerState): void {
    if (p.replication !== "SyncSource") return;
    if (!this.diskful || !this.dataConsistent()) return;
    p.resyncBudget = p.rate.blocksThisTick(
      p.resyncInFlightBlocks,
      p.resyncDoneLastTick,
      this.appIoLastTick,
    );
    this.issueResync(p);
  }

  /**
   * Requests resync reads within this tick's budget, keeping at most max-buffers pages in
   * flight; called on the tick and again as acks free room, so a fast link is not held to
   * one window per tick.
   */
  private issueResync(p: PeerState): void {
    if (p.replication !== "SyncSource") return;
    let budget = Math.min(p.resyncBudget, this.config.options.maxBuffers - p.resyncInFlightBlocks);
    let wrapped = false;
    while (budget > 0) {
      const b = p.bitmap.findNextSet(p.resyncCursor);
      if (b < 0) {
        if (wrapped || p.resyncCursor === 0) break;
        wrapped = true;
        p.resyncCursor = 0;
        continue;
      }
      if (p.resyncInFlightBits.isSet(b)) {
        p.resyncCursor = b + 1;
        continue;
      }
      // A run of marked blocks, at most one request long: unmarked blocks are never sent.
      const chunk = Math.max(
        resyncChunkBlocksMin,
        Math.min(this.config.options.resyncRequestBlocks, budget),
      );
      let count = 1;
      while (
        count < chunk &&
        b + count < this.config.sizeBlocks &&
        p.bitmap.isSet(b + count) &&
        !p.resyncInFlightBits.isSet(b + count)
      ) {
        count++;
      }
      p.resyncCursor = b + count;
      const kind = this.config.options.csumsAlg && !p.resyncFull ? "csumSourceRead" : "resyncRead";
      const op = makeOp(kind, false, b, count);
      op.peer = p.peer;
      this.stampStreamPosition(op);
      p.resyncInFlight.add(b);
      p.resyncInFlightBits.setRange(b, count);
      p.resyncInFlightBlocks += count;
      this.ops.push(op);
      budget -= count;
      p.resyncBudget -= count;
    }
    this.maybeFinishResync(p);
  }

  private resyncReadDone(op: LocalOp, ok: boolean, data: Uint8Array | undefined): void {
    const p = this.peerStates[op.peer]!;
    if (p.replication !== "SyncSource" || !p.resyncInFlight.has(op.firstBlock)) return;
    if (!ok) return;
    if (op.kind === "csumSourceRead") {
      this.send(p.peer, {
        type: "checksumRequest",
        block: op.firstBlock,
        blockCount: op.blockCount,
        digest: crc32c(data!),
      });
    } else {
      this.send(p.peer, {
        type: "resyncReply",
        block: op.firstBlock,
        ok: true,
        ...(op.streamId !== 0 ? { streamId: op.streamId, streamSeq: op.seq } : {}),
        data: data!,
      });
    }
  }

  private onResyncRequest(p: PeerState, block: number, blockCount: number): void {
    if (p.replication !== "SyncSource" || !p.resyncInFlight.has(block)) return;
    const op = makeOp("resyncRead", false, block, blockCount);
    op.peer = p.peer;
    this.stampStreamPosition(op);
    this.ops.push(op);
  }

  /**
   * A resync read is queued behind every replicated write we received (overlapping ops go
   * to the disk in order), so its data holds our stream position of now.
   */
  private stampStreamPosition(op: LocalOp): void {
    op.streamId = this.role === "Primary" ? this.streamId : this.followedStream;
    op.seq = this.role === "Primary" ? this.writeSeqNext - 1 : this.followedSeq;
  }

  private onResyncReply(p: PeerState, m: Extract<PeerMessage, { type: "resyncReply" }>): void {
    if (p.replication !== "SyncTarget" || !m.ok || m.data === undefined) return;
    const count = m.data.length / blockSizeBytes;
    const group: ResyncGroup = {
      peer: p.peer,
      block: m.block,
      blockCount: count,
      data: m.data,
      pending: 0,
    };
    // Blocks the Primary's stream reached are newer than resync data from a node that may
    // lag behind that stream. The Primary itself never sends stale resync data (its reads are
    // ordered with its writes), so its data is always taken.
    const skip = this.appWrittenWriter !== -1 && this.appWrittenWriter !== p.peer;
    // The same for a block we got a later write of the source's stream for, also from a
    // writer we lost since (the source read it before that write reached it).
    const stamped =
      this.appWrittenWriter !== p.peer &&
      m.streamId !== undefined &&
      m.streamId !== 0 &&
      m.streamId === this.streamWrittenId &&
      this.streamWritten.size > 0;
    const stampSeq = m.streamSeq ?? 0;
    const ours = (blk: number): boolean =>
      (skip && this.appWritten.isSet(blk)) ||
      (stamped && (this.streamWritten.get(blk) ?? 0) > stampSeq);
    let b = m.block;
    const end = m.block + count;
    while (b < end) {
      if (ours(b)) {
        // Ours is newer. A source that crashed since may have lost that write: then the bit
        // stays, for a resync the other way once this one is done. (A source that did not
        // crash got it from the same stream.)
        // So does a bit we set for the survivor of a split brain we lost: a block the survivor
        // lacks (a write it missed) that we keep stays ours to send it.
        if (p.peerCrashedPrimary || (p.victimRound && p.bitmap.isSet(b))) p.resyncRedirty.set(b);
        // Known older only by its stream position: unless the source's state shows it
        // received that write since, it lacks it, and the bit stays for a resync our way.
        // The connected Primary is assumed to send the source its write too, unless its peer
        // ack for that write left the source out.
        else if (
          !this.peerHasStreamWrite(p, b) &&
          (!(skip && this.appWritten.isSet(b)) || p.lacksPrimaryWrite.isSet(b))
        ) {
          p.resyncRedirty.set(b);
        }
        b++;
        continue;
      }
      let e = b + 1;
      while (e < end && !ours(e)) e++;
      // Data of another (or no known) stream: our stream writes no longer order against it.
      if (!stamped) for (let x = b; x < e; x++) this.streamWritten.delete(x);
      // Data from a source that crashed (its hot extents may have lost writes another
      // node still holds): the other nodes may differ from it, so they are marked. Likewise
      // a peer that crashed may differ from what any source sends us.
      // A peer we track since an older generation (it is away: its bitmap UUID is set)
      // must find every block that changed here since then in our bitmap, resync data too:
      // a bitmap-based resync (or split-brain recovery) with it relies on that.
      for (const q of this.peers) {
        if (q === p || !q.diskful) continue;
        const away = !q.established && q.bitmapUuid !== 0;
        if (p.peerCrashedPrimary || q.peerCrashedPrimary || away) this.markOutOfSync(q, b, e - b);
      }
      const op = makeOp("resyncWrite", true, b, e - b);
      op.peer = p.peer;
      op.data = m.data.subarray((b - m.block) * blockSizeBytes, (e - m.block) * blockSizeBytes);
      op.needMetaSeq = this.resyncGateMetaSeq;
      op.group = group;
      group.pending++;
      this.ops.push(op);
      b = e;
    }
    if (group.pending === 0) this.resyncGroupDone(p, group);
  }

  /** Whether `p`'s last state shows it received our last stream write to block `b`. */
  private peerHasStreamWrite(p: PeerState, b: number): boolean {
    const seq = this.streamWritten.get(b) ?? 0;
    return p.peerStreamId === this.streamWrittenId && p.peerStreamSeq >= seq;
  }

  private resyncWriteDone(op: LocalOp, ok: boolean): void {
    const g = op.group!;
    g.pending--;
    const p = this.peerStates[g.peer]!;
    if (!ok) return;
    if (g.pending === 0 && p.replication === "SyncTarget") this.resyncGroupDone(p, g);
  }

  private resyncGroupDone(p: PeerState, g: ResyncGroup): void {
    this.clearTargetBits(p, g.block, g.blockCount);
    // Data from a source that crashed may lack writes it lost: a later source must not
    // skip those blocks.
    if (!p.peerCrashedPrimary) this.syncCovered?.setRange(g.block, g.blockCount);
    this.send(p.peer, { type: "resyncAck", block: g.block, blockCount: g.blockCount });
    // Every part was written (or skipped): nothing here refers to the data any more.
    this.emit({ type: "dataDone", data: g.data });
  }

  /** Target side: the source's data reached these blocks; keep bits the source lacks. */
  private clearTargetBits(p: PeerState, first: number, count: number): void {
    const end = Math.min(first + count, this.config.sizeBlocks);
    for (let b = first; b < end; b++) if (!p.resyncRedirty.isSet(b)) p.bitmap.clear(b);
  }

  /**
   * Target side, resync done: we now hold the source's data except where we were written
   * since (`resyncRedirty`); those bits stay, in memory and on disk, for a later resync the
   * other way (shouldRenegotiate).
   */
  private finishTargetBitmap(p: PeerState): void {
    const keep = p.resyncRedirty;
    if (keep.count() === 0) {
      p.bitmap.clearAll();
      this.persistBitmapClear(p);
      return;
    }
    const size = this.config.sizeBlocks;
    let b = 0;
    while (b < size) {
      if (keep.isSet(b) && p.bitmap.isSet(b)) {
        b++;
        continue;
      }
      let e = b + 1;
      while (e < size && !(keep.isSet(e) && p.bitmap.isSet(e))) e++;
      p.bitmap.clearRange(b, e - b);
      this.persist({
        kind: "bitmap",
        peer: p.peer,
        firstBlock: b,
        blockCount: e - b,
        value: false,
      });
      b = e;
    }
    keep.clearAll();
  }

  private onChecksumRequest(
    p: PeerState,
    m: Extract<PeerMessage, { type: "checksumRequest" }>,
  ): void {
    if (p.replication !== "SyncTarget") return;
    const op = makeOp("csumTargetRead", false, m.block, m.blockCount);
    op.peer = p.peer;
    op.aux = m.digest;
    this.ops.push(op);
  }

  private csumTargetReadDone(op: LocalOp, ok: boolean, data: Uint8Array | undefined): void {
    const p = this.peerStates[op.peer]!;
    if (p.replication !== "SyncTarget") return;
    const same = ok && crc32c(data!) === op.aux;
    if (same || (ok && this.appWrittenAll(op.firstBlock, op.blockCount))) {
      // Kept because ours is newer: the source lacks it, so the bits stay for later.
      if (!same && p.peerCrashedPrimary) p.resyncRedirty.setRange(op.firstBlock, op.blockCount);
      this.clearTargetBits(p, op.firstBlock, op.blockCount);
      if (!p.peerCrashedPrimary) this.syncCovered?.setRange(op.firstBlock, op.blockCount);
      this.send(p.peer, { type: "inSync", block: op.firstBlock, blockCount: op.blockCount });
    } else {
      this.send(p.peer, { type: "resyncRequest", block: op.firstBlock, blockCount: op.blockCount });
    }
  }

  private appWrittenAll(first: number, count: number): boolean {
    for (let b = first; b < first + count; b++) if (!this.appWritten.isSet(b)) return false;
    return true;
  }

  private onResyncAck(p: PeerState, block: number, blockCount: number): void {
    if (p.replication !== "SyncSource" || !p.resyncInFlight.has(block)) return;
    p.resyncInFlight.delete(block);
    p.resyncInFlightBits.clearRange(block, blockCount);
    p.resyncInFlightBlocks -= blockCount;
    p.resyncDoneThisTick += blockCount;
    for (let b = block; b < block + blockCount; b++) {
      if (!p.resyncRedirty.clear(b)) p.bitmap.clear(b);
    }
    this.maybeFinishResync(p);
    if (p.resyncBudget > 0 && this.diskful && this.dataConsistent()) this.issueResync(p);
  }

  private maybeFinishResync(p: PeerState): void {
    if (p.replication !== "SyncSource") return;
    if (p.resyncInFlightBlocks > 0 || p.bitmap.count() > 0) return;
    this.send(p.peer, { type: "resyncDone" });
    this.persistBitmapClear(p);
    if (p.bitmapUuid !== 0) this.pushHistory(p.bitmapUuid);
    p.bitmapUuid = 0;
    this.setReplication(p, "Established");
    // Our hot extents stay suspect until every diskful peer has our data: one that did not
    // get it may hold writes our crash lost.
    let allSynced = true;
    for (const q of this.peers) {
      if (!q.diskful) continue;
      if (!q.established || q.replication !== "Established" || q.bitmap.count() > 0)
        allSynced = false;
    }
    if (allSynced) this.crashedPrimary = false;
    this.persistSuperblock();
    this.emitState({ kind: "resyncDone", peer: p.peer, source: true });
    this.maybeConfirmData();
  }

  private onResyncDone(p: PeerState): void {
    if (p.replication !== "SyncTarget" && p.replication !== "WFBitMapT") return;
    // Make the resynced data durable before claiming it consistent.
    const op = makeOp("flushSyncDone", false, 0, 0);
    op.peer = p.peer;
    op.seq = p.targetRound;
    op.aux = this.al.flushStart();
    this.issueFlush(op);
  }

  private syncTargetFinish(peer: NodeId, ok: boolean): void {
    const p = this.peerStates[peer]!;
    const active = p.replication === "SyncTarget" || p.replication === "WFBitMapT";
    if (!ok || !active || p.peerUuids === undefined) return;
    // The source sent what it had for us; its last state's count is stale now.
    p.peerBitsForUs = 0;
    let more = false;
    for (const q of this.peers)
      if (q !== p && q.replication === "PausedSyncT" && q.established) more = true;
    if (more) {
      // Another source still has blocks we may lack (its bits are not the same as this
      // one's): stay Inconsistent until it is done too, transferring only what is left.
      this.syncCoveredUuid = p.peerUuids.currentUuid;
      this.syncCoveredStreamId = p.peerStreamId;
      this.syncCoveredStreamSeq = p.peerStreamSeq;
      if (p.bitmapUuid !== 0) this.pushHistory(p.bitmapUuid);
      p.bitmapUuid = 0;
      this.finishTargetBitmap(p);
      this.setReplication(p, "Established");
      this.emitState({ kind: "resyncDone", peer: p.peer, source: false });
      this.resumePausedTargets();
      return;
    }
    const old = this.sbCurrentUuid;
    const sourceUuid = p.peerUuids.currentUuid;
    // We may have moved on meanwhile (adopted our Primary's newer generation while this
    // round ran): a generation never goes back, so the source's only joins our history.
    // Without such a move (our UUID is the one the round began with, and no Primary writes
    // to us) we hold the source's data, of its generation, even an older one: an interrupted
    // resync toward a newer generation left us no data of it.
    const followsPrimary = this.peers.some((q) => q.established && q.peerRole === "Primary");
    const movedOn =
      this.sbHistoryUuids.includes(sourceUuid) &&
      old !== sourceUuid &&
      (old !== p.targetStartUuid || followsPrimary);
    // Going back to an older generation: our lineage is the source's (the newer one's data is
    // gone from here, so it must not look like our past).
    const back = !movedOn && old !== sourceUuid && this.sbHistoryUuids.includes(sourceUuid);
    if (back) {
      this.sbHistoryUuids.length = 0;
      this.sbHistoryUuids.push(...p.peerUuids.historyUuids.slice(0, historyUuidsMax));
      this.sbCurrentUuid = sourceUuid;
    } else if (!movedOn) {
      if (old !== sourceUuid) this.pushHistory(old);
      this.sbCurrentUuid = sourceUuid;
    }
    this.syncCoveredUuid = sourceUuid;
    for (const u of p.peerUuids.historyUuids)
      if (!this.sbHistoryUuids.includes(u)) this.sbHistoryUuids.push(u);
    if (this.sbHistoryUuids.length > historyUuidsMax) this.sbHistoryUuids.length = historyUuidsMax;
    if (p.bitmapUuid !== 0 && !back) this.pushHistory(p.bitmapUuid);
    p.bitmapUuid = 0;
    this.finishTargetBitmap(p);
    this.crashedPrimary = false;
    this.consistent = true;
    // We now hold the source's data, and with it its position in the write stream.
    if (
      p.peerRole !== "Primary" &&
      p.peerStreamId !== 0 &&
      p.peerStreamId === this.followedStream
    ) {
      this.followedSeq = Math.max(this.followedSeq, p.peerStreamSeq);
    } else if (p.peerRole !== "Primary") {
      this.followedStream = p.peerStreamId;
      this.followedSeq = p.peerStreamSeq;
    }
    if (this.appWrittenWriter === p.peer) this.resetAppWritten(-1);
    this.setReplication(p, "Established");
    // Blocks we kept against a source that is Primary now (newer writes of a stream it did
    // not get, from a Primary lost before it was promoted) differ from the data every
    // follower takes from it: not UpToDate until those bits come from it, asked for at once.
    const keptFromPrimary = p.peerRole === "Primary" && p.bitmap.count() > 0;
    const upToDate = p.peerDisk === "UpToDate" && !keptFromPrimary;
    this.wasUpToDate = upToDate;
    this.setDisk(upToDate ? "UpToDate" : "Outdated");
    this.persistSuperblock();
    this.emitState({ kind: "resyncDone", peer: p.peer, source: false });
    this.persistSuperblock();
    this.maybeConfirmData();
    // Peers learn our new generation before a paused source hears from us again.
    this.broadcastState();
    this.resumePausedTargets();
    if (keptFromPrimary) this.renegotiate(p, true);
  }

  // ---------------------------------------------------------------------------------------
  // Online verify: the source compares digests block by block and marks differences.

  private startVerify(commandId: number, peer: NodeId): void {
    const p = this.peerStates[peer];
    if (!this.config.options.verifyAlg)
      return this.adminDone(commandId, false, "Need a verify algorithm to start online verify");
    if (
      p === undefined ||
      !p.established ||
      p.replication !== "Established" ||
      !p.diskful ||
      this.disk !== "UpToDate"
    ) {
      return this.adminDone(commandId, false, "Need access to UpToDate data");
    }
    p.verifyCursor = 0;
    p.verifyOutOfSync = 0;
    p.verifyPending.clear();
    this.setReplication(p, "VerifyS");
    this.adminDone(commandId, true);
  }

  private verifyTick(p: PeerState): void {
    if (p.replication !== "VerifyS") return;
    let budget = p.rate.blocksThisTick(
      p.verifyPending.size * verifyChunkBlocks,
      p.resyncDoneLastTick,
      this.appIoLastTick,
    );
    while (budget > 0 && p.verifyCursor < this.config.sizeBlocks) {
      const b = p.verifyCursor;
      const count = Math.min(verifyChunkBlocks, this.config.sizeBlocks - b);
      p.verifyCursor += count;
      p.verifyPending.set(b, [-1, -1]);
      const op = makeOp("verifySourceRead", false, b, count);
      op.peer = p.peer;
      this.ops.push(op);
      this.send(p.peer, { type: "verifyRequest", block: b, blockCount: count });
      budget -= count;
    }
    this.maybeFinishVerify(p);
  }

  private onVerifyRequest(p: PeerState, m: Extract<PeerMessage, { type: "verifyRequest" }>): void {
    if (p.replication === "Established") this.setReplication(p, "VerifyT");
    const op = makeOp("verifyTargetRead", false, m.block, m.blockCount);
    op.peer = p.peer;
    this.ops.push(op);
  }

  private verifyReadDone(op: LocalOp, ok: boolean, data: Uint8Array | undefined): void {
    const p = this.peerStates[op.peer]!;
    const digest = ok ? crc32c(data!) : -1;
    if (op.kind === "verifyTargetRead") {
      this.send(p.peer, {
        type: "verifyReply",
        block: op.firstBlock,
        blockCount: op.blockCount,
        ok,
        digest,
      });
      return;
    }
    const entry = p.verifyPending.get(op.firstBlock);
    if (entry === undefined) return;
    entry[0] = digest;
    this.verifyCompare(p, op.firstBlock, op.blockCount, entry);
  }

  private onVerifyReply(p: PeerState, m: Extract<PeerMessage, { type: "verifyReply" }>): void {
    const entry = p.verifyPending.get(m.block);
    if (entry === undefined) return;
    entry[1] = m.ok ? m.digest : -2;
    this.verifyCompare(p, m.block, m.blockCount, entry);
  }

  private verifyCompare(p: PeerState, block: number, count: number, entry: [number, number]): void {
    if (entry[0] === -1 || entry[1] === -1) return;
    p.verifyPending.delete(block);
    p.resyncDoneThisTick += count;
    if (entry[0] !== entry[1]) {
      p.verifyOutOfSync += count;
      this.markOutOfSync(p, block, count);
    }
    this.maybeFinishVerify(p);
  }

  private maybeFinishVerify(p: PeerState): void {
    if (p.replication !== "VerifyS") return;
    if (p.verifyCursor < this.config.sizeBlocks || p.verifyPending.size > 0) return;
    this.send(p.peer, { type: "verifyDone" });
    this.emitState({ kind: "verifyDone", peer: p.peer, outOfSyncBlocks: p.verifyOutOfSync });
    this.setReplication(p, "Established");
    // Differences found: repair them now, this node being the reference.
    if (p.bitmap.count() > 0) this.startResyncAsSource(p, false);
  }

  // ---------------------------------------------------------------------------------------
  // Messages from peers.

  private onPeerMessage(from: NodeId, m: PeerMessage): void {
    const p = this.peerStates[from];
    assert(p !== undefined, "message from a known peer");
    if (!p.link) return; // A message of a connection we already gave up.
    if (p.connection === "Disconnecting") return;
    p.lastRecvTick = this.tickNow;
    // Any traffic proves the peer alive; a ping ack queued behind data is not a timeout.
    p.pingSentTick = -1;
    // Protocol error: state must come first on a new link. A renegotiation runs on a live
    // link, where the peer's earlier messages (writes, votes, resync) are still arriving.
    const early = !p.handshakeDone && !p.renegotiating;
    if (m.type !== "state" && early && m.type !== "ping" && m.type !== "pingAck") {
      return this.dropPeer(p, true);
    }
    switch (m.type) {
      case "state":
        return this.onState(p, m);
      case "data":
        return this.onData(p, m);
      case "recvAck":
      case "writeAck":
        return this.onAck(from, m.seq, true);
      case "negAck":
        return this.onAck(from, m.seq, false);
      case "barrier":
        p.barriersPending.push(m.epoch);
        return;
      case "barrierAck":
        return this.onBarrierAck(p, m.epoch);
      case "readRequest":
        return this.onReadRequest(p, m);
      case "readReply":
        return this.onReadReply(from, m);
      case "promoteRequest":
        return this.onPromoteRequest(p, m.id);
      case "promoteReply":
        return this.onPromoteReply(p, m.id, m.granted);
      case "bitmap":
        return this.onBitmap(p, m);
      case "syncStart":
        return this.onSyncStart(p, m.full);
      case "resyncRequest":
        return this.onResyncRequest(p, m.block, m.blockCount);
      case "checksumRequest":
        return this.onChecksumRequest(p, m);
      case "resyncReply":
        return this.onResyncReply(p, m);
      case "inSync":
      case "resyncAck":
        return this.onResyncAck(p, m.block, m.blockCount);
      case "resyncDone":
        return this.onResyncDone(p);
      case "verifyRequest":
        return this.onVerifyRequest(p, m);
      case "verifyReply":
        return this.onVerifyReply(p, m);
      case "verifyDone":
        if (p.replication === "VerifyT") this.setReplication(p, "Established");
        return;
      case "peerAck":
        return this.onPeerAck(p, m);
      case "ping":
        this.send(from, { type: "pingAck", seq: m.seq });
        return;
      case "resizeRequest":
      case "resizeReply":
      case "resize":
      case "resizeAck":
        return this.resize.onMessage(this.resizeHost, p, m);
      case "pingAck":
        p.pingSentTick = -1;
        if (p.confirmPending > 0 && m.seq === confirmSeq(p.confirmPending)) {
          p.confirmedRound = p.confirmPending;
          p.confirmPending = 0;
        }
        return;
    }
  }

  /** A replicated write from a Primary peer. */
  private onData(p: PeerState, m: Extract<PeerMessage, { type: "data" }>): void {
    const count = m.data.length / blockSizeBytes;
    if (
      !this.diskful ||
      this.disk === "Diskless" ||
      m.firstBlock + count > this.config.sizeBlocks
    ) {
      this.send(p.peer, { type: "negAck", seq: m.seq });
      return;
    }
    if (m.ack === "recv") this.send(p.peer, { type: "recvAck", seq: m.seq });
    // Peers that do not get this write from us or the Primary now lack it.
    for (const q of this.peers) {
      const gets =
        m.targets !== undefined ? (m.targets & (1 << q.peer)) !== 0 : this.getsWritesFrom(q, p);
      if (q !== p && q.diskful && !gets) this.markOutOfSync(q, m.firstBlock, count);
    }
    if (this.appWrittenWriter !== p.peer) this.resetAppWritten(p.peer);
    this.appWritten.setRange(m.firstBlock, count);
    this.noteStreamWrite(p, m.seq, m.firstBlock, count);
    if (p.peerStreamId !== 0) {
      if (this.followedStream !== p.peerStreamId) {
        this.followedStream = p.peerStreamId;
        this.followedSeq = 0;
      }
      if (m.seq > this.followedSeq) this.followedSeq = m.seq;
    }
    this.syncCovered?.setRange(m.firstBlock, count);
    // Until the Primary's peer ack says who holds this write, other nodes may lack it.
    p.unackedWrites.set(m.firstBlock, count);
    const op = makeOp("peerWrite", true, m.firstBlock, count);
    op.peer = p.peer;
    op.seq = m.seq;
    op.epoch = m.epoch;
    op.ack = m.ack;
    op.data = m.data;
    op.aux = p.linkGen;
    op.needMetaSeq = this.writeGateMetaSeq;
    if (!this.config.faults.skipActivityLog) op.alState = 1;
    p.recvEpochPending.set(m.epoch, (p.recvEpochPending.get(m.epoch) ?? 0) + 1);
    this.ops.push(op);
  }

  private onPeerAck(p: PeerState, m: Extract<PeerMessage, { type: "peerAck" }>): void {
    if (p.unackedWrites.get(m.firstBlock) === m.blockCount) p.unackedWrites.delete(m.firstBlock);
    if (!this.diskful || m.firstBlock + m.blockCount > this.config.sizeBlocks) return;
    this.settleStreamWrite(p, m.firstBlock, m.blockCount);
    for (const q of this.peers) {
      if (q === p || !q.diskful) continue;
      const has = (m.mask & (1 << q.peer)) !== 0;
      // Only a diskless Primary relies on us for that: a diskful one keeps its own bit.
      if (p.peer === this.appWrittenWriter && !p.diskful) {
        if (has) q.lacksPrimaryWrite.clearRange(m.firstBlock, m.blockCount);
        else q.lacksPrimaryWrite.setRange(m.firstBlock, m.blockCount);
      }
      if (!has) this.markOutOfSync(q, m.firstBlock, m.blockCount);
    }
  }

  private peerWriteDone(op: LocalOp, ok: boolean): void {
    if (op.alState === 2) this.al.release(op.firstBlock, op.blockCount);
    op.alState = 0;
    const p = this.peerStates[op.peer]!;
    if (!p.link || op.aux !== p.linkGen) return; // Written for a connection that is gone.
    const n = (p.recvEpochPending.get(op.epoch) ?? 1) - 1;
    if (n <= 0) p.recvEpochPending.delete(op.epoch);
    else p.recvEpochPending.set(op.epoch, n);
    if (!ok) this.send(p.peer, { type: "negAck", seq: op.seq });
    else if (op.ack === "write") this.send(p.peer, { type: "writeAck", seq: op.seq });
  }

  /** Barriers from `p` whose epochs have no write in flight get their flush. */
  private pumpBarriers(p: PeerState): void {
    if (!p.link || p.barriersPending.length === 0) return;
    const epoch = p.barriersPending[0]!;
    for (const e of p.recvEpochPending.keys()) if (e <= epoch) return;
    if (p.barrierFlushing) return;
    if (!this.diskful || this.disk === "Diskless") {
      p.barriersPending.shift();
      this.send(p.peer, { type: "barrierAck", epoch });
      return;
    }
    const op = makeOp("flushBarrier", false, 0, 0);
    p.barrierFlushing = true;
    op.peer = p.peer;
    op.seq = p.linkGen;
    op.epoch = epoch;
    op.aux = this.al.flushStart();
    this.issueFlush(op);
  }

  private barrierFlushDone(op: LocalOp, ok: boolean): void {
    const p = this.peerStates[op.peer]!;
    if (ok) this.al.flushDone(op.aux);
    if (op.seq !== p.linkGen) return;
    p.barrierFlushing = false;
    // A failed flush detaches the disk (onLocalIoError) and the link decides the rest.
    if (!ok || !p.link || p.barriersPending[0] !== op.epoch) return;
    p.barriersPending.shift();
    this.send(p.peer, { type: "barrierAck", epoch: op.epoch });
  }

  private onBarrierAck(p: PeerState, epoch: number): void {
    if (epoch > p.barrierAckedEpoch) p.barrierAckedEpoch = epoch;
    const tl = p.transferLog;
    let drop = 0;
    while (drop < tl.length && tl[drop]! <= epoch) drop += 3;
    if (drop > 0) tl.splice(0, drop);
  }

  private onReadRequest(p: PeerState, m: Extract<PeerMessage, { type: "readRequest" }>): void {
    if (
      !this.diskful ||
      this.disk !== "UpToDate" ||
      m.firstBlock + m.blockCount > this.config.sizeBlocks
    ) {
      this.send(p.peer, { type: "readReply", id: m.id, ok: false });
      return;
    }
    const op = makeOp("peerRead", false, m.firstBlock, m.blockCount);
    op.peer = p.peer;
    op.aux = m.id;
    this.ops.push(op);
  }

  // ---------------------------------------------------------------------------------------
  // Roles and promotion (a two-phase commit among connected peers).

  private onAdmin(commandId: number, c: AdminCommand): void {
    switch (c.type) {
      case "primary":
        return this.promote(commandId, c.force === true, false);
      case "secondary":
        return this.demote(commandId);
      case "open":
        this.openCount++;
        if (this.role === "Primary" || !this.config.options.autoPromote) {
          return this.adminDone(commandId, true);
        }
        return this.promote(commandId, false, true);
      case "close":
        if (this.openCount > 0) this.openCount--;
        if (this.openCount === 0 && this.autoPromoted) return this.demote(commandId);
        return this.adminDone(commandId, true);
      case "connect":
        return this.adminConnect(commandId, c.peer, c.discardMyData === true);
      case "disconnect":
        for (const p of this.peers)
          if (c.peer === undefined || c.peer === p.peer) this.dropPeer(p, false);
        return this.adminDone(commandId, true);
      case "down":
        return this.startDown(commandId);
      case "invalidate":
        return this.invalidate(commandId);
      case "verify":
        return this.startVerify(commandId, c.peer);
      case "resize":
        return this.resize.start(this.resizeHost, commandId, c);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Online resize: the rounds live in resize.ts; this is what they see of the replica.

  /** Built once; its getters read the replica's current state. */
  private readonly resizeHost: ResizeHost = ((r: Replica): ResizeHost => ({
    get self() {
      return { diskful: r.diskful, disk: r.disk, role: r.role };
    },
    get selfName() {
      return r.config.byId[r.nodeId]!.name;
    },
    get sizeBlocks() {
      return r.config.sizeBlocks;
    },
    get capacityBlocks() {
      return r.diskful && r.disk !== "Diskless" ? r.capacityBlocks : 0;
    },
    get metaSeqDone() {
      return r.metaSeqDone;
    },
    peers: r.peers,
    send: (to, message) => r.send(to, message),
    persistResize: (sizeBlocks) => r.persist({ kind: "resize", sizeBlocks }),
    grow: (sizeBlocks) => r.growTo(sizeBlocks),
    markNew: (from, to) => {
      for (const p of r.peers) r.markOutOfSync(p, from, to - from);
    },
    done: (commandId, ok, error) => r.adminDone(commandId, ok, error),
  }))(this);

  /** Grows every size-bound structure; the metadata move is already durable. */
  private growTo(sizeBlocks: number): boolean {
    if (this.diskful && (this.disk === "Failed" || this.disk === "Diskless")) return false;
    if (sizeBlocks <= this.config.sizeBlocks) return true;
    this.config = { ...this.config, sizeBlocks };
    for (const p of this.peers) {
      p.bitmap.grow(sizeBlocks);
      p.resyncInFlightBits.grow(sizeBlocks);
      p.resyncRedirty.grow(sizeBlocks);
      p.lacksPrimaryWrite.grow(sizeBlocks);
    }
    if (this.diskful) this.appWritten.grow(sizeBlocks);
    this.syncCovered?.grow(sizeBlocks);
    if (this.capacityBlocks < sizeBlocks) this.capacityBlocks = sizeBlocks;
    this.emitState({ kind: "resized", sizeBlocks });
    return true;
  }

  private startDown(commandId: number): void {
    if (this.role === "Primary")
      return this.adminDone(commandId, false, "A Primary cannot go down: demote it first");
    if (this.down !== undefined) return this.adminDone(commandId, false, "Already going down");
    for (const p of this.peers) this.dropPeer(p, false);
    if (!this.diskful || this.disk === "Diskless") return this.adminDone(commandId, true);
    this.down = { commandId, metaSeq: 0 };
    this.pump();
  }

  /** Clean detach: once local IO has drained, flush, then persist an empty activity log. */
  private maybeFinishDown(): void {
    const d = this.down;
    if (d === undefined || d.metaSeq !== 0 || this.ioMap.size > 0 || this.ops.length > 0) return;
    d.metaSeq = -1;
    const op = makeOp("flushDown", false, 0, 0);
    op.aux = this.al.flushStart();
    this.issueFlush(op);
  }

  private downFlushDone(op: LocalOp, ok: boolean): void {
    const d = this.down!;
    if (!ok) {
      this.down = undefined;
      return this.adminDone(d.commandId, false, "Flush failed: the disk reported an error");
    }
    this.al.flushDone(op.aux);
    const tx = this.al.clear();
    d.metaSeq = this.persist({ kind: "activityLog", transactionSeq: tx, extents: [] });
    this.alTxMeta.set(tx, d.metaSeq);
  }

  private adminConnect(commandId: number, peer: NodeId | undefined, discard: boolean): void {
    for (const p of this.peers) {
      if (peer !== undefined && p.peer !== peer) continue;
      p.discardMyData = discard;
      if (!p.want) {
        p.want = true;
        this.setConnection(p, "Connecting");
        this.emit({ type: "connectPeer", peer: p.peer });
      }
    }
    this.adminDone(commandId, true);
  }

  private invalidate(commandId: number): void {
    if (!this.diskful || this.role === "Primary")
      return this.adminDone(commandId, false, "Need access to UpToDate data");
    this.consistent = false;
    this.wasUpToDate = false;
    this.syncBaseUuid = 0;
    this.setDisk("Inconsistent");
    this.persistSuperblock();
    // Reconnect so that the handshake picks a full sync from an UpToDate peer.
    for (const p of this.peers) if (p.link) this.dropPeer(p, true);
    this.adminDone(commandId, true);
  }

  private promote(commandId: number, force: boolean, auto: boolean): void {
    if (this.role === "Primary") return this.adminDone(commandId, true);
    if (this.pendingPromotion !== undefined)
      return this.adminDone(commandId, false, "State change in progress");
    const ignore = this.config.faults.ignoreSinglePrimary === true;
    if (!force && !ignore && this.config.options.quorum !== "off" && !this.quorumOk()) {
      return this.adminDone(commandId, false, "No quorum");
    }
    if (!this.hasDataAccess() && !this.resyncingAsTarget()) {
      if (!(force && this.diskful && (this.disk === "Consistent" || this.disk === "Outdated"))) {
        return this.adminDone(commandId, false, "Need access to UpToDate data");
      }
      this.becomeUpToDate();
    }
    if (!this.config.options.allowTwoPrimaries && !ignore) {
      for (const p of this.peers) {
        if ((p.established && p.peerRole === "Primary") || p.grantedUntilTick >= this.tickNow) {
          return this.adminDone(commandId, false, "Multiple primaries not allowed by config");
        }
      }
    }
    let waitMask = 0;
    const id = this.promotionIdNext++;
    if (!this.config.options.allowTwoPrimaries && !ignore) {
      for (const p of this.peers) {
        if (!p.established) continue;
        waitMask |= 1 << p.peer;
        this.send(p.peer, { type: "promoteRequest", id });
      }
    }
    this.pendingPromotion = { commandId, id, waitMask, force };
    this.autoPromoted = auto;
    this.maybeFinishPromotion();
  }

  private onPromoteRequest(p: PeerState, id: number): void {
    let granted = true;
    if (this.role === "Primary" && !this.config.options.allowTwoPrimaries) granted = false;
    if (this.pendingPromotion !== undefined && this.nodeId < p.peer) granted = false;
    if (this.resize.running) granted = false;
    for (const q of this.peers) {
      if (q === p) continue;
      if (q.grantedUntilTick >= this.tickNow) granted = false;
      // Another Primary we follow: a second one may not arise through us.
      const two = this.config.options.allowTwoPrimaries;
      if (!two && q.established && q.peerRole === "Primary") granted = false;
    }
    // A requester whose data is behind the newest generation we know (our own, or for a
    // diskless node the last Primary's) missed writes that a Primary completed: no vote.
    const known = this.diskful ? this.sbCurrentUuid : this.lastPrimaryUuid;
    const u = p.peerUuids;
    if (p.diskful && known !== 0 && u !== undefined && u.currentUuid !== known) {
      if (u.historyUuids.includes(known) === false && this.knowsUuid(u.currentUuid)) {
        granted = false;
      }
    }
    if (granted) {
      p.grantedUntilTick = this.tickNow + this.config.options.timeoutTicks;
      const mine = this.pendingPromotion;
      if (mine !== undefined && !this.config.options.allowTwoPrimaries) {
        // We yield to the lower node id: our own promotion may not complete after this vote.
        this.pendingPromotion = undefined;
        this.adminDone(mine.commandId, false, "Another node is becoming Primary");
      }
    }
    this.send(p.peer, { type: "promoteReply", id, granted });
  }

  /** Whether `uuid` is in our past: data of that generation is older than ours. */
  private knowsUuid(uuid: number): boolean {
    if (this.diskful) return this.sbHistoryUuids.includes(uuid);
    return uuid !== this.lastPrimaryUuid && this.lastPrimaryHistory.includes(uuid);
  }

  private onPromoteReply(p: PeerState, id: number, granted: boolean): void {
    const pending = this.pendingPromotion;
    if (pending === undefined || pending.id !== id) return;
    pending.waitMask &= ~(1 << p.peer);
    if (!granted) {
      this.pendingPromotion = undefined;
      return this.adminDone(pending.commandId, false, "Multiple primaries not allowed by config");
    }
    this.maybeFinishPromotion();
  }

  private maybeFinishPromotion(): void {
    const pending = this.pendingPromotion;
    if (pending === undefined || pending.waitMask !== 0) return;
    // A handshake under way was decided on our Secondary snapshot: let it finish first.
    for (const p of this.peers) if (p.link && p.want && !p.handshakeDone) return;
    if (!this.hasDataAccess()) {
      // A resync toward UpToDate data is running: the promotion completes once it is done.
      if (this.resyncingAsTarget()) return;
      this.pendingPromotion = undefined;
      return this.adminDone(pending.commandId, false, "Need access to UpToDate data");
    }
    this.pendingPromotion = undefined;
    const ignore = this.config.faults.ignoreSinglePrimary === true;
    if (!this.config.options.allowTwoPrimaries && !ignore) {
      // A Primary may have connected while we waited for the votes.
      for (const p of this.peers) {
        if (p.established && p.peerRole === "Primary") {
          return this.adminDone(
            pending.commandId,
            false,
            "Multiple primaries not allowed by config",
          );
        }
      }
    }
    if (this.config.options.quorum !== "off" && !this.quorumOk() && !pending.force && !ignore) {
      return this.adminDone(pending.commandId, false, "No quorum");
    }
    this.role = "Primary";
    this.promotionSeq++;
    // A new write stream: its id is unique in the cluster (a Lamport count and our id).
    this.uuidCounter++;
    this.streamId = mintUuid(this.uuidCounter, this.nodeId);
    this.emitState({ kind: "role", role: "Primary" });
    if (this.diskful) {
      this.primaryFlag = true;
      this.writeGateMetaSeq = this.persistSuperblock();
      // Promoted while a peer is away: a new generation, so a split brain is detectable.
      if (this.disk === "UpToDate") this.maybeRotateUuid();
    } else {
      this.exposePeerGeneration();
    }
    this.broadcastState();
    this.adminDone(pending.commandId, true);
  }

  private demote(commandId: number): void {
    if (this.role !== "Primary") return this.adminDone(commandId, true);
    if (this.writes.length > 0 || this.flushes.length > 0 || this.heldWrites.length > 0) {
      return this.adminDone(commandId, false, "Device is held open by someone");
    }
    this.role = "Secondary";
    this.autoPromoted = false;
    this.keepOwnStream();
    this.emitState({ kind: "role", role: "Secondary" });
    this.failSuspended("EIO");
    if (this.diskful && this.disk !== "Diskless") {
      // Clear the primary flag only once our data is durable: a crash before that still
      // counts as a Primary crash and resyncs the hot extents.
      const op = makeOp("flushDemote", false, 0, 0);
      op.aux = this.al.flushStart();
      this.issueFlush(op);
    }
    this.broadcastState();
    this.adminDone(commandId, true);
  }

  /** Stepping down: we hold our own stream's writes up to the last one we issued. */
  private keepOwnStream(): void {
    this.followedStream = this.streamId;
    this.followedSeq = this.writeSeqNext - 1;
  }

  /** Demotes at once, failing whatever IO is still open. */
  private forceSecondary(): void {
    // Writes not yet issued never reach a disk; issued ones finish (and release the AL).
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      if (op.issued || op.kind !== "clientWrite") continue;
      this.ops.splice(i--, 1);
      const w = op.writeReq!;
      if (w.alHeld) this.al.release(w.firstBlock, w.blockCount);
      w.alHeld = false;
      w.localPending = false;
    }
    for (const w of this.writes.splice(0)) {
      this.writesBySeq.delete(w.seq);
      this.sendPeerAcks(w);
      w.phase = "done";
      this.completeRequest(w.requestId, false, "EIO");
    }
    for (const f of this.flushes.splice(0)) {
      if (f.write === undefined) this.completeRequest(f.requestId, false, "EIO");
    }
    this.failSuspended("EIO");
    for (const id of this.confirmHeld.splice(0)) this.completeRequest(id, false, "EIO");
    this.confirmNeeded = 0;
    this.role = "Secondary";
    this.autoPromoted = false;
    this.keepOwnStream();
    this.emitState({ kind: "role", role: "Secondary" });
    if (this.suspended) {
      this.suspended = false;
      this.emitState({ kind: "suspended", suspended: false });
    }
  }

  /** A resync from a source with UpToDate data runs (or waits its turn) toward us. */
  private resyncingAsTarget(): boolean {
    if (!this.diskful || this.disk !== "Inconsistent") return false;
    for (const p of this.peers) {
      if (takesResync(p.replication) && p.established && p.peerDisk === "UpToDate") return true;
    }
    return false;
  }

  private dataConsistent(): boolean {
    return this.disk === "UpToDate" || this.disk === "Outdated" || this.disk === "Consistent";
  }

  private hasDataAccess(): boolean {
    if (this.diskful && this.disk === "UpToDate") return true;
    if (this.diskful && this.disk !== "Diskless" && this.disk !== "Failed") return false;
    for (const p of this.peers) {
      if (p.established && p.peerDisk === "UpToDate" && this.exposesOurData(p)) return true;
    }
    return false;
  }

  /**
   * Diskless: the peer's data is of the line of the last Primary we followed (or we know
   * none). A peer behind that line lacks writes that Primary completed: we must not become
   * Primary on its data.
   */
  private onFollowedLine(u: UuidSet | undefined): boolean {
    const last = this.lastPrimaryUuid;
    if (this.diskful || last === 0 || u === undefined) return true;
    return u.currentUuid === last || u.historyUuids.includes(last) || this.oldLineJoined(u);
  }

  /**
   * Diskless tiebreaker: the node that was the last Primary we followed now holds data of
   * `u`'s line (it resynced from it, or discarded its own): that old line is gone, and a
   * Primary of the new one is no rival of it.
   */
  private oldLineJoined(u: UuidSet): boolean {
    const q = this.peerStates[this.lastPrimaryNode];
    const c = q?.peerUuids?.currentUuid;
    if (q === undefined || !q.established || c === undefined || q.peerRole === "Primary") {
      return false;
    }
    return c === u.currentUuid || u.historyUuids.includes(c);
  }

  /** A diskless Primary's peer holds the data generation it exposes (see trackExposed). */
  private exposesOurData(p: PeerState): boolean {
    if (this.diskful) return true;
    if (this.role !== "Primary" || this.sbCurrentUuid === 0)
      return this.onFollowedLine(p.peerUuids);
    return p.exposedMatch;
  }

  // ---------------------------------------------------------------------------------------
  // Quorum.

  private quorumOk(): boolean {
    return this.config.options.quorum === "off" || this.quorum;
  }

  private updateQuorum(): void {
    let reachable = 1;
    // A peer counts once it confirmed the connection (its state after its own handshake):
    // a peer that refuses us (it follows another Primary) never lends us its vote.
    for (const p of this.peers) {
      if ((p.established && p.confirmed) || (p.link && p.renegotiating)) reachable++;
    }
    const q = hasQuorum(this.config.options.quorum, this.config.nodes.length, reachable);
    if (q === this.quorum) return;
    this.quorum = q;
    this.emitState({ kind: "quorum", quorum: q });
    if (!q) {
      if (this.role === "Secondary" && this.disk === "UpToDate") {
        // A secondary cut off from the majority can no longer vouch for its data.
        this.wasUpToDate = false;
        this.setDisk("Outdated");
        this.persistSuperblock();
      }
      if (this.role === "Primary" && this.config.options.onNoQuorum === "suspend-io") {
        this.suspended = true;
        this.emitState({ kind: "suspended", suspended: true });
      }
      return;
    }
    if (this.suspended) {
      this.suspended = false;
      this.emitState({ kind: "suspended", suspended: false });
    }
    const held = this.heldWrites.splice(0);
    for (const w of held)
      this.completeRequest(w.requestId, this.canWrite(), this.canWrite() ? undefined : "EIO");
    const events = this.suspendedEvents.splice(0);
    for (const e of events) this.replay(e);
  }

  private replay(e: Event): void {
    if (e.type === "clientWrite") this.onClientWrite(e);
    else if (e.type === "clientRead") this.onClientRead(e);
    else if (e.type === "clientFlush") this.onClientFlush(e.requestId);
  }

  private failSuspended(error: IoErrorCode): void {
    for (const e of this.suspendedEvents.splice(0)) {
      if (e.type === "clientWrite" || e.type === "clientRead" || e.type === "clientFlush") {
        this.completeRequest(e.requestId, false, error);
      }
    }
    for (const w of this.heldWrites.splice(0)) this.completeRequest(w.requestId, false, error);
  }

  // ---------------------------------------------------------------------------------------
  // Time: pings, timeouts, ko-count, epochs, resync pacing.

  private onTick(): void {
    this.tickNow++;
    const o = this.config.options;
    this.appIoLastTick = this.appIoThisTick;
    this.appIoThisTick = false;
    // A paused source waits for the running one; if none runs any more (it ended through a
    // renegotiation or a dropped link), the paused one goes on.
    let paused = false;
    let running = false;
    for (const p of this.peers) {
      if (p.replication === "PausedSyncT" && p.established) paused = true;
      if (p.replication === "WFBitMapT" || p.replication === "SyncTarget") running = true;
    }
    if (paused && !running) this.resumePausedTargets();
    for (const p of this.peers) {
      p.resyncDoneLastTick = p.resyncDoneThisTick;
      p.resyncDoneThisTick = 0;
      if (!p.link) continue;
      if (p.connection === "Disconnecting") {
        if (this.tickNow >= p.dropAtTick) this.dropPeer(p, false);
        continue;
      }
      if (p.pingSentTick >= 0 && this.tickNow - p.pingSentTick >= o.pingTimeoutTicks) {
        this.dropPeer(p, true);
        continue;
      }
      if (!p.handshakeDone && this.tickNow - p.lastRecvTick >= o.timeoutTicks) {
        this.dropPeer(p, true);
        continue;
      }
      if (this.peerTooSlow(p)) {
        this.dropPeer(p, true);
        continue;
      }
      if (this.shouldRenegotiate(p)) {
        this.renegotiate(p, true);
        continue;
      }
      if (p.pingSentTick < 0 && this.tickNow - p.lastRecvTick >= o.pingIntTicks) {
        p.pingSentTick = this.tickNow;
        this.send(p.peer, { type: "ping", seq: 0 });
      }
      this.resyncTick(p);
      this.verifyTick(p);
    }
    // An idle epoch is closed so that peers flush and the transfer log drains.
    if (this.epochWrites > 0 && this.tickNow - this.epochTick >= 1) this.closeEpoch();
  }

  /**
   * Bits for a peer we are Established with (from peer acks or reconciliation) are only
   * resolved by a handshake: renegotiate, at most once per timeout.
   */
  private shouldRenegotiate(p: PeerState): boolean {
    if (!p.established || p.replication !== "Established" || !this.diskful || !p.diskful) {
      return false;
    }
    const peerConsistent =
      p.peerDisk === "UpToDate" || p.peerDisk === "Outdated" || p.peerDisk === "Consistent";
    const bits = p.bitmap.count() > 0 && this.disk === "UpToDate" && peerConsistent;
    // An Inconsistent node next to UpToDate data without a resync: the handshake that
    // decided "none" saw other disk states; look again.
    const behind =
      (this.disk === "Outdated" || this.disk === "Consistent") &&
      p.peerUuids !== undefined &&
      p.peerUuids.currentUuid !== this.sbCurrentUuid;
    // Outdated data with bits for an UpToDate peer is not vouched for (maybeConfirmData):
    // only a resync of those bits makes it UpToDate.
    const marked = (this.disk === "Outdated" || this.disk === "Consistent") && p.bitmap.count() > 0;
    const stuck = (this.disk === "Inconsistent" || behind || marked) && p.peerDisk === "UpToDate";
    if (!bits && !stuck) return false;
    for (const q of this.peers) {
      // A resync under way (or waiting its turn) will settle it.
      if (q.replication !== "Established" && q.replication !== "Off") return false;
    }
    if (this.tickNow - p.renegotiateTick < this.config.options.timeoutTicks) return false;
    for (const w of this.writes) if ((w.acksPendingMask & (1 << p.peer)) !== 0) return false;
    return p.unackedWrites.size === 0;
  }

  /** Our generation or the state of our data changed since `sent` was taken. */
  private snapshotStale(sent: StateSnapshot): boolean {
    return sent.uuids.currentUuid !== this.sbCurrentUuid || sent.disk !== this.disk;
  }

  /** Restarts the handshake on a live link (the connection and quorum stay up). */
  private renegotiate(p: PeerState, initiator: boolean, answersId = 0): void {
    p.renegotiateTick = this.tickNow;
    p.handshakeDone = false;
    p.renegotiating = true;
    if (initiator) p.lastRecvTick = this.tickNow;
    p.sent = this.snapshot(p);
    // The initiator asks (reply=false) under a new id; the answer echoes it and must not
    // look like a new request.
    p.handshakeRequestId = initiator ? this.handshakeIdNext++ : 0;
    const id = initiator ? p.handshakeRequestId : answersId;
    this.send(p.peer, this.stateMessage(p.sent, !initiator, id, p.judgedPeerId));
  }

  /** ko-count: the oldest write (or read) the peer owes us is older than koCount × timeout. */
  private peerTooSlow(p: PeerState): boolean {
    const o = this.config.options;
    if (o.koCount === 0) return false;
    const limit = o.timeoutTicks * o.koCount;
    const bit = 1 << p.peer;
    for (const w of this.writes) {
      if ((w.acksPendingMask & bit) !== 0 && this.tickNow - w.startTick > limit) return true;
    }
    for (const r of this.remoteReads.values()) {
      if (r.peer === p.peer && this.tickNow - r.startTick > limit) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------
  // Plumbing.

  /** Runs every queue until nothing more can start. */
  private pump(): void {
    this.releaseConfirmHeld();
    this.pumpWrites();
    this.pumpFlushes();
    this.pumpOps();
    for (const p of this.peers) this.pumpBarriers(p);
    this.maybeFinishPromotion();
    this.maybeFinishDown();
    if (this.resize.active) this.resize.progress(this.resizeHost);
  }

  private send(to: NodeId, message: PeerMessage): void {
    this.emit({ type: "send", to, message });
  }

  private emit(effect: Effect): void {
    this.effects.push(effect);
  }

  private emitState(change: StateChange): void {
    this.emit({ type: "stateChanged", change });
  }

  private completeRequest(
    requestId: number,
    ok: boolean,
    error?: IoErrorCode,
    data?: Uint8Array,
  ): void {
    if (ok)
      this.emit({
        type: "completeRequest",
        requestId,
        ok,
        ...(data !== undefined ? { data } : {}),
      });
    else this.emit({ type: "completeRequest", requestId, ok, error: error ?? "EIO" });
  }

  private adminDone(commandId: number, ok: boolean, error?: string): void {
    if (ok) this.emit({ type: "adminCompleted", commandId, ok });
    else this.emit({ type: "adminCompleted", commandId, ok, error: error ?? "failed" });
  }

  private setDisk(disk: DiskState): void {
    if (this.disk === disk) return;
    this.disk = disk;
    this.emitState({ kind: "disk", disk });
  }

  private setConnection(p: PeerState, c: PeerState["connection"]): void {
    if (p.connection === c) return;
    p.connection = c;
    this.emitState({ kind: "connection", peer: p.peer, connection: c });
  }

  private setReplication(p: PeerState, r: PeerState["replication"]): void {
    if (p.replication === r) return;
    p.replication = r;
    this.emitState({ kind: "replication", peer: p.peer, replication: r });
  }

  private setPeerDisk(p: PeerState, d: DiskState): void {
    if (p.peerDisk === d) return;
    p.peerDisk = d;
    this.emitState({ kind: "peerDisk", peer: p.peer, disk: d });
  }
}

function newFlush(
  requestId: number,
  beforeSubmitSeq: number,
  write: WriteReq | undefined,
): FlushReq {
  return {
    requestId,
    beforeSubmitSeq,
    write,
    started: false,
    localPending: false,
    localOk: false,
    peerEpochs: new Array<number>(32).fill(-1),
  };
}

/** How good a disk is as a resync source: UpToDate, then data that is merely consistent. */
function diskRank(d: DiskState): number {
  if (d === "UpToDate") return 2;
  return d === "Consistent" || d === "Outdated" ? 1 : 0;
}

/** Whether data of generation sets `a` and `b` are of one line (one descends from the other). */
function sameLine(a: UuidSet | undefined, b: UuidSet): boolean {
  if (a === undefined) return false;
  const c = b.currentUuid;
  return (
    a.currentUuid === c || a.historyUuids.includes(c) || b.historyUuids.includes(a.currentUuid)
  );
}

/** We are this peer's resync target: the bitmap exchange, the resync, or waiting our turn. */
function takesResync(r: ReplicationState): boolean {
  return r === "WFBitMapT" || r === "SyncTarget" || r === "PausedSyncT";
}

function overlaps(aFirst: number, aCount: number, bFirst: number, bCount: number): boolean {
  return aFirst < bFirst + bCount && bFirst < aFirst + aCount;
}

export function createReplica(
  config: ResourceConfig,
  nodeId: NodeId,
  persisted?: PersistedMeta,
): Replica {
  return new Replica(config, nodeId, persisted);
}
