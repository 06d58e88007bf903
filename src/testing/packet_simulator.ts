//! A simulated network of TCP-like peer connections between N nodes, driven by one seeded Prng.
//!
//! Fault model, layer by layer (what each layer of mirra may see):
//!
//! - **Within one connection generation** delivery is FIFO and exactly-once, as TCP gives it:
//!   no loss, no duplicate, no reordering. Each message waits `oneWayDelayTicksMin` plus an
//!   exponential delay with mean `oneWayDelayTicksMean` (cut at `oneWayDelayTicksMax`), but
//!   never overtakes the message before it on the same path.
//! - **Connection resets** (random, or a path blocked by a partition for longer than
//!   `connectionTimeoutTicks`, or `disconnect()` asked by a node, or a node crash) lose every
//!   message in flight on that connection, and both ends get `connectionDown`. While both nodes
//!   are up and the paths both ways are open, a new generation comes up after a reconnect delay
//!   and both ends get `connectionUp` with the new generation number. Messages sent by a
//!   crashed node before it crashed still arrive (they were on the wire); the peer's
//!   `connectionDown` comes right after the last of them.
//! - **Stale and replayed messages** (`staleDeliveryProbability`, `replayProbability`) model a
//!   buggy or buffering shell: a message of an earlier generation is delivered after a newer
//!   generation came up, so it arrives late, out of order with the new generation, and possibly
//!   a second time. They carry their old generation number. Real TCP never does this, so the I/O
//!   shell (the transport layer) is the layer that must drop them: the cluster filters them out
//!   by generation unless it is told to pass them to the engine (then the engine must cope).
//! - **Across connections** there is no ordering at all: messages to different peers race.
//! - **Partitions** block paths (symmetric: both ways; asymmetric: one way). Messages on a
//!   blocked path are held, as TCP retransmits them; if the block outlives
//!   `connectionTimeoutTicks` the connection resets. No new connection comes up across a
//!   partition in either direction, because a handshake needs both.
//! - **Clogs** slow one path for a while: its messages are held, in order, until the clog
//!   clears. A clog never resets a connection by itself (a peer's ping timeout may).

import { assert } from "../stdx/assert.js";
import { Prng } from "../stdx/prng.js";

export type PartitionMode = "none" | "uniformSize" | "uniformPartition" | "isolateSingle";
export type PartitionSymmetry = "symmetric" | "asymmetric";

/** The fault model as data. Probabilities are per tick unless said otherwise. */
export interface PacketSimulatorOptions {
  /** Number of nodes, node ids 0..nodeCount-1. Between 2 and 32. */
  nodeCount: number;
  /** Smallest one-way delay of a message, ticks. Must be >= 1. */
  oneWayDelayTicksMin: number;
  /** Mean of the exponential delay added to the minimum, ticks. */
  oneWayDelayTicksMean: number;
  /**
   * Largest one-way delay of a message, ticks (the exponential tail is cut here, so that a
   * peer's ping timeout can be set above it). Must be >= oneWayDelayTicksMin.
   */
  oneWayDelayTicksMax: number;
  /** Chance per tick that a connection that is up resets on its own. */
  connectionResetProbability: number;
  /** Smallest delay between a connection going down and the next one coming up, ticks. */
  reconnectDelayTicksMin: number;
  /** Mean of the exponential delay added to `reconnectDelayTicksMin`, ticks. */
  reconnectDelayTicksMean: number;
  /** A path blocked by a partition for this long resets its connection, ticks. Must be >= 1. */
  connectionTimeoutTicks: number;
  /** How the automatic partitions choose their sides; "none" disables them. */
  partitionMode: PartitionMode;
  /** Whether an automatic partition blocks both directions or only one. */
  partitionSymmetry: PartitionSymmetry;
  /** Chance per tick that the network partitions, when it is not partitioned. */
  partitionProbability: number;
  /** Chance per tick that a partition heals, once it is older than its minimum. */
  unpartitionProbability: number;
  /** A partition lasts at least this long, ticks. */
  partitionStabilityTicksMin: number;
  /** After a heal, no automatic partition for at least this long, ticks. */
  unpartitionStabilityTicksMin: number;
  /** Chance per tick per directed path that it clogs. */
  pathClogProbability: number;
  /** Mean duration of a clog (exponential), ticks. */
  pathClogDurationTicksMean: number;
  /** On a reset, chance for each in-flight message to survive as a stale message. */
  staleDeliveryProbability: number;
  /** Chance that a delivered message is kept and replayed once after the next reconnect. */
  replayProbability: number;
}

/** A network with no faults at all, and short delays: the base for scenario tests. */
export function packetSimulatorOptionsQuiet(nodeCount: number): PacketSimulatorOptions {
  return {
    nodeCount,
    oneWayDelayTicksMin: 1,
    oneWayDelayTicksMean: 1,
    oneWayDelayTicksMax: 8,
    connectionResetProbability: 0,
    reconnectDelayTicksMin: 5,
    reconnectDelayTicksMean: 5,
    connectionTimeoutTicks: 40,
    partitionMode: "none",
    partitionSymmetry: "symmetric",
    partitionProbability: 0,
    unpartitionProbability: 0,
    partitionStabilityTicksMin: 0,
    unpartitionStabilityTicksMin: 0,
    pathClogProbability: 0,
    pathClogDurationTicksMean: 0,
    staleDeliveryProbability: 0,
    replayProbability: 0,
  };
}

/** What the network calls back into; the cluster implements it. */
export interface PacketSimulatorHost<M> {
  /** `message` from `source` arrives at `target`; `generation` names its connection. */
  deliver(target: number, source: number, message: M, generation: number): void;
  connectionUp(node: number, peer: number, generation: number): void;
  connectionDown(node: number, peer: number, generation: number): void;
  /** Whether `node` wants a connection to `peer` (false when it is StandAlone). */
  connectAllowed(node: number, peer: number): boolean;
}

interface Packet<M> {
  deliverTick: number;
  source: number;
  target: number;
  generation: number;
  message: M;
}

/** One direction of a connection: a FIFO with an index head, compacted now and then. */
class PathQueue<M> {
  items: Packet<M>[] = [];
  head = 0;
  clogUntilTick = 0;
  blockedSinceTick = -1;

  get length(): number {
    return this.items.length - this.head;
  }
  peek(): Packet<M> | undefined {
    return this.items[this.head];
  }
  lastDeliverTick(): number {
    return this.length === 0 ? 0 : this.items[this.items.length - 1]!.deliverTick;
  }
  push(p: Packet<M>): void {
    this.items.push(p);
  }
  shift(): Packet<M> {
    const p = this.items[this.head]!;
    this.head++;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return p;
  }
  drain(): Packet<M>[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

type ConnectionState = "up" | "down" | "closing";

class Connection<M> {
  state: ConnectionState = "down";
  generation = 0;
  reconnectAtTick = 0;
  /** For "closing" (a crashed end): when the survivor learns of it. */
  downAtTick = 0;
  /** Index 0 is path low→high, index 1 is high→low. */
  readonly paths: [PathQueue<M>, PathQueue<M>] = [new PathQueue(), new PathQueue()];
  /** Stale and replayed packets waiting for the next generation to come up. */
  stale: Packet<M>[] = [];
  constructor(
    readonly low: number,
    readonly high: number,
  ) {}
}

export interface PacketSimulatorStats {
  sent: number;
  delivered: number;
  droppedNotConnected: number;
  lostInFlight: number;
  staleDelivered: number;
  resets: number;
  connects: number;
  partitions: number;
}

export class PacketSimulator<M> {
  readonly options: PacketSimulatorOptions;
  tickNow = 0;
  private readonly prng: Prng;
  private readonly connections: Connection<M>[] = [];
  private readonly nodeUp: boolean[];
  /** blocked[source][target]: the path source→target is partitioned. */
  private readonly blocked: boolean[][];
  private partitioned = false;
  private partitionChangeTick = 0;
  readonly stats: PacketSimulatorStats = {
    sent: 0,
    delivered: 0,
    droppedNotConnected: 0,
    lostInFlight: 0,
    staleDelivered: 0,
    resets: 0,
    connects: 0,
    partitions: 0,
  };
  /** When false, no random faults are drawn (liveness mode); manual faults still work. */
  faultsEnabled = true;

  constructor(
    options: PacketSimulatorOptions,
    prng: Prng,
    private readonly host: PacketSimulatorHost<M>,
  ) {
    assert(options.nodeCount >= 2 && options.nodeCount <= 32, "nodeCount must be 2..32");
    assert(options.oneWayDelayTicksMin >= 1, "oneWayDelayTicksMin must be >= 1");
    assert(options.oneWayDelayTicksMax >= options.oneWayDelayTicksMin, "delay max >= min");
    assert(options.connectionTimeoutTicks >= 1, "connectionTimeoutTicks must be >= 1");
    this.options = options;
    this.prng = prng;
    const n = options.nodeCount;
    this.nodeUp = new Array<boolean>(n).fill(true);
    this.blocked = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
    for (let low = 0; low < n; low++) {
      for (let high = low + 1; high < n; high++) {
        const c = new Connection<M>(low, high);
        c.reconnectAtTick = 1;
        this.connections.push(c);
      }
    }
  }

  private connection(a: number, b: number): Connection<M> {
    assert(a !== b, "no connection to self");
    const low = Math.min(a, b);
    const high = Math.max(a, b);
    const n = this.options.nodeCount;
    // Index of (low, high) in the row-major upper triangle.
    const index = low * n - (low * (low + 1)) / 2 + (high - low - 1);
    const c = this.connections[index]!;
    assert(c.low === low && c.high === high, "connection index");
    return c;
  }

  private path(c: Connection<M>, source: number): PathQueue<M> {
    return c.paths[source === c.low ? 0 : 1];
  }

  /** Whether `a` and `b` have a connection up right now. */
  isConnected(a: number, b: number): boolean {
    return this.connection(a, b).state === "up";
  }

  generation(a: number, b: number): number {
    return this.connection(a, b).generation;
  }

  /** Queues `message`; returns false (and drops it) when there is no connection up. */
  send(source: number, target: number, message: M): boolean {
    const c = this.connection(source, target);
    this.stats.sent++;
    if (c.state !== "up" || !this.nodeUp[source]) {
      this.stats.droppedNotConnected++;
      return false;
    }
    const path = this.path(c, source);
    const o = this.options;
    const delay = Math.min(
      o.oneWayDelayTicksMax,
      o.oneWayDelayTicksMin + Math.floor(this.prng.exponential(o.oneWayDelayTicksMean)),
    );
    const deliverTick = Math.max(this.tickNow + delay, path.lastDeliverTick());
    path.push({ deliverTick, source, target, generation: c.generation, message });
    return true;
  }

  /** Advances one tick: faults, then deliveries, then reconnects, in a fixed order. */
  tick(): void {
    this.tickNow++;
    if (this.faultsEnabled) this.tickFaults();
    for (const c of this.connections) this.tickConnection(c);
  }

  private tickFaults(): void {
    const o = this.options;
    const p = this.prng;
    if (o.partitionMode !== "none") {
      const age = this.tickNow - this.partitionChangeTick;
      if (this.partitioned) {
        if (age >= o.partitionStabilityTicksMin && p.chance(o.unpartitionProbability)) {
          this.heal();
        }
      } else if (age >= o.unpartitionStabilityTicksMin && p.chance(o.partitionProbability)) {
        this.partitionRandom();
      }
    }
    for (const c of this.connections) {
      if (c.state === "up" && p.chance(o.connectionResetProbability)) this.reset(c);
      if (o.pathClogProbability > 0) {
        for (const path of c.paths) {
          if (path.clogUntilTick <= this.tickNow && p.chance(o.pathClogProbability)) {
            path.clogUntilTick =
              this.tickNow + 1 + Math.floor(p.exponential(o.pathClogDurationTicksMean));
          }
        }
      }
    }
  }

  private tickConnection(c: Connection<M>): void {
    if (c.state === "closing") {
      // Only the survivor's path still carries what the crashed node sent before it crashed.
      this.deliverDue(c);
      if (this.tickNow >= c.downAtTick) this.finishClosing(c);
      return;
    }
    if (c.state === "up") {
      this.deliverDue(c);
      return;
    }
    if (this.tickNow >= c.reconnectAtTick && this.canConnect(c)) this.connect(c);
  }

  private deliverDue(c: Connection<M>): void {
    for (let i = 0; i < 2; i++) {
      const path = c.paths[i as 0 | 1];
      const source = i === 0 ? c.low : c.high;
      const target = i === 0 ? c.high : c.low;
      if (this.blocked[source]![target]) {
        if (path.blockedSinceTick < 0) path.blockedSinceTick = this.tickNow;
        if (
          c.state === "up" &&
          this.tickNow - path.blockedSinceTick >= this.options.connectionTimeoutTicks
        ) {
          this.reset(c);
          return;
        }
        continue;
      }
      path.blockedSinceTick = -1;
      if (path.clogUntilTick > this.tickNow) continue;
      while (path.length > 0 && path.peek()!.deliverTick <= this.tickNow) {
        const packet = path.shift();
        this.stats.delivered++;
        if (
          this.options.replayProbability > 0 &&
          this.prng.chance(this.options.replayProbability)
        ) {
          c.stale.push(packet);
        }
        this.host.deliver(packet.target, packet.source, packet.message, packet.generation);
        // The host may have reset this connection while handling the message.
        if (c.state === "down") return;
      }
    }
  }

  private canConnect(c: Connection<M>): boolean {
    return (
      this.nodeUp[c.low]! &&
      this.nodeUp[c.high]! &&
      !this.blocked[c.low]![c.high] &&
      !this.blocked[c.high]![c.low] &&
      this.host.connectAllowed(c.low, c.high) &&
      this.host.connectAllowed(c.high, c.low)
    );
  }

  private connect(c: Connection<M>): void {
    assert(c.state === "down", "connect: connection not down");
    assert(c.paths[0].length === 0 && c.paths[1].length === 0, "connect: paths not empty");
    c.state = "up";
    c.generation++;
    this.stats.connects++;
    this.host.connectionUp(c.low, c.high, c.generation);
    if (c.state !== "up") return;
    this.host.connectionUp(c.high, c.low, c.generation);
    if (c.state !== "up") return;
    // Stale packets of earlier generations now race the new generation's first messages.
    const stale = c.stale;
    c.stale = [];
    for (const packet of stale) {
      const path = this.path(c, packet.source);
      const delay = this.options.oneWayDelayTicksMin + this.prng.int(4);
      packet.deliverTick = Math.max(this.tickNow + delay, path.lastDeliverTick());
      this.stats.staleDelivered++;
      path.push(packet);
    }
  }

  private reset(c: Connection<M>): void {
    if (c.state === "down") return;
    const o = this.options;
    for (const path of c.paths) {
      for (const packet of path.drain()) {
        if (o.staleDeliveryProbability > 0 && this.prng.chance(o.staleDeliveryProbability)) {
          c.stale.push(packet);
        } else {
          this.stats.lostInFlight++;
        }
      }
      path.blockedSinceTick = -1;
    }
    const wasUp = c.state === "up";
    c.state = "down";
    this.stats.resets++;
    c.reconnectAtTick =
      this.tickNow +
      o.reconnectDelayTicksMin +
      Math.floor(this.prng.exponential(o.reconnectDelayTicksMean));
    if (wasUp) {
      if (this.nodeUp[c.low]) this.host.connectionDown(c.low, c.high, c.generation);
      if (this.nodeUp[c.high]) this.host.connectionDown(c.high, c.low, c.generation);
    } else {
      // Closing after a crash: only the survivor hears of it.
      const survivor = this.nodeUp[c.low] ? c.low : c.high;
      if (this.nodeUp[survivor]) {
        this.host.connectionDown(survivor, survivor === c.low ? c.high : c.low, c.generation);
      }
    }
  }

  private finishClosing(c: Connection<M>): void {
    this.reset(c);
  }

  /** Resets the connection between `a` and `b` now (a node asked for it, or a test did). */
  disconnect(a: number, b: number): void {
    const c = this.connection(a, b);
    if (c.state === "up") this.reset(c);
  }

  /** A node crashed: what it had sent still arrives, what was sent to it is lost. */
  crashNode(node: number): void {
    assert(this.nodeUp[node], "crashNode: node already down");
    this.nodeUp[node] = false;
    for (const c of this.connections) {
      if (c.low !== node && c.high !== node) continue;
      if (c.state !== "up") continue;
      const inbound = this.path(c, node === c.low ? c.high : c.low);
      this.stats.lostInFlight += inbound.drain().length;
      const outbound = this.path(c, node);
      c.state = "closing";
      c.downAtTick = Math.max(this.tickNow + 1, outbound.lastDeliverTick() + 1);
    }
  }

  /** A crashed node is back; connections come up after the usual reconnect delay. */
  restartNode(node: number): void {
    assert(!this.nodeUp[node], "restartNode: node is up");
    // The survivors learn of the crash before the restarted node can reconnect.
    for (const c of this.connections) {
      if ((c.low === node || c.high === node) && c.state === "closing") this.finishClosing(c);
    }
    this.nodeUp[node] = true;
  }

  /** Blocks the paths between `sideA` and `sideB` (`aToB` only when asymmetric). */
  partition(
    sideA: readonly number[],
    sideB: readonly number[],
    symmetry: PartitionSymmetry = "symmetric",
  ): void {
    for (const a of sideA) {
      for (const b of sideB) {
        assert(a !== b, "partition: node on both sides");
        this.blocked[a]![b] = true;
        if (symmetry === "symmetric") this.blocked[b]![a] = true;
      }
    }
    this.partitioned = true;
    this.partitionChangeTick = this.tickNow;
    this.stats.partitions++;
  }

  /** Removes every partition and every clog. */
  heal(): void {
    for (const row of this.blocked) row.fill(false);
    for (const c of this.connections) for (const path of c.paths) path.clogUntilTick = 0;
    this.partitioned = false;
    this.partitionChangeTick = this.tickNow;
  }

  /** Whether the path source→target is blocked by a partition. */
  isBlocked(source: number, target: number): boolean {
    return this.blocked[source]![target]!;
  }

  /** Clogs the path source→target for `durationTicks`. */
  clog(source: number, target: number, durationTicks: number): void {
    const c = this.connection(source, target);
    this.path(c, source).clogUntilTick = this.tickNow + durationTicks;
  }

  private partitionRandom(): void {
    const n = this.options.nodeCount;
    const p = this.prng;
    const inA = new Array<boolean>(n).fill(false);
    switch (this.options.partitionMode) {
      case "isolateSingle":
        inA[p.int(n)] = true;
        break;
      case "uniformSize": {
        const size = p.range(1, n - 1);
        const order = Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = p.int(i + 1);
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        for (let i = 0; i < size; i++) inA[order[i]!] = true;
        break;
      }
      case "uniformPartition":
        for (let i = 0; i < n; i++) inA[i] = p.chance(0.5);
        break;
      case "none":
        return;
    }
    const sideA: number[] = [];
    const sideB: number[] = [];
    for (let i = 0; i < n; i++) (inA[i] ? sideA : sideB).push(i);
    if (sideA.length === 0 || sideB.length === 0) return;
    this.partition(sideA, sideB, this.options.partitionSymmetry);
  }

  /** Messages in flight on all paths, or only those `predicate` accepts (liveness checks). */
  inFlightCount(predicate?: (message: M) => boolean): number {
    let count = 0;
    for (const c of this.connections) {
      for (const path of c.paths) {
        if (predicate === undefined) {
          count += path.length;
          continue;
        }
        for (let i = path.head; i < path.items.length; i++)
          if (predicate(path.items[i]!.message)) count++;
      }
    }
    return count;
  }
}
