//! Option defaults and validation. DRBD's names and defaults (see
//! ../shared/reference/drbd-options.md); time options are in ticks, where DRBD's defaults
//! assume one tick is 0.1 s. Invariant: a resolved config has 2..32 nodes with unique ids in
//! 0..31 and every option inside its documented bounds.

import { assert } from "../stdx/assert.js";
import type { NodeConfig, NodeId, Protocol, ResourceConfig, ResourceOptions } from "./types.js";
import { alExtentBlocksDefault, nodeIdMax } from "./types.js";

export const optionsDefault: ResourceOptions = {
  allowTwoPrimaries: false,
  autoPromote: true,
  quorum: "off",
  onNoQuorum: "suspend-io",
  readBalancing: "prefer-local",
  afterSb0pri: "disconnect",
  afterSb1pri: "disconnect",
  afterSb2pri: "disconnect",
  alExtents: 1237,
  alExtentBlocks: alExtentBlocksDefault,
  pingIntTicks: 100,
  pingTimeoutTicks: 5,
  timeoutTicks: 60,
  koCount: 7,
  maxEpochSize: 2048,
  maxBuffers: 2048,
  resyncRequestBlocks: 8,
  tickMs: 100,
  cPlanAheadTicks: 20,
  cFillTargetSectors: 100,
  cMinRateKiBps: 250,
  cMaxRateKiBps: 102400,
  resyncRateKiBps: 250,
  csumsAlg: false,
  verifyAlg: false,
};

export interface ResolvedConfig {
  readonly name: string;
  readonly nodes: readonly NodeConfig[];
  readonly sizeBlocks: number;
  readonly protocol: Protocol;
  readonly options: ResourceOptions;
  readonly faults: NonNullable<ResourceConfig["faultInjection"]>;
  /** Node config by id (undefined for ids not in the resource). */
  readonly byId: readonly (NodeConfig | undefined)[];
}

export function resolveConfig(config: ResourceConfig): ResolvedConfig {
  const options: ResourceOptions = { ...optionsDefault, ...(config.options ?? {}) };
  assert(config.nodes.length >= 1 && config.nodes.length <= 32, "1..32 nodes");
  const byId: (NodeConfig | undefined)[] = new Array<NodeConfig | undefined>(32).fill(undefined);
  for (const node of config.nodes) {
    assert(Number.isInteger(node.id) && node.id >= 0 && node.id <= nodeIdMax, "node id 0..31");
    assert(byId[node.id] === undefined, `duplicate node id ${node.id}`);
    byId[node.id] = node;
  }
  assert(Number.isInteger(config.sizeBlocks) && config.sizeBlocks > 0, "sizeBlocks > 0");
  assert(options.alExtents >= 1 && options.alExtents <= 65534, "al-extents 1..65534");
  assert(options.alExtentBlocks >= 1, "alExtentBlocks >= 1");
  assert(options.pingIntTicks >= 1 && options.pingTimeoutTicks >= 1, "ping ticks >= 1");
  assert(options.timeoutTicks >= 1 && options.koCount >= 0, "timeout/ko-count");
  assert(options.maxEpochSize >= 1, "max-epoch-size >= 1");
  assert(options.maxBuffers >= 1, "max-buffers >= 1");
  assert(options.resyncRequestBlocks >= 1, "resync requests of at least one block");
  if (typeof options.quorum === "number") {
    assert(Number.isInteger(options.quorum) && options.quorum >= 1, "quorum N >= 1");
  }
  return {
    name: config.name,
    nodes: config.nodes,
    sizeBlocks: config.sizeBlocks,
    protocol: config.protocol ?? "C",
    options,
    faults: config.faultInjection ?? {},
    byId,
  };
}

export function isDiskful(config: ResolvedConfig, id: NodeId): boolean {
  return config.byId[id]?.disk === "diskful";
}
