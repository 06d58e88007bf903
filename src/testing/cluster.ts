//! A whole mirra resource in one process: N replicas (from src/engine), their simulated disks,
//! a simulated network and clients, all driven by one seeded Prng, one tick at a time.
//!
//! Fault model: everything PacketSimulator and DiskSim inject (see their headers), plus node
//! crashes at any tick (the replica object is dropped; its disk loses, applies or tears what
//! was not durable; on restart the engine's restore path gets exactly the metadata records
//! that survived), and operator actions (promote, demote, connect, disconnect, invalidate).
//!
//! The cluster is the simulator's I/O shell. It keeps the engine's contract (types.ts):
//! - events reach a replica through one FIFO inbox, never re-entrantly from inside `step`;
//! - a message of an older connection generation is dropped here, in the shell, as the real
//!   TCP transport would (unless `staleMessagesToEngine` asks to hand them to the engine);
//! - a link comes up only while both ends asked for it (connectPeer, undone by
//!   disconnectPeer with reconnect=false) and the network allows it;
//! - metadata writes are ordered and become durable in order (DiskSim's metadata log).
//!
//! After every tick the checkers (src/testing/checkers) look at every node; the first
//! violation throws an `InvariantViolation` that names the invariant.

import { assert } from "../stdx/assert.js";
import { Prng } from "../stdx/prng.js";
import {
  applyMetadataRecord,
  clonePersistedMeta,
  createPersistedMeta,
  createReplica,
  type AdminCommand,
  type Effect,
  type Event,
  type FaultInjection,
  type IoErrorCode,
  type MetadataRecord,
  type NodeConfig,
  type NodeId,
  type PeerMessage,
  type PersistedMeta,
  type Protocol,
  type Replica,
  type ReplicaView,
  type ResourceConfig,
  type ResourceOptions,
} from "../engine/mod.js";
import { DiskSim, diskSimOptionsQuiet, type DiskResult, type DiskSimOptions } from "./disk_sim.js";
import {
  PacketSimulator,
  packetSimulatorOptionsQuiet,
  type PacketSimulatorOptions,
} from "./packet_simulator.js";
import { blockSizeBytes, payloadBlockTag, payloadEncode, payloadWriteId } from "./payload.js";
import { DataOracle, type WriteInfo } from "./checkers/data_oracle.js";
import {
  Checkers,
  InvariantViolation,
  type CheckerOptions,
  type SplitBrainView,
} from "./checkers/checkers.js";
import { describeEffect, describeEvent } from "./trace.js";

export { InvariantViolation };

export interface ClusterOptions {
  seed: number;
  nodes: readonly NodeConfig[];
  sizeBlocks: number;
  protocol: Protocol;
  engine: Partial<ResourceOptions>;
  faultInjection?: FaultInjection;
  network: PacketSimulatorOptions;
  /** Disk options for every node (sizeBytes is taken from sizeBlocks). */
  disk: Omit<DiskSimOptions, "sizeBytes">;
  /** Per-node changes to `disk` (e.g. errors on one disk only: the fault atlas). */
  diskOverrides?: Record<number, Partial<Omit<DiskSimOptions, "sizeBytes">>>;
  /** Hand messages of older connection generations to the engine instead of dropping them. */
  staleMessagesToEngine?: boolean;
  /** Called with one readable line per event and effect; null for silence. */
  trace?: ((line: string) => void) | null;
  checkers?: Partial<CheckerOptions>;
}

export type RequestKind = "read" | "write" | "flush";

/** A client request and, once `done`, its outcome. */
export interface ClientRequest {
  readonly requestId: number;
  readonly node: NodeId;
  readonly kind: RequestKind;
  readonly firstBlock: number;
  readonly blockCount: number;
  readonly issueTick: number;
  /** The oracle's record (writes only). */
  readonly write: WriteInfo | null;
  /** Floors of the blocks read, at issue (reads only). */
  readonly floors: number[] | null;
  /** Split-brain rivals and reachable nodes of the reader, at issue (reads only; see
   *  `Checkers.splitBrainView`); null: the read must see every acked write. */
  readonly splitBrain: SplitBrainView | null;
  /** Nodes the reader could serve from, at issue (reads only; `Checkers.reachableFrom`). */
  readonly reachable: number[] | null;
  /** Ack sequence a flush covers (flushes and FUA writes). */
  readonly flushCovers: number;
  done: boolean;
  ok: boolean;
  error: IoErrorCode | undefined;
  completeTick: number;
  /** Write ids found in each block read (reads only). */
  readIds: number[] | null;
}

export interface AdminRequest {
  readonly commandId: number;
  readonly node: NodeId;
  readonly command: AdminCommand;
  done: boolean;
  ok: boolean;
  error: string | undefined;
}

export interface ClusterStats {
  ticks: number;
  steps: number;
  requestsCompleted: number;
  writesCompleted: number;
  readsCompleted: number;
  requestsFailed: number;
  staleDropped: number;
  crashes: number;
  restarts: number;
  /** Peer messages sent, by type. */
  messages: Map<string, number>;
  /** Blocks sent as resync data (resyncReply) plus blocks found in sync by checksum (inSync). */
  resyncBlocks: number;
}

interface InboxItem {
  node: NodeId;
  event: Event;
}

/** Disk tokens: data IO uses the engine's ioId, metadata IO uses -1 - ioId. */
function metadataToken(ioId: number): number {
  return -1 - ioId;
}

/**
 * How to inspect a replica: `replica.view()` if the engine has it, else the replica itself
 * when it implements ReplicaView (canWrite, peers, peer(id)), else null (no inspection).
 */
export function replicaViewFn(replica: Replica): (() => ReplicaView) | null {
  const candidate = replica as unknown as {
    view?: () => ReplicaView;
    canWrite?: unknown;
    peer?: unknown;
  };
  if (typeof candidate.view === "function") return () => candidate.view!.call(replica);
  if (typeof candidate.canWrite === "function" && typeof candidate.peer === "function") {
    const view = replica as unknown as ReplicaView;
    return () => view;
  }
  return null;
}

export class ClusterNode {
  replica: Replica | null = null;
  readonly disk: DiskSim<number, MetadataRecord>;
  /** What the metadata device holds: every durable record folded in. */
  meta: PersistedMeta;
  up = false;
  /** Peers this node asked to be connected to (connectPeer without a later disconnect). */
  readonly wanted = new Set<NodeId>();
  readonly requests = new Map<number, ClientRequest>();
  restarts = 0;
  private viewFn: (() => ReplicaView) | null = null;

  constructor(
    readonly cluster: Cluster,
    readonly config: NodeConfig,
    diskOptions: DiskSimOptions,
    prng: Prng,
  ) {
    this.meta = createPersistedMeta(cluster.options.sizeBlocks, config.disk === "diskful");
    this.disk = new DiskSim<number, MetadataRecord>(
      diskOptions,
      prng,
      {
        diskCompleted: (token, result) => cluster.diskCompleted(this.id, token, result),
        metadataDurable: (record) => applyMetadataRecord(this.meta, record),
      },
      payloadBlockTag,
    );
  }

  get id(): NodeId {
    return this.config.id;
  }

  get diskful(): boolean {
    return this.config.disk === "diskful";
  }

  /** The engine's inspection view, or null while crashed (or if the engine has none). */
  view(): ReplicaView | null {
    return this.viewFn === null ? null : this.viewFn();
  }

  attach(replica: Replica): void {
    this.replica = replica;
    this.viewFn = replicaViewFn(replica);
  }

  detach(): void {
    this.replica = null;
    this.viewFn = null;
  }

  crash(): void {
    this.cluster.crash(this.id);
  }

  restart(): void {
    this.cluster.restart(this.id);
  }
}

export class Cluster {
  readonly options: ClusterOptions;
  readonly config: ResourceConfig;
  readonly prng: Prng;
  readonly net: PacketSimulator<PeerMessage>;
  readonly nodes: ClusterNode[] = [];
  readonly oracle: DataOracle;
  readonly checkers: Checkers;
  readonly requests = new Map<number, ClientRequest>();
  readonly admins = new Map<number, AdminRequest>();
  tickNow = 0;
  readonly stats: ClusterStats = {
    ticks: 0,
    steps: 0,
    requestsCompleted: 0,
    writesCompleted: 0,
    readsCompleted: 0,
    requestsFailed: 0,
    staleDropped: 0,
    crashes: 0,
    restarts: 0,
    messages: new Map<string, number>(),
    resyncBlocks: 0,
  };
  trace: ((line: string) => void) | null;
  /** Called for every peer message a node sends (tests watch the protocol with it). */
  onSend: ((from: NodeId, to: NodeId, message: PeerMessage) => void) | null = null;
  /** Every split-brain state change, in order. */
  readonly splitBrains: { tick: number; node: NodeId; peer: NodeId; resolution: string }[] = [];
  /** Every online-verify result, in order. */
  readonly verifyResults: { tick: number; node: NodeId; peer: NodeId; outOfSyncBlocks: number }[] =
    [];
  private inbox: InboxItem[] = [];
  private inboxHead = 0;
  private requestIdNext = 1;
  private commandIdNext = 1;
  private draining = false;

  constructor(options: ClusterOptions) {
    const ids = options.nodes.map((n) => n.id);
    assert(options.nodes.length >= 2 && options.nodes.length <= 32, "2..32 nodes");
    assert(
      ids.every((id, i) => id === i),
      "node ids are 0..N-1 in order",
    );
    this.options = options;
    this.trace = options.trace ?? null;
    this.prng = new Prng(options.seed);
    this.config = {
      name: "r0",
      nodes: options.nodes,
      sizeBlocks: options.sizeBlocks,
      protocol: options.protocol,
      options: options.engine,
      ...(options.faultInjection === undefined ? {} : { faultInjection: options.faultInjection }),
    };
    this.net = new PacketSimulator<PeerMessage>(options.network, new Prng(this.prng.nextU32()), {
      deliver: (target, source, message, generation) =>
        this.netDeliver(target, source, message, generation),
      connectionUp: (node, peer) => this.push(node, { type: "peerConnected", peer }),
      connectionDown: (node, peer) => this.push(node, { type: "peerDisconnected", peer }),
      connectAllowed: (node, peer) => this.nodes[node]!.up && this.nodes[node]!.wanted.has(peer),
    });
    for (const config of options.nodes) {
      const diskOptions: DiskSimOptions = {
        ...options.disk,
        sizeBytes: options.sizeBlocks * blockSizeBytes,
      };
      this.nodes.push(new ClusterNode(this, config, diskOptions, new Prng(this.prng.nextU32())));
    }
    this.oracle = new DataOracle(options.sizeBlocks);
    this.checkers = new Checkers(this, options.checkers ?? {});
    for (const node of this.nodes) this.boot(node, false);
    this.drain();
  }

  node(id: NodeId): ClusterNode {
    const node = this.nodes[id];
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  private log(line: string): void {
    if (this.trace !== null) this.trace(`${String(this.tickNow).padStart(6)} ${line}`);
  }

  private boot(node: ClusterNode, restore: boolean): void {
    const replica = restore
      ? createReplica(this.config, node.id, clonePersistedMeta(node.meta))
      : createReplica(this.config, node.id);
    node.attach(replica);
    node.up = true;
    this.push(node.id, { type: "start" });
  }

  // --------------------------------------------------------------------------------------
  // The event loop.

  private push(node: NodeId, event: Event): void {
    this.inbox.push({ node, event });
  }

  /** Steps replicas until the inbox is empty. */
  drain(): void {
    assert(!this.draining, "drain is not re-entrant");
    this.draining = true;
    try {
      while (this.inboxHead < this.inbox.length) {
        const item = this.inbox[this.inboxHead++]!;
        this.stepNode(item.node, item.event);
      }
      this.inbox = [];
      this.inboxHead = 0;
    } finally {
      this.draining = false;
    }
  }

  private stepNode(id: NodeId, event: Event): void {
    const node = this.nodes[id]!;
    if (!node.up || node.replica === null) return;
    if (this.trace !== null && event.type !== "tick") this.log(`n${id} <- ${describeEvent(event)}`);
    const effects = node.replica.step(event);
    this.stats.steps++;
    for (let i = 0; i < effects.length; i++) this.execute(node, effects[i]!);
    this.checkers.afterStep(node);
  }

  /** One tick: network, disks, timers, then the checkers. */
  tick(): void {
    this.tickNow++;
    this.stats.ticks++;
    this.net.tick();
    this.drain();
    for (const node of this.nodes) node.disk.tick();
    this.drain();
    for (const node of this.nodes) if (node.up) this.push(node.id, { type: "tick" });
    this.drain();
    this.checkers.afterTick();
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /** Ticks until `predicate` holds; returns false if it did not within `ticksMax`. */
  runUntil(predicate: () => boolean, ticksMax: number): boolean {
    for (let i = 0; i < ticksMax; i++) {
      if (predicate()) return true;
      this.tick();
    }
    return predicate();
  }

  // --------------------------------------------------------------------------------------
  // Effects.

  private execute(node: ClusterNode, effect: Effect): void {
    if (this.trace !== null && effect.type !== "send")
      this.log(`n${node.id} -> ${describeEffect(effect)}`);
    switch (effect.type) {
      case "diskRead":
        this.checkers.diskAccess(node, effect.offsetBytes, effect.lengthBytes);
        node.disk.submitRead(effect.ioId, effect.offsetBytes, effect.lengthBytes);
        return;
      case "diskWrite":
        this.checkers.diskAccess(node, effect.offsetBytes, effect.data.length);
        node.disk.submitWrite(effect.ioId, effect.offsetBytes, effect.data);
        return;
      case "diskFlush":
        node.disk.submitFlush(effect.ioId);
        return;
      case "metadataWrite":
        assert(effect.ioId >= 0, "ioId >= 0");
        this.checkers.metadataWrite(node, effect.record);
        node.disk.submitMetadataWrite(metadataToken(effect.ioId), effect.record);
        return;
      case "send":
        if (this.trace !== null) this.log(`n${node.id} -> n${effect.to} ${describeEffect(effect)}`);
        this.countMessage(effect.message);
        if (this.onSend !== null) this.onSend(node.id, effect.to, effect.message);
        this.net.send(node.id, effect.to, effect.message);
        return;
      case "connectPeer":
        node.wanted.add(effect.peer);
        return;
      case "disconnectPeer":
        if (!effect.reconnect) node.wanted.delete(effect.peer);
        this.net.disconnect(node.id, effect.peer);
        return;
      case "completeRequest":
        this.requestCompleted(node, effect.requestId, effect.ok, effect.error, effect.data);
        return;
      case "adminCompleted": {
        const admin = this.admins.get(effect.commandId);
        assert(admin !== undefined && !admin.done, `unknown admin command ${effect.commandId}`);
        admin.done = true;
        admin.ok = effect.ok;
        admin.error = effect.error;
        return;
      }
      case "dataDone":
        // The engine says it is done with this data: a real shell reuses the buffer for the
        // next frame, so overwrite it. Any later use of it shows up as corrupt data.
        effect.data.fill(0xdd);
        return;
      case "stateChanged":
        if (effect.change.kind === "splitBrain") {
          const { peer, resolution } = effect.change;
          this.splitBrains.push({ tick: this.tickNow, node: node.id, peer, resolution });
          if (resolution === "victim") this.oracle.splitBrainVictim(node.id, peer);
        }
        if (effect.change.kind === "verifyDone") {
          const { peer, outOfSyncBlocks } = effect.change;
          this.verifyResults.push({ tick: this.tickNow, node: node.id, peer, outOfSyncBlocks });
        }
        this.checkers.stateChanged(node, effect.change);
        return;
    }
  }

  private countMessage(message: PeerMessage): void {
    const m = this.stats.messages;
    m.set(message.type, (m.get(message.type) ?? 0) + 1);
    if (message.type === "resyncReply" && message.ok && message.data !== undefined) {
      this.stats.resyncBlocks += message.data.length / blockSizeBytes;
    } else if (message.type === "inSync") {
      this.stats.resyncBlocks += message.blockCount;
    }
  }

  private netDeliver(
    target: NodeId,
    source: NodeId,
    message: PeerMessage,
    generation: number,
  ): void {
    if (generation !== this.net.generation(source, target) && !this.options.staleMessagesToEngine) {
      this.stats.staleDropped++;
      return;
    }
    this.push(target, { type: "peerMessage", from: source, message });
  }

  diskCompleted(id: NodeId, token: number, result: DiskResult): void {
    if (token < 0) {
      this.push(id, { type: "metadataCompleted", ioId: -1 - token, ok: result.ok });
      return;
    }
    if (result.ok) {
      this.push(
        id,
        result.data === undefined
          ? { type: "diskCompleted", ioId: token, ok: true }
          : { type: "diskCompleted", ioId: token, ok: true, data: result.data },
      );
    } else {
      this.push(id, { type: "diskCompleted", ioId: token, ok: false, error: result.error });
    }
  }

  // --------------------------------------------------------------------------------------
  // Clients.

  private newRequest(
    node: NodeId,
    kind: RequestKind,
    firstBlock: number,
    blockCount: number,
    write: WriteInfo | null,
    flushCovers: number,
  ): ClientRequest {
    const request: ClientRequest = {
      requestId: this.requestIdNext++,
      node,
      kind,
      firstBlock,
      blockCount,
      issueTick: this.tickNow,
      write,
      floors: null,
      splitBrain: null,
      reachable: null,
      flushCovers,
      done: false,
      ok: false,
      error: undefined,
      completeTick: 0,
      readIds: null,
    };
    this.requests.set(request.requestId, request);
    this.nodes[node]!.requests.set(request.requestId, request);
    return request;
  }

  /** Submits a write of fresh, tagged data; the request completes later. */
  write(nodeId: NodeId, firstBlock: number, blockCount: number, fua = false): ClientRequest {
    assert(
      firstBlock >= 0 && blockCount >= 1 && firstBlock + blockCount <= this.options.sizeBlocks,
      "write range",
    );
    const node = this.node(nodeId);
    assert(node.up, `write: node ${nodeId} is down`);
    const session = this.checkers.sessionOf(nodeId);
    const info = this.oracle.writeIssued(
      nodeId,
      firstBlock,
      blockCount,
      fua,
      session,
      this.checkers.rivalsOf(nodeId),
      this.tickNow,
    );
    const data = payloadEncode(info.writeId, firstBlock, blockCount, nodeId);
    const request = this.newRequest(nodeId, "write", firstBlock, blockCount, info, 0);
    this.log(
      `client -> n${nodeId} write #${request.requestId} w${info.writeId} blocks ${firstBlock}+${blockCount}${fua ? " fua" : ""}`,
    );
    this.push(nodeId, {
      type: "clientWrite",
      requestId: request.requestId,
      offsetBytes: firstBlock * blockSizeBytes,
      data,
      fua,
    });
    this.drain();
    return request;
  }

  read(nodeId: NodeId, firstBlock: number, blockCount: number): ClientRequest {
    assert(
      firstBlock >= 0 && blockCount >= 1 && firstBlock + blockCount <= this.options.sizeBlocks,
      "read range",
    );
    assert(this.node(nodeId).up, `read: node ${nodeId} is down`);
    const request = this.newRequest(nodeId, "read", firstBlock, blockCount, null, 0);
    const floors: number[] = [];
    for (let b = firstBlock; b < firstBlock + blockCount; b++) floors.push(this.oracle.floorOf(b));
    (request as { floors: number[] | null }).floors = floors;
    (request as { splitBrain: ClientRequest["splitBrain"] }).splitBrain =
      this.checkers.splitBrainView(nodeId);
    (request as { reachable: number[] | null }).reachable = this.checkers.reachableFrom(nodeId);
    this.log(`client -> n${nodeId} read #${request.requestId} blocks ${firstBlock}+${blockCount}`);
    this.push(nodeId, {
      type: "clientRead",
      requestId: request.requestId,
      offsetBytes: firstBlock * blockSizeBytes,
      lengthBytes: blockCount * blockSizeBytes,
    });
    this.drain();
    return request;
  }

  flush(nodeId: NodeId): ClientRequest {
    assert(this.node(nodeId).up, `flush: node ${nodeId} is down`);
    const request = this.newRequest(nodeId, "flush", 0, 0, null, this.oracle.flushIssued());
    this.log(`client -> n${nodeId} flush #${request.requestId}`);
    this.push(nodeId, { type: "clientFlush", requestId: request.requestId });
    this.drain();
    return request;
  }

  admin(nodeId: NodeId, command: AdminCommand): AdminRequest {
    assert(this.node(nodeId).up, `admin: node ${nodeId} is down`);
    const admin: AdminRequest = {
      commandId: this.commandIdNext++,
      node: nodeId,
      command,
      done: false,
      ok: false,
      error: undefined,
    };
    this.admins.set(admin.commandId, admin);
    this.log(`admin -> n${nodeId} ${JSON.stringify(command)}`);
    this.push(nodeId, { type: "admin", commandId: admin.commandId, command });
    this.drain();
    return admin;
  }

  private requestCompleted(
    node: ClusterNode,
    requestId: number,
    ok: boolean,
    error: IoErrorCode | undefined,
    data: Uint8Array | undefined,
  ): void {
    const request = node.requests.get(requestId);
    assert(request !== undefined, `n${node.id} completed unknown request ${requestId}`);
    assert(!request.done, `request ${requestId} completed twice`);
    node.requests.delete(requestId);
    request.done = true;
    request.ok = ok;
    request.error = error;
    request.completeTick = this.tickNow;
    this.stats.requestsCompleted++;
    if (!ok) this.stats.requestsFailed++;
    this.log(`client <- n${node.id} #${requestId} ${request.kind} ${ok ? "ok" : `error ${error}`}`);
    switch (request.kind) {
      case "write":
        this.stats.writesCompleted++;
        this.oracle.writeCompleted(request.write!, ok, ok ? this.checkers.holdersOf(node.id) : []);
        this.checkers.writeCompleted(node, request);
        return;
      case "read":
        this.stats.readsCompleted++;
        if (ok) this.readCompleted(request, data);
        return;
      case "flush":
        this.oracle.flushCompleted(request.flushCovers, ok);
        return;
    }
  }

  private readCompleted(request: ClientRequest, data: Uint8Array | undefined): void {
    assert(
      data !== undefined && data.length === request.blockCount * blockSizeBytes,
      `read #${request.requestId} returned ${data?.length} bytes`,
    );
    const ids: number[] = [];
    for (let i = 0; i < request.blockCount; i++) {
      const block = request.firstBlock + i;
      const found = payloadWriteId(data, i * blockSizeBytes, block);
      ids.push(found);
      let floor = Math.min(request.floors![i]!, this.oracle.floorOf(block));
      const sb = request.splitBrain;
      // A rival Primary's write the reader never held: any write to the block may show
      // (the loosening `relaxFloorsNotHeldBy` applies to the whole block, too).
      if (sb !== null && this.oracle.rivalWriteNotHeld(floor, sb)) floor = 0;
      else if (this.checkers.failoverMayMiss(request.node, floor, request.reachable!)) floor = 0;
      const why = this.oracle.check(block, found, floor);
      if (why !== null) {
        throw new InvariantViolation(
          "a:acked-write-lost",
          `client read #${request.requestId} on n${request.node}: ${why}`,
          this.tickNow,
        );
      }
    }
    request.readIds = ids;
  }

  // --------------------------------------------------------------------------------------
  // Faults.

  /** Power-fails a node: its replica is gone, its disk keeps only what was durable. */
  crash(id: NodeId): void {
    const node = this.node(id);
    assert(node.up, `crash: node ${id} is already down`);
    const outcomes = node.disk.crash();
    this.log(`n${id} CRASH (unflushed writes: ${outcomes.join(",") || "none"})`);
    node.up = false;
    node.detach();
    node.wanted.clear();
    this.net.crashNode(id);
    for (const request of node.requests.values()) {
      if (request.write !== null) this.oracle.writeIndeterminate(request.write);
    }
    node.requests.clear();
    for (const admin of this.admins.values())
      if (admin.node === id) this.admins.delete(admin.commandId);
    this.stats.crashes++;
    if (node.diskful) this.oracle.nodeCrashed(id);
    this.checkers.nodeCrashed(node);
  }

  /** Restarts a crashed node through the engine's restore path. */
  restart(id: NodeId): void {
    const node = this.node(id);
    assert(!node.up, `restart: node ${id} is up`);
    this.log(`n${id} RESTART`);
    node.restarts++;
    this.stats.restarts++;
    this.net.restartNode(id);
    this.boot(node, true);
    this.checkers.nodeRestarted(node);
    this.drain();
  }

  /** Turns every random fault off and heals the network (liveness mode). */
  heal(): void {
    this.log("HEAL: faults off, network healed");
    this.net.faultsEnabled = false;
    this.net.heal();
    for (const node of this.nodes) node.disk.faultsEnabled = false;
  }

  /** Live nodes' views, for tests; null entries for crashed nodes. */
  views(): (ReplicaView | null)[] {
    return this.nodes.map((n) => n.view());
  }
}

/** Node spec for tests: one letter per node, "D" diskful, "d" diskless (e.g. "DDd"). */
export function nodesFromSpec(spec: string): NodeConfig[] {
  return [...spec].map((ch, id) => {
    assert(ch === "D" || ch === "d", `node spec letter ${ch}`);
    return { id, name: `node${id}`, disk: ch === "D" ? "diskful" : "diskless" };
  });
}

export interface TestClusterOptions {
  /** One letter per node: "D" diskful, "d" diskless. */
  nodes: string;
  seed?: number;
  sizeBlocks?: number;
  protocol?: Protocol;
  engine?: Partial<ResourceOptions>;
  faultInjection?: FaultInjection;
  network?: Partial<PacketSimulatorOptions>;
  disk?: Partial<Omit<DiskSimOptions, "sizeBytes">>;
  trace?: ((line: string) => void) | null;
  checkers?: Partial<CheckerOptions>;
}

/** A cluster with a quiet network and quick disks, for scenario tests. */
export function createTestCluster(o: TestClusterOptions): Cluster {
  const nodes = nodesFromSpec(o.nodes);
  return new Cluster({
    seed: o.seed ?? 1,
    nodes,
    sizeBlocks: o.sizeBlocks ?? 64,
    protocol: o.protocol ?? "C",
    engine: {
      alExtents: 7,
      alExtentBlocks: 4,
      pingIntTicks: 10,
      pingTimeoutTicks: 5,
      timeoutTicks: 20,
      ...o.engine,
    },
    ...(o.faultInjection === undefined ? {} : { faultInjection: o.faultInjection }),
    network: { ...packetSimulatorOptionsQuiet(nodes.length), ...o.network },
    disk: { ...diskSimOptionsQuietNoSize(), ...o.disk },
    trace: o.trace ?? null,
    checkers: o.checkers ?? {},
  });
}

function diskSimOptionsQuietNoSize(): Omit<DiskSimOptions, "sizeBytes"> {
  const { sizeBytes: _size, ...rest } = diskSimOptionsQuiet(blockSizeBytes);
  return rest;
}
