//! The VOPR: one seed, one whole cluster, random faults, random workload, then liveness.
//!
//! Swarm testing: each seed first draws its own configuration and fault rates (node count and
//! disk mix, protocol, quorum, after-sb policies, network delays, resets, partitions, clogs,
//! disk latencies and errors, crash rate), so that the seeds together explore corners that one
//! fixed mix of rates would never reach. Then:
//!
//! 1. **Random phase** (`ticksRandom`): a client keeps up to `queueDepthMax` requests open on
//!    the writable node (writes with tagged payloads, reads, flushes, FUA writes); an operator
//!    promotes a node when none is writable; nodes crash and restart; the network and disks
//!    inject their faults. Checkers run after every step.
//! 2. **Liveness phase**: faults off, network healed, crashed nodes restarted, StandAlone
//!    nodes reconnected (a split brain left by the "disconnect" policy is resolved the way an
//!    operator would: discard-my-data on the side that is not Primary, on exactly one side of
//!    two Secondaries, and after demoting one of two Primaries). The cluster must then
//!    converge within `ticksLiveness`: all diskful nodes UpToDate and connected, nothing in
//!    flight, bitmaps empty, replicas byte-identical (d), and a full read-back through the
//!    Primary must satisfy the oracle (a).
//!
//! Fault atlas: read and write errors are injected on at most one diskful node's disk, so that
//! every block always has a good copy somewhere.

import { AssertionError } from "../stdx/assert.js";
import { Prng } from "../stdx/prng.js";
import type {
  AfterSb0pri,
  AfterSb1pri,
  AfterSb2pri,
  DiskState,
  NodeConfig,
  NodeId,
  Protocol,
  QuorumSetting,
  ReadBalancing,
  ResourceOptions,
} from "../engine/mod.js";
import { Cluster, InvariantViolation, type ClientRequest, type ClusterOptions } from "./cluster.js";
import type { PacketSimulatorOptions, PartitionMode } from "./packet_simulator.js";
import type { DiskSimOptions } from "./disk_sim.js";
import { describe } from "./scenario_helpers.js";

export interface WorkloadOptions {
  /** Requests the client keeps open at most (per writable node). */
  queueDepthMax: number;
  /** Mean requests issued per tick. */
  requestsPerTickMean: number;
  /** Shares of reads and flushes among requests (the rest are writes). */
  readShare: number;
  flushShare: number;
  /** Share of writes that carry FUA. */
  fuaShare: number;
  /** Largest write or read, blocks. */
  requestBlocksMax: number;
  /** Chance per tick that a live node crashes. */
  crashProbability: number;
  /** Mean ticks before a crashed node restarts. */
  restartDelayTicksMean: number;
  /** Chance per tick that the operator demotes the primary and promotes another node. */
  switchoverProbability: number;
  /**
   * Chance per tick that an operator tries to promote a random Secondary although a Primary
   * may exist: the engine must refuse while connected (or without quorum); across a partition
   * with quorum off it makes a split brain, which the after-sb policies must then resolve.
   */
  roguePromoteProbability: number;
}

export interface VoprConfig {
  seed: number;
  cluster: ClusterOptions;
  workload: WorkloadOptions;
  ticksRandom: number;
  ticksLiveness: number;
}

export interface VoprResult {
  seed: number;
  ok: boolean;
  /** Invariant name ("a:acked-write-lost", ..., "engine-assertion", "exception"). */
  invariant: string | null;
  detail: string | null;
  tick: number;
  requestsCompleted: number;
  ticks: number;
  summary: string;
}

export interface VoprLimits {
  /** Random-phase length, ticks. */
  ticksRandom: number;
  /** Bound on the liveness phase, ticks. */
  ticksLiveness: number;
  /** Largest volume, blocks. */
  sizeBlocksMax: number;
  /** Largest node count. */
  nodeCountMax: number;
}

export const voprLimitsDefault: VoprLimits = {
  ticksRandom: 1500,
  ticksLiveness: 3000,
  sizeBlocksMax: 256,
  nodeCountMax: 5,
};

function pickWeighted<T>(prng: Prng, items: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, w] of items) total += w;
  let x = prng.float() * total;
  for (const [item, w] of items) {
    x -= w;
    if (x < 0) return item;
  }
  return items[items.length - 1]![0];
}

/** Maybe zero: swarm testing turns whole fault classes off in some seeds. */
function maybe(prng: Prng, p: number, value: number): number {
  return prng.chance(p) ? value : 0;
}

/**
 * Engine options for a seed. Ping and request timeouts stay above the network's worst
 * round trip (two one-way maxima), so that a healed network does not keep timing out: slow
 * links still make peers time out in the random phase through clogs and partitions.
 */
function swarmEngine(
  prng: Prng,
  quorum: QuorumSetting,
  delayTicksMean: number,
): Partial<ResourceOptions> {
  const roundTripTicksMax = 2 * (1 + 6 * Math.max(1, delayTicksMean));
  return {
    quorum,
    onNoQuorum: prng.chance(0.5) ? "io-error" : "suspend-io",
    readBalancing: prng.pick<ReadBalancing>([
      "prefer-local",
      "prefer-remote",
      "round-robin",
      "least-pending",
      "when-congested-remote",
    ]),
    afterSb0pri: prng.pick<AfterSb0pri>([
      "disconnect",
      "discard-younger-primary",
      "discard-older-primary",
      "discard-zero-changes",
      "discard-least-changes",
    ]),
    afterSb1pri: prng.pick<AfterSb1pri>(["disconnect", "consensus", "discard-secondary"]),
    afterSb2pri: prng.pick<AfterSb2pri>(["disconnect"]),
    alExtents: prng.range(7, 24),
    alExtentBlocks: prng.pick([4, 8, 16]),
    pingIntTicks: 2 * roundTripTicksMax + prng.range(10, 30),
    pingTimeoutTicks: roundTripTicksMax + prng.range(1, 10),
    timeoutTicks: roundTripTicksMax + prng.range(10, 30),
    koCount: prng.range(0, 7),
    maxEpochSize: prng.range(1, 64),
    csumsAlg: prng.chance(0.3),
    // Fast resync in simulated time: 1 tick = 100 ms, so 102400 KiB/s is 2560 blocks/tick.
    cMaxRateKiBps: prng.pick([400, 4000, 102400]),
    cMinRateKiBps: 250,
  };
}

function swarmNetwork(prng: Prng, n: number, mean: number): PacketSimulatorOptions {
  const partitionMode: PartitionMode = prng.pick<PartitionMode>([
    "none",
    "uniformSize",
    "uniformPartition",
    "isolateSingle",
  ]);
  return {
    nodeCount: n,
    oneWayDelayTicksMin: 1,
    oneWayDelayTicksMean: mean,
    oneWayDelayTicksMax: 1 + 6 * Math.max(1, mean),
    connectionResetProbability: maybe(prng, 0.5, prng.float() * 0.002),
    reconnectDelayTicksMin: 2,
    reconnectDelayTicksMean: prng.range(2, 30),
    connectionTimeoutTicks: prng.range(10, 60),
    partitionMode,
    partitionSymmetry: prng.chance(0.5) ? "symmetric" : "asymmetric",
    partitionProbability: prng.float() * 0.005,
    unpartitionProbability: 0.005 + prng.float() * 0.02,
    partitionStabilityTicksMin: prng.range(10, 100),
    unpartitionStabilityTicksMin: prng.range(10, 200),
    pathClogProbability: maybe(prng, 0.4, prng.float() * 0.002),
    pathClogDurationTicksMean: prng.range(5, 40),
    staleDeliveryProbability: maybe(prng, 0.3, prng.float() * 0.3),
    replayProbability: maybe(prng, 0.2, prng.float() * 0.02),
  };
}

function swarmDisk(prng: Prng): Omit<DiskSimOptions, "sizeBytes"> {
  return {
    readLatencyTicksMin: 1,
    readLatencyTicksMean: prng.range(0, 3),
    writeLatencyTicksMin: 1,
    writeLatencyTicksMean: prng.range(0, 4),
    readErrorProbability: 0,
    writeErrorProbability: 0,
    metadataWriteErrorProbability: 0,
    capacityBlocksMax: Infinity,
    crashLostProbability: prng.float() * 0.6,
    crashTornProbability: prng.float(),
  };
}

function swarmWorkload(prng: Prng): WorkloadOptions {
  return {
    queueDepthMax: prng.range(1, 16),
    requestsPerTickMean: 0.2 + prng.float() * 2,
    readShare: prng.float() * 0.4,
    flushShare: prng.float() * 0.15,
    fuaShare: maybe(prng, 0.5, prng.float() * 0.2),
    requestBlocksMax: prng.range(1, 8),
    crashProbability: maybe(prng, 0.6, prng.float() * 0.002),
    restartDelayTicksMean: prng.range(10, 200),
    switchoverProbability: maybe(prng, 0.3, prng.float() * 0.003),
    roguePromoteProbability: maybe(prng, 0.3, prng.float() * 0.003),
  };
}

/** Draws a seed's configuration and fault rates. */
export function voprConfigSwarm(seed: number, limits: VoprLimits = voprLimitsDefault): VoprConfig {
  const prng = new Prng(seed ^ 0x5eed5eed);
  const nodeCount = pickWeighted(prng, [
    [2, 3],
    [3, 5],
    [4, 1],
    [5, 1],
  ] as const);
  const n = Math.min(nodeCount, limits.nodeCountMax);
  const disklessCount = n >= 3 && prng.chance(0.3) ? 1 : 0;
  const nodes: NodeConfig[] = [];
  for (let id = 0; id < n; id++) {
    nodes.push({ id, name: `node${id}`, disk: id >= n - disklessCount ? "diskless" : "diskful" });
  }
  // Every quorum setting that forbids two disjoint writable partitions: majority, all, or a
  // number above half the voters.
  const quorum: QuorumSetting =
    n < 3
      ? "off"
      : pickWeighted<QuorumSetting>(prng, [
          ["off", 3],
          ["majority", 5],
          ["all", 1],
          [Math.floor(n / 2) + 1, 1],
        ]);
  const protocol: Protocol = pickWeighted(prng, [
    ["C", 8],
    ["B", 1],
    ["A", 1],
  ] as const);
  const delayTicksMean = prng.range(0, 4);
  const engine = swarmEngine(prng, quorum, delayTicksMean);
  const network = swarmNetwork(prng, n, delayTicksMean);
  const disk = swarmDisk(prng);
  const workload = swarmWorkload(prng);
  const cluster: ClusterOptions = {
    seed,
    nodes,
    sizeBlocks: prng.range(16, limits.sizeBlocksMax),
    protocol,
    engine,
    network,
    disk,
  };
  // Fault atlas: errors on one diskful disk at most (the cluster applies per-node overrides).
  const errorNode = prng.chance(0.3) ? prng.int(n - disklessCount) : -1;
  if (errorNode >= 0) {
    cluster.diskOverrides = {
      [errorNode]: {
        readErrorProbability: prng.float() * 0.01,
        writeErrorProbability: prng.float() * 0.005,
        metadataWriteErrorProbability: maybe(prng, 0.3, prng.float() * 0.002),
        // A thin volume that runs out of space: writes to new blocks fail with ENOSPC.
        capacityBlocksMax: prng.chance(0.3)
          ? Math.floor(cluster.sizeBlocks * (0.5 + prng.float() * 0.4))
          : Infinity,
      },
    };
  }
  return {
    seed,
    cluster,
    workload,
    ticksRandom: limits.ticksRandom,
    ticksLiveness: limits.ticksLiveness,
  };
}

export function voprConfigSummary(c: VoprConfig): string {
  const o = c.cluster;
  const diskless = o.nodes.filter((x) => x.disk === "diskless").length;
  const e = o.engine;
  const net = o.network;
  return (
    `nodes=${o.nodes.length}${diskless > 0 ? ` (${diskless} diskless)` : ""} size=${o.sizeBlocks} blocks ` +
    `protocol=${o.protocol} quorum=${String(e.quorum)} on-no-quorum=${e.onNoQuorum} ` +
    `after-sb=${JSON.stringify(e.afterSb0pri)}/${e.afterSb1pri}/${e.afterSb2pri} al=${e.alExtents}×${e.alExtentBlocks} ` +
    `net: delay=1+${net.oneWayDelayTicksMean} resets=${net.connectionResetProbability.toFixed(4)} ` +
    `partitions=${net.partitionMode}/${net.partitionSymmetry}@${net.partitionProbability.toFixed(4)} ` +
    `stale=${net.staleDeliveryProbability.toFixed(2)} crash=${c.workload.crashProbability.toFixed(4)} ` +
    `qd=${c.workload.queueDepthMax} errors=${o.diskOverrides === undefined ? "none" : "one disk"}`
  );
}

/** Drives one cluster through the random phase and the liveness phase. */
export class Vopr {
  readonly cluster: Cluster;
  private readonly prng: Prng;
  private readonly restartAtTick: number[];
  /** The node the liveness operator force-promoted (-1: none), to step it down again. */
  private forcedPrimary: NodeId = -1;

  constructor(readonly config: VoprConfig) {
    this.cluster = new Cluster(config.cluster);
    this.prng = new Prng(config.seed ^ 0x0c11e47);
    this.restartAtTick = config.cluster.nodes.map(() => 0);
  }

  /** The node a client would use: a writable one (any, if a split brain made two), else -1. */
  private writer(): number {
    let found = -1;
    let count = 0;
    for (const node of this.cluster.nodes) {
      if (node.up && node.view()?.canWrite() === true) {
        count++;
        // Reservoir choice: uniform among writable nodes, one Prng draw only when there are two.
        if (count === 1 || this.prng.int(count) === 0) found = node.id;
      }
    }
    return found;
  }

  private lastPromoteTick = -1000;

  private maybePromote(): void {
    const c = this.cluster;
    if (c.tickNow - this.lastPromoteTick < 50) return;
    const candidates = c.nodes.filter((n) => n.up && n.view() !== null);
    if (candidates.length === 0) return;
    // Prefer a diskful UpToDate node; sometimes a diskless one (reads and writes over the wire).
    const upToDate = candidates.filter((n) => n.view()!.disk === "UpToDate");
    const diskless = candidates.filter((n) => !n.diskful);
    const pool =
      diskless.length > 0 && this.prng.chance(0.25)
        ? diskless
        : upToDate.length > 0
          ? upToDate
          : candidates;
    const node = this.prng.pick(pool);
    if (node.view()!.role === "Primary") return;
    this.lastPromoteTick = c.tickNow;
    c.admin(node.id, { type: "primary" });
  }

  private workloadTick(): void {
    const c = this.cluster;
    const w = this.config.workload;
    if (this.prng.chance(w.roguePromoteProbability)) {
      const node = this.prng.pick(c.nodes);
      if (node.up && node.view()?.role === "Secondary") c.admin(node.id, { type: "primary" });
    }
    const writer = this.writer();
    if (writer < 0) {
      this.maybePromote();
      return;
    }
    if (this.prng.chance(w.switchoverProbability)) {
      c.admin(writer, { type: "secondary" });
      return;
    }
    const node = c.node(writer);
    let count = Math.floor(this.prng.exponential(w.requestsPerTickMean) + 0.5);
    while (count-- > 0 && node.up && node.requests.size < w.queueDepthMax) {
      const x = this.prng.float();
      const blocks = this.prng.range(1, w.requestBlocksMax);
      const first = this.prng.int(
        c.options.sizeBlocks - Math.min(blocks, c.options.sizeBlocks) + 1,
      );
      const count2 = Math.min(blocks, c.options.sizeBlocks - first);
      if (x < w.readShare) c.read(writer, first, count2);
      else if (x < w.readShare + w.flushShare) c.flush(writer);
      else c.write(writer, first, count2, this.prng.chance(w.fuaShare));
    }
  }

  private faultTick(): void {
    const c = this.cluster;
    const w = this.config.workload;
    for (const node of c.nodes) {
      if (node.up && this.prng.chance(w.crashProbability)) {
        node.crash();
        this.restartAtTick[node.id] =
          c.tickNow + 1 + Math.floor(this.prng.exponential(w.restartDelayTicksMean));
      } else if (!node.up && c.tickNow >= this.restartAtTick[node.id]!) {
        node.restart();
      }
    }
  }

  runRandomPhase(): void {
    for (let i = 0; i < this.config.ticksRandom; i++) {
      this.faultTick();
      this.workloadTick();
      this.cluster.tick();
    }
  }

  /** Heals everything and resolves what needs an operator; returns when converged. */
  runLivenessPhase(): void {
    const c = this.cluster;
    c.heal();
    for (const node of c.nodes) if (!node.up) node.restart();
    const deadline = c.tickNow + this.config.ticksLiveness;
    let lastOperatorTick = -1000;
    let blocker: string | null = "not started";
    while (c.tickNow < deadline) {
      blocker = c.checkers.convergenceBlocker();
      if (blocker === null) break;
      if (c.tickNow - lastOperatorTick >= 100) {
        lastOperatorTick = c.tickNow;
        this.operatorReconnect();
        this.operatorForcePrimary(c.tickNow - (deadline - this.config.ticksLiveness));
      }
      c.tick();
    }
    if (blocker !== null) {
      throw new InvariantViolation(
        "d:no-convergence",
        `not converged ${this.config.ticksLiveness} ticks after healing: ${blocker}; ${describe(c)}`,
        c.tickNow,
      );
    }
    c.checkers.checkConverged();
    this.readBack();
  }

  /**
   * Reconnects StandAlone links; a split brain is resolved by discarding a Secondary. Two
   * Primaries left StandAlone by a split brain (quorum off) are what DRBD hands to the
   * operator: nothing converges until one of them is demoted and discards its data
   * (`drbdadm secondary; drbdadm connect --discard-my-data`). The operator demotes the
   * higher-numbered one.
   */
  private operatorReconnect(): void {
    const c = this.cluster;
    // A Primary that lost quorum while another Primary with quorum carries on (its peers
    // refuse a second Primary): the operator demotes the one without quorum.
    const withQuorum = c.nodes.some((n) => {
      const v = n.up ? n.view() : null;
      return v !== null && v.role === "Primary" && v.quorum;
    });
    for (const node of c.nodes) {
      const view = node.up ? node.view() : null;
      if (view === null || view.role !== "Primary" || view.quorum || !withQuorum) continue;
      c.admin(node.id, { type: "secondary" });
    }
    for (const node of c.nodes) {
      const view = node.view();
      if (view === null) continue;
      for (const p of view.peers) {
        if (p.connection !== "StandAlone") continue;
        if (
          view.role === "Primary" &&
          node.id > p.peer &&
          c.nodes[p.peer]!.up &&
          c.nodes[p.peer]!.view()?.role === "Primary"
        ) {
          c.admin(node.id, { type: "secondary" });
        }
        const discard = this.operatorDiscards(node.id, p.peer);
        c.admin(node.id, { type: "connect", peer: p.peer, discardMyData: discard });
        // The side that must discard still tries to connect (only we went StandAlone): the
        // operator disconnects it and reconnects it with discard-my-data.
        const other = c.nodes[p.peer]!;
        const otherView = other.up ? other.view() : null;
        const otherLink = otherView?.peer(node.id)?.connection;
        if (!discard && otherLink !== undefined && otherLink !== "StandAlone") {
          if (this.operatorDiscards(p.peer, node.id)) {
            c.admin(p.peer, { type: "disconnect", peer: node.id });
            c.admin(p.peer, { type: "connect", peer: node.id, discardMyData: true });
          }
        }
      }
    }
  }

  /**
   * No node has UpToDate data and none is Primary (every survivor was outdated when it lost
   * its Primary or its quorum): DRBD waits for an operator's `drbdadm primary --force` on the
   * node with the newest data. The operator judges by what `drbdadm status` shows: the
   * youngest generation, then the better disk, then the node that knows of the most blocks
   * its peers lack; then steps it down again (`drbdadm secondary`) once it is UpToDate.
   */
  private operatorForcePrimary(ticksSinceHeal: number): void {
    const c = this.cluster;
    if (this.forcedPrimary >= 0) {
      const v = c.nodes[this.forcedPrimary]!.view();
      if (v !== null && v.role === "Primary") c.admin(this.forcedPrimary, { type: "secondary" });
      this.forcedPrimary = -1;
      return;
    }
    if (ticksSinceHeal < 200) return;
    let best: { id: NodeId; key: number[] } | undefined;
    const stuck: NodeId[] = [];
    for (const node of c.nodes) {
      const v = node.up ? node.view() : null;
      if (v === null) continue;
      if (node.diskful && v.disk === "UpToDate") return;
      if (v.role === "Primary") {
        // A diskless Primary without UpToDate data to use cannot serve: step it down first.
        if (node.diskful || v.canWrite()) return;
        stuck.push(node.id);
        continue;
      }
      if (!node.diskful || (v.disk !== "Outdated" && v.disk !== "Consistent")) continue;
      let bits = 0;
      for (const p of v.peers) bits += p.bitmap.count();
      const rank = v.disk === "Consistent" ? 1 : 0;
      const key = [Math.floor(v.currentUuid / 32), rank, bits, -node.id];
      if (best === undefined || compareKeys(key, best.key) > 0) best = { id: node.id, key };
    }
    if (best === undefined) return;
    for (const id of stuck) c.admin(id, { type: "secondary" });
    this.forcedPrimary = best.id;
    c.admin(best.id, { type: "primary", force: true });
  }

  /**
   * Which side of a StandAlone pair the operator discards: never a Primary; the other side
   * when it is Primary; between two Secondaries, exactly one of them (if both asked for
   * discard-my-data, DRBD refuses the connection and nothing ever converges): the one with
   * the worse disk (UpToDate over Consistent over Outdated), else the higher-numbered one.
   */
  private operatorDiscards(node: NodeId, peer: NodeId): boolean {
    const c = this.cluster;
    const me = c.nodes[node]!;
    const view = me.view();
    if (view === null || view.role === "Primary" || !me.diskful) return false;
    const other = c.nodes[peer]!;
    const peerView = other.up ? other.view() : null;
    if (peerView === null || !other.diskful || peerView.role === "Primary") return true;
    // A live Primary writes on one of the two lines: the operator keeps that one.
    const line = this.primaryLine();
    if (line !== undefined) {
      const mine = line.includes(view.nextUuid);
      const theirs = line.includes(peerView.nextUuid);
      if (mine !== theirs) return !mine;
    }
    const rank = (d: DiskState): number =>
      d === "UpToDate" ? 3 : d === "Consistent" ? 2 : d === "Outdated" ? 1 : 0;
    const mine = rank(view.disk);
    const theirs = rank(peerView.disk);
    return mine !== theirs ? mine < theirs : node > peer;
  }

  /** The generations of a live Primary's line (its current UUID and history), if any. */
  private primaryLine(): readonly number[] | undefined {
    for (const node of this.cluster.nodes) {
      const v = node.up ? node.view() : null;
      if (v !== null && v.role === "Primary") return [v.nextUuid, ...v.historyUuids];
    }
    return undefined;
  }

  /** Reads every block through a writable node (or any node) and checks it against (a). */
  private readBack(): void {
    const c = this.cluster;
    const reader = this.writer() >= 0 ? this.writer() : c.nodes.find((n) => n.diskful)!.id;
    const size = c.options.sizeBlocks;
    const chunk = 16;
    const requests: ClientRequest[] = [];
    for (let first = 0; first < size; first += chunk) {
      requests.push(c.read(reader, first, Math.min(chunk, size - first)));
      if (requests.length % 4 === 0) c.run(1);
    }
    c.runUntil(() => requests.every((r) => r.done), 1000);
    const failed = requests.filter((r) => !r.done || !r.ok);
    if (failed.length > 0 && c.node(reader).view()?.canWrite() === true) {
      throw new InvariantViolation(
        "d:no-convergence",
        `read-back on n${reader}: ${failed.length} reads failed or hung after convergence`,
        c.tickNow,
      );
    }
  }
}

/** Runs one seed to completion; never throws. */
export function runSeed(
  seed: number,
  limits: VoprLimits = voprLimitsDefault,
  trace?: (line: string) => void,
  mutate?: (config: VoprConfig) => void,
): VoprResult {
  const config = voprConfigSwarm(seed, limits);
  mutate?.(config);
  if (trace !== undefined) config.cluster.trace = trace;
  const summary = voprConfigSummary(config);
  let vopr: Vopr | null = null;
  try {
    vopr = new Vopr(config);
    vopr.runRandomPhase();
    vopr.runLivenessPhase();
    return result(seed, vopr, null, summary);
  } catch (error) {
    return result(seed, vopr, error, summary);
  }
}

function result(seed: number, vopr: Vopr | null, error: unknown, summary: string): VoprResult {
  const c = vopr?.cluster;
  const base = {
    seed,
    tick: c?.tickNow ?? 0,
    requestsCompleted: c?.stats.requestsCompleted ?? 0,
    ticks: c?.stats.ticks ?? 0,
    summary,
  };
  if (error === null) return { ...base, ok: true, invariant: null, detail: null };
  if (error instanceof InvariantViolation) {
    return {
      ...base,
      ok: false,
      invariant: error.invariant,
      detail: error.detail,
      tick: error.tick,
    };
  }
  if (error instanceof AssertionError) {
    return {
      ...base,
      ok: false,
      invariant: "engine-assertion",
      detail: error.stack ?? error.message,
    };
  }
  const e = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { ...base, ok: false, invariant: "exception", detail: e };
}

/** Lexicographic comparison of two keys of equal length. */
function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
