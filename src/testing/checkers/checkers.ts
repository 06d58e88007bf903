//! The invariants the simulator checks after every step (engine step or tick), each named by
//! the letter issue 3 gives it. The first violation throws `InvariantViolation`.
//!
//! (a) `a:acked-write-lost`. A write completed to a client is never lost while a replica that
//!     held it survives. Checked on every client read (against the oracle's floor, see
//!     data_oracle.ts) and, every `fullCheckIntervalTicks`, on every live node whose disk is
//!     UpToDate for every block whose floor write it held at completion ("owes"). A read may
//!     miss the floor write only when nothing it can serve from held it and either (quorum
//!     off) the write came from a split-brain rival (`splitBrainView`), or (protocols A, B)
//!     another node issued it (`failoverMayMiss`); a read on the issuer is always strict.
//!     Protocols A and B with quorum on: when a node becomes writable, floors of writes
//!     another node issued that none of the nodes it reaches held are relaxed (failover:
//!     the old writer gives them up as the new line's sync target, `relaxFailover`).
//! (b) `b:two-writers`. Two live nodes never both accept writes (`canWrite`) unless
//!     allow-two-primaries is set. With quorum off, DRBD only promises this between nodes
//!     that are connected (the promotion handshake); a partitioned pair may both write and
//!     that is split brain, which (f) then watches. With quorum on, never two, anywhere.
//! (c) `c:unmarked-difference`. For two live diskful nodes A and B whose disks are
//!     UpToDate, Outdated or Consistent (an Inconsistent disk is wholly covered by resync
//!     state: it becomes UpToDate only through a resync, a full one if its source is lost),
//!     every block whose data differ is marked in A's bitmap for B or in B's bitmap for A,
//!     unless a client write to the block is still open (in flight, failed, or lost with a
//!     crashed node: replicas may then legitimately differ until the activity-log resync,
//!     which (d) verifies). A difference is also covered when a live, UpToDate third node C
//!     marks the block for both A and B (it will resync both from its own data; a Primary
//!     that lost both peers mid-write is the usual case), or marks it for one of them and
//!     holds the other's data. Data counts as what each disk will hold once the writes
//!     already submitted to it complete (a write on its way to the platter is not a
//!     difference). If that third node dies, nobody knows of the difference any more, and
//!     (c) reports it: two Secondaries that diverge silently. Bitmaps only describe
//!     differences within one generation: a pair whose generations do not meet (neither
//!     current UUID equal, nor one's bitmap UUID for the other equal to the other's current:
//!     a split brain, or a node more than a generation behind) is resolved by a full sync or
//!     an operator, as the handshake's decision table says, and is not compared here.
//!     Under protocols A and B a completed write may still be on its way to a peer, so (c)
//!     runs only at quiescent points there (the final convergence check).
//! (d) `d:diverged` / `d:no-convergence`. After healing, within a bounded time, every
//!     diskful node is UpToDate, connected, not resyncing, and all are byte-identical.
//! (e) `e:generation-backwards`, on every superblock a node persists: the uuid counter never
//!     decreases, and a current UUID the node left behind is never persisted as current
//!     again, unless the node's previous superblock said its data was inconsistent (it is
//!     taking a peer's data as a resync target, and with it the peer's lineage). After a
//!     crash, lost superblock writes never happened: tracking restarts from the durable one.
//! (f) `f:split-brain-merged`. Writes issued by two rival primary sessions (both writable,
//!     not connected to each other, at the same time) never both appear on one replica
//!     that is UpToDate and not a resync target: a split brain is resolved by taking one
//!     side, never by mixing.
//!
//! Also: `engine-contract` (diskless nodes do no data IO, IO stays inside the volume).

import type {
  DiskState,
  MetadataRecord,
  NodeId,
  ReplicaView,
  StateChange,
  SuperblockRecord,
} from "../../engine/mod.js";
import type { Cluster, ClusterNode, ClientRequest } from "../cluster.js";
import { blockSizeBytes, payloadWriteId } from "../payload.js";

/** A reader's split-brain situation at issue (see `Checkers.splitBrainView`). */
export interface SplitBrainView {
  /** The reader's primary session (0: not writable). */
  session: number;
  /** Sessions of writable nodes the reader is not connected to. */
  rivals: number[];
  /** Nodes whose data the reader serves. */
  reachable: number[];
}

export class InvariantViolation extends Error {
  override name = "InvariantViolation";
  constructor(
    readonly invariant: string,
    readonly detail: string,
    readonly tick: number,
  ) {
    super(`${invariant} at tick ${tick}: ${detail}`);
  }
}

export interface CheckerOptions {
  /** Run the per-block checks (a, c, f) every this many ticks; 0 disables them. */
  fullCheckIntervalTicks: number;
  /** Check (c) during the run (protocol C only); otherwise only at the end. */
  bitmapCheckLive: boolean;
}

/**
 * Disks (c) compares. An Inconsistent disk is left out: it is wholly covered by resync
 * state, since it can only become UpToDate again through a resync (a full one if its source
 * is lost), and (c) checks it again from the moment it is UpToDate.
 */
const comparedDisks: ReadonlySet<DiskState> = new Set<DiskState>([
  "UpToDate",
  "Outdated",
  "Consistent",
]);

interface NodeTrack {
  canWrite: boolean;
  /** Current primary session id (0: not writable). */
  session: number;
  /** The last superblock this node issued (or, after a restart, the durable one). */
  superblockLast: SuperblockRecord | null;
  /** Current UUIDs this node persisted and then replaced. */
  retired: Set<number>;
  uuidCounterMax: number;
  /** Node is (or was, since `retired` was last cleared) taking a peer's data. */
  syncTarget: boolean;
  /** A resync as target finished in the current step: clear `syncTarget` after the check. */
  syncTargetDone: boolean;
}

export class Checkers {
  readonly options: CheckerOptions;
  private readonly tracks: NodeTrack[];
  private sessionNext = 1;
  /** Sessions that were ever active at the same time without a connection: split brains. */
  readonly rivalPairs: [number, number][] = [];
  inspection = true;
  stats = { sessions: 0, fullChecks: 0, splitBrains: 0 };

  constructor(
    private readonly cluster: Cluster,
    options: Partial<CheckerOptions>,
  ) {
    this.options = {
      fullCheckIntervalTicks: 1,
      bitmapCheckLive: cluster.options.protocol === "C",
      ...options,
    };
    this.tracks = cluster.options.nodes.map(() => ({
      canWrite: false,
      session: 0,
      superblockLast: null,
      retired: new Set<number>(),
      uuidCounterMax: 0,
      syncTarget: false,
      syncTargetDone: false,
    }));
  }

  private fail(invariant: string, detail: string): never {
    throw new InvariantViolation(invariant, detail, this.cluster.tickNow);
  }

  private get quorumOn(): boolean {
    return (this.cluster.options.engine.quorum ?? "off") !== "off";
  }

  private get twoPrimaries(): boolean {
    return this.cluster.options.engine.allowTwoPrimaries ?? false;
  }

  sessionOf(node: NodeId): number {
    return this.tracks[node]!.session;
  }

  /** Sessions of other writable nodes not connected to `node` (split-brain rivals). */
  rivalsOf(node: NodeId): number[] {
    const rivals: number[] = [];
    const view = this.cluster.nodes[node]!.view();
    for (let other = 0; other < this.tracks.length; other++) {
      const t = this.tracks[other]!;
      if (other === node || t.session === 0 || !this.cluster.nodes[other]!.up) continue;
      if (view !== null && view.peer(other)?.connection === "Connected") continue;
      rivals.push(t.session);
    }
    return rivals;
  }

  /** Nodes that hold a write `node` just completed (see data_oracle.ts, "Holders"). */
  holdersOf(node: NodeId): number[] {
    const n = this.cluster.nodes[node]!;
    const view = n.view();
    if (view === null) return n.diskful ? [node] : [];
    const holders: number[] = [];
    if (n.diskful && view.disk === "UpToDate") holders.push(node);
    if (this.cluster.options.protocol !== "C") return holders;
    for (const p of view.peers) {
      // Only a peer the write was replicated to: Established (a peer about to resync gets
      // the write through its bitmap instead, and does not hold it yet).
      if (
        p.connection === "Connected" &&
        p.replication === "Established" &&
        p.peerDisk === "UpToDate" &&
        this.onExposedGeneration(node, p.peer) &&
        // A peer that crashed before the issuer noticed kept only what it had flushed; the
        // oracle already gave up its cache when it crashed.
        this.cluster.nodes[p.peer]!.up
      ) {
        holders.push(p.peer);
      }
    }
    return holders;
  }

  // --------------------------------------------------------------------------------------
  // Per step.

  afterStep(node: ClusterNode): void {
    const view = node.view();
    if (view === null) {
      this.inspection = false;
      return;
    }
    if (view.disk === "Inconsistent") this.tracks[node.id]!.syncTarget = true;
    const track = this.tracks[node.id]!;
    if (track.syncTargetDone) {
      track.syncTargetDone = false;
      track.syncTarget = false;
    }
    const canWrite = view.canWrite();
    if (canWrite === track.canWrite) return;
    track.canWrite = canWrite;
    if (!canWrite) {
      track.session = 0;
      return;
    }
    track.session = this.sessionNext++;
    this.stats.sessions++;
    this.checkTwoWriters(node, view);
    const reachable = this.reachableFrom(node.id);
    if (!this.quorumOn) this.cluster.oracle.relaxFloorsNotHeldBy(reachable);
    else if (this.cluster.options.protocol !== "C")
      this.cluster.oracle.relaxFailover(node.id, reachable);
  }

  /**
   * A diskless Primary reads from, and completes writes on, only peers of the generation it
   * exposes; a peer of another generation is Established but holds none of its writes.
   */
  private onExposedGeneration(node: NodeId, peer: NodeId): boolean {
    const view = this.cluster.nodes[node]!.view();
    if (view === null || this.cluster.nodes[node]!.diskful) return true;
    if (view.role !== "Primary" || view.nextUuid === 0) return true;
    const peerView = this.cluster.nodes[peer]!.view();
    return peerView === null || peerView.nextUuid === view.nextUuid;
  }

  /** Nodes whose data `node` can serve: itself (diskful, UpToDate), its Connected UpToDate peers. */
  reachableFrom(node: NodeId): number[] {
    const n = this.cluster.nodes[node]!;
    const view = n.view();
    if (view === null) return n.diskful ? [node] : [];
    const reachable = n.diskful && view.disk === "UpToDate" ? [node] : [];
    for (const p of view.peers) {
      if (p.connection !== "Connected" || p.peerDisk !== "UpToDate") continue;
      if (this.onExposedGeneration(node, p.peer)) reachable.push(p.peer);
    }
    return reachable;
  }

  /**
   * Failover under protocol A or B (any quorum setting): a read on `reader` need not see
   * acked write `writeId` when another node issued it and none of `reachable` (the nodes the
   * reader could serve from at issue) held it at completion. The guarantee DRBD and
   * DESIGN.md ("Write path": "with protocol C, a write that completed is on the stable
   * storage of every replica that was connected and UpToDate") give for A and B is only the
   * issuing node's own copy (that is why `holdersOf` names only the issuer there, and (a)'s
   * per-node check owes it only there); a node that takes over without reaching the issuer
   * may lack what was still in the issuer's send buffer. A read on the issuer itself stays
   * strict: a block device must return its own completed writes, whatever the protocol.
   */
  failoverMayMiss(reader: NodeId, writeId: number, reachable: readonly number[]): boolean {
    if (this.cluster.options.protocol === "C" || writeId === 0) return false;
    const info = this.cluster.oracle.writes.get(writeId);
    if (info === undefined || info.node === reader) return false;
    return !this.cluster.oracle.heldByAny(writeId, reachable);
  }

  /**
   * What a client read issued now on `node` may miss (a), or null when it must see every
   * acked write. With quorum off, DRBD lets a partition leave two Primaries (split brain,
   * see (b)); each serves its own data until an operator resolves it, so a read on one does
   * not see the writes acked by a rival. The rule is the one writes follow: rivals are what
   * `rivalsOf` gives, for the read now (a write issued now would record the same) or for the
   * write at its issue (its `rivals`: the reader's session may have been one of them, even if
   * the writer has since stepped down). As when a node becomes writable
   * (`relaxFloorsNotHeldBy`), only writes no node the reader reaches held are excused (see
   * `DataOracle.rivalWriteNotHeld`). With quorum on, never: a read sees every acked write.
   */
  splitBrainView(node: NodeId): SplitBrainView | null {
    if (this.quorumOn) return null;
    // A peer the reader is (about to be) the resync source of is not one it can read a
    // rival's write from: its data gives way to the reader's (a split-brain victim between
    // the survivor's verdict and its own, when `splitBrainVictim` relaxes the floor), and
    // remote reads go only to Established peers.
    const view = this.cluster.nodes[node]!.view();
    const sourceOf = (peer: NodeId): boolean => {
      const r = view?.peer(peer)?.replication;
      return (
        r === "WFBitMapS" || r === "StartingSyncS" || r === "SyncSource" || r === "PausedSyncS"
      );
    };
    return {
      session: this.sessionOf(node),
      rivals: this.rivalsOf(node),
      reachable: this.reachableFrom(node).filter((n) => n === node || !sourceOf(n)),
    };
  }

  private checkTwoWriters(node: ClusterNode, view: ReplicaView): void {
    for (let other = 0; other < this.tracks.length; other++) {
      const t = this.tracks[other]!;
      if (other === node.id || !t.canWrite || !this.cluster.nodes[other]!.up) continue;
      const otherView = this.cluster.nodes[other]!.view();
      const connected =
        view.peer(other)?.connection === "Connected" &&
        otherView?.peer(node.id)?.connection === "Connected";
      if (this.twoPrimaries && connected) continue;
      if (this.quorumOn || connected) {
        this.fail(
          "b:two-writers",
          `n${node.id} and n${other} both accept writes (${connected ? "connected" : `quorum ${String(this.cluster.options.engine.quorum)}`})`,
        );
      }
      this.rivalPairs.push([t.session, this.tracks[node.id]!.session]);
      this.stats.splitBrains++;
    }
  }

  /**
   * (b) again, every tick: two writable nodes that got connected (or any two, with quorum
   * on) are a violation even if neither changed its role; the transition check in
   * `afterStep` only sees the moment a node becomes writable.
   */
  private checkWritersConnected(): void {
    const nodes = this.cluster.nodes;
    let writers = 0;
    for (let i = 0; i < this.tracks.length; i++)
      if (this.tracks[i]!.canWrite && nodes[i]!.up) writers++;
    if (writers < 2) return;
    for (let a = 0; a < nodes.length; a++) {
      if (!this.tracks[a]!.canWrite || !nodes[a]!.up) continue;
      for (let b = a + 1; b < nodes.length; b++) {
        if (!this.tracks[b]!.canWrite || !nodes[b]!.up) continue;
        const connected =
          nodes[a]!.view()?.peer(b)?.connection === "Connected" &&
          nodes[b]!.view()?.peer(a)?.connection === "Connected";
        if ((connected && !this.twoPrimaries) || (!connected && this.quorumOn)) {
          this.fail(
            "b:two-writers",
            `n${a} and n${b} both accept writes (${connected ? "connected" : "quorum on"})`,
          );
        }
      }
    }
  }

  /**
   * (e) on what is persisted: the uuid counter never decreases, and a current UUID the node
   * left behind never becomes current again, unless the node's previous superblock said its
   * data was inconsistent (it is taking a peer's data, and with it the peer's lineage).
   */
  metadataWrite(node: ClusterNode, record: MetadataRecord): void {
    if (record.kind !== "superblock") return;
    const t = this.tracks[node.id]!;
    const sb = record.superblock;
    if (sb.uuidCounter < t.uuidCounterMax) {
      this.fail(
        "e:generation-backwards",
        `n${node.id} persisted uuid counter ${sb.uuidCounter} < ${t.uuidCounterMax}`,
      );
    }
    t.uuidCounterMax = sb.uuidCounter;
    const last = t.superblockLast;
    if (last !== null && sb.currentUuid !== last.currentUuid) {
      if (!last.consistent) {
        t.retired.clear();
      } else {
        if (t.retired.has(sb.currentUuid)) {
          this.fail(
            "e:generation-backwards",
            `n${node.id} persisted current UUID ${sb.currentUuid} again after leaving it (was ${last.currentUuid}, consistent)`,
          );
        }
        t.retired.add(last.currentUuid);
      }
    }
    t.superblockLast = sb;
  }

  stateChanged(node: ClusterNode, change: StateChange): void {
    const t = this.tracks[node.id]!;
    const target =
      (change.kind === "replication" &&
        (change.replication === "SyncTarget" || change.replication === "PausedSyncT")) ||
      (change.kind === "splitBrain" && change.resolution === "victim") ||
      (change.kind === "disk" && change.disk === "Inconsistent");
    if (target) t.syncTarget = true;
    // Cleared after this step's generation check: the target adopts the source's UUID in the
    // very step that ends the resync.
    if (change.kind === "resyncDone" && !change.source) t.syncTargetDone = true;
  }

  diskAccess(node: ClusterNode, offsetBytes: number, lengthBytes: number): void {
    if (!node.diskful) this.fail("engine-contract", `diskless n${node.id} issued data IO`);
    const end = offsetBytes + lengthBytes;
    if (
      offsetBytes < 0 ||
      end > this.cluster.options.sizeBlocks * blockSizeBytes ||
      lengthBytes <= 0
    ) {
      this.fail(
        "engine-contract",
        `n${node.id} IO outside the volume: ${offsetBytes}+${lengthBytes}`,
      );
    }
  }

  writeCompleted(_node: ClusterNode, _request: ClientRequest): void {}

  nodeCrashed(node: ClusterNode): void {
    const t = this.tracks[node.id]!;
    t.canWrite = false;
    t.session = 0;
  }

  nodeRestarted(node: ClusterNode): void {
    const t = this.tracks[node.id]!;
    // Superblock writes that were lost in the crash never happened: restart from what is
    // durable (its counter and current UUID are legitimately the node's again).
    const durable = node.meta.superblock;
    t.uuidCounterMax = Math.min(t.uuidCounterMax, durable.uuidCounter);
    t.superblockLast = durable;
    t.retired.delete(durable.currentUuid);
    t.syncTarget = !durable.consistent;
  }

  // --------------------------------------------------------------------------------------
  // Per tick.

  afterTick(): void {
    this.checkWritersConnected();
    const interval = this.options.fullCheckIntervalTicks;
    if (!this.inspection || interval === 0 || this.cluster.tickNow % interval !== 0) return;
    this.stats.fullChecks++;
    const ids = this.blockIds();
    this.checkOwed(ids);
    this.checkSplitBrainMerge(ids);
    if (this.options.bitmapCheckLive) this.checkBitmaps(this.blockIds(true));
  }

  /**
   * Write ids found in each block of each live diskful node (null for the others). With
   * `latest`, a block with a disk write already submitted counts as holding that write: it
   * will, unless the node crashes (and then it is no longer live).
   */
  blockIds(latest = false): (Int32Array | null)[] {
    return this.cluster.nodes.map((node) => {
      if (!node.up || !node.diskful) return null;
      const disk = node.disk;
      if (!latest) return disk.tags!;
      let ids: Int32Array | null = null;
      for (const block of disk.pendingBlockIndexes()) {
        ids ??= disk.tags!.slice();
        ids[block] = disk.tagLatest(block);
      }
      return ids ?? disk.tags!;
    });
  }

  private checkOwed(ids: (Int32Array | null)[]): void {
    const oracle = this.cluster.oracle;
    for (const node of this.cluster.nodes) {
      const nodeIds = ids[node.id];
      const view = node.view();
      if (nodeIds === null || nodeIds === undefined || view === null || view.disk !== "UpToDate")
        continue;
      for (let block = 0; block < nodeIds.length; block++) {
        if (!oracle.owes(node.id, block)) continue;
        const why = oracle.check(block, nodeIds[block]!);
        if (why !== null) this.fail("a:acked-write-lost", `n${node.id} (UpToDate): ${why}`);
      }
    }
  }

  /** (c); `quiescent` also checks blocks with open writes (nothing may be in flight then). */
  checkBitmaps(ids: (Int32Array | null)[], quiescent = false): void {
    const nodes = this.cluster.nodes;
    const oracle = this.cluster.oracle;
    for (let a = 0; a < nodes.length; a++) {
      const viewA = nodes[a]!.view();
      if (ids[a] === null || viewA === null || !comparedDisks.has(viewA.disk)) continue;
      for (let b = a + 1; b < nodes.length; b++) {
        const viewB = nodes[b]!.view();
        if (ids[b] === null || viewB === null || !comparedDisks.has(viewB.disk)) continue;
        if (!bitmapsRelate(viewA, viewB)) continue;
        const idsA = ids[a]!;
        const idsB = ids[b]!;
        const bitmapA = viewA.peer(b)?.bitmap;
        const bitmapB = viewB.peer(a)?.bitmap;
        for (let block = 0; block < idsA.length; block++) {
          if (idsA[block] === idsB[block]) continue;
          if (bitmapA?.isSet(block) === true || bitmapB?.isSet(block) === true) continue;
          if (!quiescent && oracle.unsettled(block)) continue;
          // The Primary's word on who holds a write it sent (and so what to mark) is on its way.
          if (!quiescent && (awaitsPeerAck(viewA, block) || awaitsPeerAck(viewB, block))) continue;
          if (this.thirdNodeCovers(ids, a, b, block)) continue;
          this.fail(
            "c:unmarked-difference",
            `block ${block}: n${a} (${viewA.disk}) has w${idsA[block]}, n${b} (${viewB.disk}) has w${idsB[block]}, ` +
              `and neither bitmap marks it (n${a}→n${b}: ${bitmapA?.count() ?? "none"} bits, n${b}→n${a}: ${bitmapB?.count() ?? "none"} bits)`,
          );
        }
      }
    }
  }

  /**
   * A live UpToDate third node C covers a difference between A and B at `block` when it
   * marks the block for both (it will resync both from its data), or marks it for one of
   * them and holds the same data as the other (the marked one will get that data).
   */
  private thirdNodeCovers(
    ids: (Int32Array | null)[],
    a: NodeId,
    b: NodeId,
    block: number,
  ): boolean {
    for (const node of this.cluster.nodes) {
      if (node.id === a || node.id === b || !node.up || !node.diskful) continue;
      const view = node.view();
      const idsC = ids[node.id];
      if (view === null || view.disk !== "UpToDate" || idsC === null || idsC === undefined)
        continue;
      const marksA = view.peer(a)?.bitmap.isSet(block) === true;
      const marksB = view.peer(b)?.bitmap.isSet(block) === true;
      if (marksA && marksB) return true;
      if (marksA && idsC[block] === ids[b]![block]) return true;
      if (marksB && idsC[block] === ids[a]![block]) return true;
    }
    return false;
  }

  private checkSplitBrainMerge(ids: (Int32Array | null)[]): void {
    if (this.rivalPairs.length === 0) return;
    const writes = this.cluster.oracle.writes;
    for (const node of this.cluster.nodes) {
      const nodeIds = ids[node.id];
      const view = node.view();
      const t = this.tracks[node.id]!;
      if (nodeIds === null || nodeIds === undefined || view === null) continue;
      if (view.disk !== "UpToDate" || t.syncTarget) continue;
      // For each session present (with rivals at issue), which rivals its writes had.
      const present = new Map<number, { rivals: Set<number>; block: number; writeId: number }>();
      for (let block = 0; block < nodeIds.length; block++) {
        const id = nodeIds[block]!;
        if (id <= 0) continue;
        const info = writes.get(id);
        if (info === undefined || info.rivals.length === 0) continue;
        let entry = present.get(info.session);
        if (entry === undefined) {
          entry = { rivals: new Set<number>(), block, writeId: id };
          present.set(info.session, entry);
        }
        for (const r of info.rivals) entry.rivals.add(r);
      }
      for (const [session, entry] of present) {
        for (const rival of entry.rivals) {
          const other = present.get(rival);
          if (other === undefined || !other.rivals.has(session)) continue;
          this.fail(
            "f:split-brain-merged",
            `n${node.id} (UpToDate) holds w${entry.writeId} (block ${entry.block}, session ${session}) and ` +
              `w${other.writeId} (block ${other.block}, rival session ${rival}) written on both sides of a split brain`,
          );
        }
      }
    }
  }

  // --------------------------------------------------------------------------------------
  // Convergence (d).

  /** Why the cluster has not converged yet, or null when it has. */
  convergenceBlocker(): string | null {
    const nodes = this.cluster.nodes;
    for (const node of nodes) {
      if (!node.up) return `n${node.id} is down`;
      const view = node.view();
      if (view === null) return `n${node.id} has no inspection view`;
      if (node.diskful && view.disk !== "UpToDate") return `n${node.id} disk is ${view.disk}`;
      for (const p of view.peers) {
        if (p.connection !== "Connected") return `n${node.id}→n${p.peer} is ${p.connection}`;
        if (p.replication !== "Established") return `n${node.id}→n${p.peer} is ${p.replication}`;
        if (node.diskful && nodes[p.peer]!.diskful && p.bitmap.count() > 0) {
          return `n${node.id}→n${p.peer} bitmap has ${p.bitmap.count()} bits`;
        }
      }
      if (node.requests.size > 0)
        return `n${node.id} has ${node.requests.size} open client requests`;
      if (node.disk.pendingCount() > 0) return `n${node.id} has disk IO pending`;
    }
    // Keepalives never stop; anything else in flight means the cluster is still busy.
    const busy = this.cluster.net.inFlightCount((m) => m.type !== "ping" && m.type !== "pingAck");
    if (busy > 0) return `${busy} messages in flight`;
    return null;
  }

  /** (d): every diskful UpToDate node holds the same bytes; also (c) with nothing in flight. */
  checkConverged(): void {
    const nodes = this.cluster.nodes.filter(
      (n) => n.up && n.diskful && n.view()?.disk === "UpToDate",
    );
    for (let i = 1; i < nodes.length; i++) {
      const a = nodes[0]!;
      const b = nodes[i]!;
      const blocks = new Set<number>([
        ...a.disk.visibleBlockIndexes(),
        ...b.disk.visibleBlockIndexes(),
      ]);
      for (const block of blocks) {
        if (!sameBlock(a.disk.peekBlock(block), b.disk.peekBlock(block))) {
          const idA = payloadWriteId(a.disk.peekBlock(block), 0, block);
          const idB = payloadWriteId(b.disk.peekBlock(block), 0, block);
          this.fail(
            "d:diverged",
            `after healing, block ${block} differs: n${a.id} has w${idA}, n${b.id} has w${idB}`,
          );
        }
      }
    }
    this.checkBitmaps(this.blockIds(), true);
    this.checkOwed(this.blockIds());
  }
}

function sameBlock(x: Uint8Array | undefined, y: Uint8Array | undefined): boolean {
  if (x === y) return true;
  const zx = x === undefined || isZero(x);
  const zy = y === undefined || isZero(y);
  if (zx || zy) return zx && zy;
  if (x!.length !== y!.length) return false;
  for (let i = 0; i < x!.length; i++) if (x![i] !== y![i]) return false;
  return true;
}

function isZero(x: Uint8Array): boolean {
  for (let i = 0; i < x.length; i++) if (x[i] !== 0) return false;
  return true;
}

/** Whether a difference between A and B is a bitmap's business (see (c)). */
function bitmapsRelate(a: ReplicaView, b: ReplicaView): boolean {
  // The generation each node's data belongs to (a resync target's is its source's, even
  // before the superblock saying so is durable).
  if (a.nextUuid === b.nextUuid) return true;
  const bA = a.peer(b.nodeId)?.bitmapUuid ?? 0;
  const bB = b.peer(a.nodeId)?.bitmapUuid ?? 0;
  return (bA !== 0 && bA === b.nextUuid) || (bB !== 0 && bB === a.nextUuid);
}

function awaitsPeerAck(view: ReplicaView, block: number): boolean {
  for (const p of view.peers) if (p.awaitsPeerAck(block)) return true;
  return false;
}
