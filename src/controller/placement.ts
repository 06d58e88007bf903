//! Auto-placement: which nodes and storage pools get the replicas of one resource definition.
//!
//! A pure function of the cluster's desired state (no I/O, no clock, no randomness): the same
//! input always gives the same answer, and every tie is broken by name. It follows LINSTOR's
//! autoplacer (`SelectionManager`):
//!
//! - `place_count` counts diskful replicas, existing ones included; when they already reach it,
//!   `additional_place_count` (if > 0) says how many more to add. Existing replicas are kept.
//! - One replica per node. A node that already holds the resource (diskful or diskless) is not
//!   a candidate.
//! - Candidate pools: not DISKLESS, named by `storage_pool`/`storage_pool_list` when given, of a
//!   kind in `provider_list` when given, with room for the volumes (see `poolHasRoom`).
//! - `replicas_on_same`: `key=value` keeps only nodes with that value; `key` makes every replica
//!   share one value, decided by the existing replicas or else by the first chosen node.
//! - `replicas_on_different`: `key` allows each value once (or `x_replicas_on_different_map[key]`
//!   times, with at most one group left partly filled); `key=value` forbids that value. Nodes
//!   without the key are not limited, as in LINSTOR.
//! - `not_place_with_rsc` / `not_place_with_rsc_regex` (a full, case-insensitive match): skip
//!   nodes that hold any of those resources.
//! - Balance: nodes are tried best first (the free capacity of their best pool, most first;
//!   unknown capacity after every known one; then by node name), and the first selection that
//!   satisfies every rule wins, searching with backtracking as LINSTOR does.
//! - `diskless_on_remaining`: every other satellite gets a diskless replica.
//! - Tie-breaker: when the result has exactly two diskful replicas and no diskless one, a third
//!   node gets a diskless TIE_BREAKER replica so that quorum has a third vote.

import type { AutoSelectFilter, NodeType, Props, ProviderKind } from "./store/store.js";

/** A node as placement sees it. */
export interface PlacementNode {
  name: string;
  type: NodeType;
  flags: readonly string[];
  props: Props;
  /** Names of the node's network interfaces; a node without any cannot be reached. */
  netInterfaces: readonly string[];
}

/** A storage pool with its capacity; null capacity means no satellite has reported it yet. */
export interface PlacementPool {
  node: string;
  name: string;
  providerKind: ProviderKind;
  freeCapacityKib: number | null;
  totalCapacityKib: number | null;
}

/** An existing resource, of this definition or of any other. */
export interface PlacementResource {
  resourceDefinition: string;
  node: string;
  storagePool: string;
  flags: readonly string[];
}

export interface PlacementInput {
  resourceDefinition: string;
  nodes: readonly PlacementNode[];
  pools: readonly PlacementPool[];
  resources: readonly PlacementResource[];
  filter: AutoSelectFilter;
  /** The sizes of the definition's volumes; a pool needs room for their sum. */
  volumeSizesKib: readonly number[];
  /** Whether a diskless tie-breaker may be added (LINSTOR's auto-add-quorum-tiebreaker). */
  autoTiebreaker: boolean;
}

export type PlacementKind = "diskful" | "diskless" | "tiebreaker";

export interface Placement {
  node: string;
  storagePool: string;
  kind: PlacementKind;
}

export interface PlacementDecision {
  /** New replicas in creation order: diskful (best first), then diskless, then tie-breaker. */
  placements: Placement[];
  /** Nodes that already held a diskful replica; they are kept as they are. */
  existingDiskful: string[];
  /** How many diskful replicas were asked for beyond the existing ones. */
  additionalCount: number;
  /** Set when a tie-breaker was wanted but no node could take one. */
  tiebreakerMissing: boolean;
}

export type PlacementFailureReason =
  /** Fewer candidates than replicas to place (LINSTOR's FAIL_NOT_ENOUGH_NODES). */
  | "notEnoughNodes"
  /** Existing replicas disagree on a replicas_on_same key (FAIL_UNDECIDABLE_AUTOPLACMENT). */
  | "undecidable"
  /** The filter itself is unusable, e.g. a regex that does not compile. */
  | "invalidFilter";

/** Why a request cannot be satisfied. */
export interface PlacementFailure {
  reason: PlacementFailureReason;
  /** The rule that ran out of candidates, e.g. "replicas_on_different" or "free capacity". */
  constraint: string;
  /** Candidate nodes left after that rule. */
  candidates: number;
  /** Diskful replicas that still had to be placed. */
  needed: number;
  message: string;
  /** One line per rule: how many candidate nodes were left after it. */
  details: string;
}

export type PlacementResult =
  { ok: true; decision: PlacementDecision } | { ok: false; failure: PlacementFailure };

/** LINSTOR's default replica count when a filter names none. */
export const placeCountDefault = 2;
/** Bounds the backtracking search; far beyond what a real cluster needs. */
const searchStepsMax = 200_000;
const thinKinds: readonly ProviderKind[] = ["LVM_THIN", "ZFS_THIN", "FILE_THIN"];
const placeableNodeTypes: readonly NodeType[] = ["SATELLITE", "COMBINED"];
const unplaceableNodeFlags = ["DELETE", "EVICTED", "EVACUATE"];

const lower = (s: string): string => s.toLowerCase();
const byName = (a: string, b: string): number =>
  lower(a) < lower(b) ? -1 : lower(a) > lower(b) ? 1 : a < b ? -1 : a > b ? 1 : 0;

export function isDiskless(flags: readonly string[]): boolean {
  return flags.includes("DISKLESS") || flags.includes("DRBD_DISKLESS");
}

/**
 * Whether a pool can hold `sizeKib` more. Unknown capacity (no satellite report yet) never
 * rules a pool out: the satellite refuses what does not fit, and a fresh cluster must be able
 * to place before its first report. Thin pools are not limited by free space unless the filter
 * sets `overprovision`, which caps them at free × overprovision, as LINSTOR does.
 */
export function poolHasRoom(pool: PlacementPool, sizeKib: number, overprovision?: number): boolean {
  if (pool.freeCapacityKib === null) return true;
  if (thinKinds.includes(pool.providerKind)) {
    return overprovision === undefined || pool.freeCapacityKib * overprovision >= sizeKib;
  }
  return pool.freeCapacityKib >= sizeKib;
}

/** Pools ordered best first: most free capacity, unknown after known, then by name. */
function comparePools(a: PlacementPool, b: PlacementPool): number {
  const fa = a.freeCapacityKib;
  const fb = b.freeCapacityKib;
  if (fa !== fb) {
    if (fa === null) return 1;
    if (fb === null) return -1;
    return fb - fa;
  }
  return byName(a.node, b.node) || byName(a.name, b.name);
}

function splitKeyValue(s: string): { key: string; value: string | undefined } {
  const i = s.indexOf("=");
  return i === -1 ? { key: s, value: undefined } : { key: s.slice(0, i), value: s.slice(i + 1) };
}

/** How many more diskful replicas to place (LINSTOR's `SelectionManager.getReplicaCount`). */
export function additionalReplicaCount(filter: AutoSelectFilter, existing: number): number {
  const additional =
    filter.additional_place_count !== undefined && filter.additional_place_count > 0
      ? filter.additional_place_count
      : undefined;
  const placeCount =
    filter.place_count ?? (additional === undefined ? placeCountDefault : undefined);
  if (placeCount !== undefined && placeCount > existing) return placeCount - existing;
  return additional ?? 0;
}

interface Candidate {
  node: PlacementNode;
  pool: PlacementPool;
}

/** The state of the search: replica-on-same values and replica-on-different counts. */
interface Rules {
  /** key → decided value, or null while undecided. */
  same: Map<string, string | null>;
  /** key → value → remaining uses (-1: forbidden). */
  diff: Map<string, Map<string, number>>;
  /** key → uses per value. */
  diffMax: Map<string, number>;
}

function initRules(
  filter: AutoSelectFilter,
  existing: readonly PlacementNode[],
): { ok: true; rules: Rules } | { ok: false; key: string; values: string[] } {
  const same = new Map<string, string | null>();
  for (const entry of filter.replicas_on_same ?? []) {
    const { key, value } = splitKeyValue(entry);
    const seen = [
      ...new Set(existing.map((n) => n.props[key]).filter((v) => v !== undefined)),
    ].sort();
    if (seen.length > 1) return { ok: false, key, values: seen };
    same.set(key, seen[0] ?? value ?? null);
  }
  const diffMax = new Map<string, number>();
  const diff = new Map<string, Map<string, number>>();
  const xMap = filter.x_replicas_on_different_map ?? {};
  const entries = [...Object.keys(xMap), ...(filter.replicas_on_different ?? [])].sort();
  for (const entry of entries) {
    const { key, value } = splitKeyValue(entry);
    const max = xMap[key] ?? 1;
    diffMax.set(key, max);
    const counts = diff.get(key) ?? new Map<string, number>();
    if (value !== undefined) counts.set(value, -1);
    diff.set(key, counts);
  }
  for (const [key, counts] of diff) {
    for (const n of existing) {
      const v = n.props[key];
      if (v === undefined) continue;
      const left = counts.get(v) ?? diffMax.get(key) ?? 1;
      if (left > 0) counts.set(v, left - 1);
    }
  }
  return { ok: true, rules: { same, diff, diffMax } };
}

function allowed(rules: Rules, node: PlacementNode): boolean {
  for (const [key, value] of rules.same) {
    if (value !== null && node.props[key] !== value) return false;
  }
  for (const [key, counts] of rules.diff) {
    const v = node.props[key];
    if (v === undefined) continue;
    const left = counts.get(v);
    if (left !== undefined && left <= 0) return false;
  }
  return true;
}

/** Applies a choice; returns an undo function so the search can backtrack. */
function choose(rules: Rules, node: PlacementNode): () => void {
  const undo: (() => void)[] = [];
  for (const [key, value] of rules.same) {
    const v = node.props[key];
    if (value === null && v !== undefined) {
      rules.same.set(key, v);
      undo.push(() => rules.same.set(key, null));
    }
  }
  for (const [key, counts] of rules.diff) {
    const v = node.props[key];
    if (v === undefined) continue;
    const before = counts.get(v);
    counts.set(v, (before ?? rules.diffMax.get(key) ?? 1) - 1);
    undo.push(() => (before === undefined ? counts.delete(v) : counts.set(v, before)));
  }
  return () => undo.reverse().forEach((f) => f());
}

/** At most one partly filled group per x_replicas_on_different key (LINSTOR's `isValid`). */
function complete(rules: Rules): boolean {
  for (const counts of rules.diff.values()) {
    if ([...counts.values()].filter((left) => left > 0).length > 1) return false;
  }
  return true;
}

/** Depth-first over candidates in rank order; the first full valid selection wins. */
function search(rules: Rules, candidates: readonly Candidate[], count: number): Candidate[] | null {
  const chosen: Candidate[] = [];
  let steps = 0;
  const walk = (from: number): boolean => {
    if (chosen.length === count) return complete(rules);
    for (let i = from; i < candidates.length; i++) {
      if (++steps > searchStepsMax) return false;
      if (candidates.length - i < count - chosen.length) return false;
      const c = candidates[i]!;
      if (!allowed(rules, c.node)) continue;
      const undo = choose(rules, c.node);
      chosen.push(c);
      if (walk(i + 1)) return true;
      chosen.pop();
      undo();
    }
    return false;
  };
  return walk(0) ? chosen : null;
}

interface Stage<T> {
  constraint: string;
  keep: (item: T) => boolean;
}

function compileRegex(source: string | undefined): RegExp | null | undefined {
  if (source === undefined || source === "") return undefined;
  try {
    return new RegExp(`^(?:${source})$`, "i");
  } catch {
    return null;
  }
}

function failure(
  reason: PlacementFailureReason,
  constraint: string,
  candidates: number,
  needed: number,
  message: string,
  funnel: string[],
): PlacementResult {
  return {
    ok: false,
    failure: { reason, constraint, candidates, needed, message, details: funnel.join("\n") },
  };
}

/** What every step of one placement shares. */
interface Context {
  input: PlacementInput;
  filter: AutoSelectFilter;
  /** The definition's name, lowercased. */
  rd: string;
  /** Resources of this definition. */
  ofRd: readonly PlacementResource[];
  /** Lowercased definition names per lowercased node name. */
  holds: (n: PlacementNode) => readonly string[];
  /** One line per rule for the failure details. */
  funnel: string[];
}

function reachableSatellite(n: PlacementNode): boolean {
  return (
    placeableNodeTypes.includes(n.type) &&
    !n.flags.some((f) => unplaceableNodeFlags.includes(f)) &&
    n.netInterfaces.length > 0
  );
}

/** The node rules, in the order the failure details report them. */
function nodeStages(c: Context, rules: Rules, regex: RegExp | undefined): Stage<PlacementNode>[] {
  const { filter } = c;
  const avoid = new Set((filter.not_place_with_rsc ?? []).map(lower));
  const nodeList = filter.node_name_list?.map(lower);
  return [
    { constraint: "a reachable satellite", keep: reachableSatellite },
    { constraint: "node_name_list", keep: (n) => !nodeList || nodeList.includes(lower(n.name)) },
    {
      constraint: `no replica of '${c.input.resourceDefinition}' yet`,
      keep: (n) => !c.holds(n).includes(c.rd),
    },
    { constraint: "not_place_with_rsc", keep: (n) => !c.holds(n).some((r) => avoid.has(r)) },
    {
      constraint: "not_place_with_rsc_regex",
      keep: (n) => !regex || !c.holds(n).some((r) => regex.test(r)),
    },
    {
      constraint: "replicas_on_same",
      keep: (n) =>
        (filter.replicas_on_same ?? []).every((e) => {
          // Every replica must carry the key; with a value (given or decided), that value.
          const { key } = splitKeyValue(e);
          const want = rules.same.get(key);
          return n.props[key] !== undefined && (want === null || n.props[key] === want);
        }),
    },
    {
      constraint: "replicas_on_different",
      keep: (n) =>
        (filter.replicas_on_different ?? []).every((e) => {
          const { key, value } = splitKeyValue(e);
          return value === undefined || n.props[key] !== value;
        }),
    },
  ];
}

function poolStages(filter: AutoSelectFilter, sizeKib: number): Stage<PlacementPool>[] {
  const poolNames = [
    ...(filter.storage_pool !== undefined ? [filter.storage_pool] : []),
    ...(filter.storage_pool_list ?? []),
  ].map(lower);
  return [
    { constraint: "a diskful storage pool", keep: (p) => p.providerKind !== "DISKLESS" },
    {
      constraint: `storage pool ${poolNames.length > 0 ? poolNames.join(" or ") : "(any)"}`,
      keep: (p) => poolNames.length === 0 || poolNames.includes(lower(p.name)),
    },
    {
      constraint: "provider_list",
      keep: (p) => !filter.provider_list || filter.provider_list.includes(p.providerKind),
    },
    {
      constraint: `${sizeKib} KiB free`,
      keep: (p) => poolHasRoom(p, sizeKib, filter.overprovision),
    },
  ];
}

/**
 * Applies rules in order, recording how many nodes each leaves; stops at the first rule that
 * leaves fewer than `needed`. `nodesOf` counts distinct nodes (a node may have several pools).
 */
function funnelThrough<T>(
  c: Context,
  items: T[],
  stages: readonly Stage<T>[],
  needed: number,
  nodesOf: (items: T[]) => number,
): { ok: true; items: T[] } | { ok: false; result: PlacementResult } {
  let left = items;
  for (const stage of stages) {
    left = left.filter(stage.keep);
    const count = nodesOf(left);
    c.funnel.push(`${count} after: ${stage.constraint}`);
    if (count < needed) {
      return { ok: false, result: notEnough(stage.constraint, count, needed, c.funnel) };
    }
  }
  return { ok: true, items: left };
}

/** Each node with its best pool, ranked best first. */
function rankCandidates(nodes: PlacementNode[], pools: PlacementPool[]): Candidate[] {
  const best = new Map<string, PlacementPool>();
  for (const p of [...pools].sort(comparePools)) {
    if (!best.has(lower(p.node))) best.set(lower(p.node), p);
  }
  return nodes
    .flatMap((node) => {
      const pool = best.get(lower(node.name));
      return pool === undefined ? [] : [{ node, pool }];
    })
    .sort((a, b) => comparePools(a.pool, b.pool));
}

/** Diskless replicas: on every remaining satellite when asked, and the quorum tie-breaker. */
function addDiskless(
  c: Context,
  placements: Placement[],
  diskfulTotal: number,
): { tiebreakerMissing: boolean } {
  const { input, filter } = c;
  const taken = new Set([...c.ofRd, ...placements].map((r) => lower(r.node)));
  const wanted = (filter.storage_pool_diskless_list ?? []).map(lower);
  const disklessPool = (node: string): string | undefined => {
    const own = input.pools
      .filter((p) => lower(p.node) === lower(node) && p.providerKind === "DISKLESS")
      .sort((a, b) => byName(a.name, b.name));
    if (wanted.length === 0) return own[0]?.name;
    return own.find((p) => wanted.includes(lower(p.name)))?.name;
  };
  const spare = () =>
    [...input.nodes]
      .filter((n) => reachableSatellite(n) && !taken.has(lower(n.name)))
      .flatMap((n) => {
        const pool = disklessPool(n.name);
        return pool === undefined ? [] : [{ node: n, pool }];
      })
      .sort((a, b) => byName(a.node.name, b.node.name));
  if (filter.diskless_on_remaining === true) {
    for (const { node, pool } of spare()) {
      placements.push({ node: node.name, storagePool: pool, kind: "diskless" });
      taken.add(lower(node.name));
    }
  }
  const hasDiskless =
    c.ofRd.some((r) => isDiskless(r.flags)) || placements.some((p) => p.kind !== "diskful");
  if (!input.autoTiebreaker || diskfulTotal !== 2 || hasDiskless) {
    return { tiebreakerMissing: false };
  }
  // The node that carries the fewest resources, then by name: the vote costs it little.
  const load = (n: PlacementNode) => c.holds(n).length;
  const pick = spare().sort((a, b) => load(a.node) - load(b.node))[0];
  if (pick === undefined) return { tiebreakerMissing: true };
  placements.push({ node: pick.node.name, storagePool: pick.pool, kind: "tiebreaker" });
  return { tiebreakerMissing: false };
}

function chooseFailure(c: Context, candidates: number, needed: number): PlacementResult {
  const { filter } = c;
  const rule =
    (filter.replicas_on_different ?? []).length > 0 ||
    Object.keys(filter.x_replicas_on_different_map ?? {}).length > 0
      ? "replicas_on_different"
      : "replicas_on_same";
  c.funnel.push(`no ${needed} of the ${candidates} candidates satisfy ${rule} together`);
  return notEnough(rule, candidates, needed, c.funnel);
}

/** Decides where the replicas of `input.resourceDefinition` go. */
export function placeResource(input: PlacementInput): PlacementResult {
  const { filter } = input;
  const rd = lower(input.resourceDefinition);
  const ofRd = input.resources.filter((r) => lower(r.resourceDefinition) === rd);
  const rscOnNode = new Map<string, string[]>();
  for (const r of input.resources) {
    rscOnNode.set(lower(r.node), [
      ...(rscOnNode.get(lower(r.node)) ?? []),
      lower(r.resourceDefinition),
    ]);
  }
  const c: Context = {
    input,
    filter,
    rd,
    ofRd,
    holds: (n) => rscOnNode.get(lower(n.name)) ?? [],
    funnel: [],
  };
  const existingDiskful = ofRd
    .filter((r) => !isDiskless(r.flags))
    .map((r) => r.node)
    .sort(byName);
  const needed = additionalReplicaCount(filter, existingDiskful.length);
  if (needed === 0 && filter.diskless_on_remaining !== true) {
    // Already as requested: LINSTOR answers "already deployed" and changes nothing.
    return {
      ok: true,
      decision: { placements: [], existingDiskful, additionalCount: 0, tiebreakerMissing: false },
    };
  }
  const regex = compileRegex(filter.not_place_with_rsc_regex);
  if (regex === null) {
    const message = `The regular expression '${filter.not_place_with_rsc_regex}' is not valid.`;
    return failure("invalidFilter", "not_place_with_rsc_regex", 0, needed, message, c.funnel);
  }
  const nodeByName = new Map(input.nodes.map((n) => [lower(n.name), n]));
  const init = initRules(
    filter,
    existingDiskful.flatMap((n) => nodeByName.get(lower(n)) ?? []),
  );
  if (!init.ok) {
    const message =
      `The property '${init.key}' in replicas_on_same has different values on the existing ` +
      `replicas (${init.values.join(", ")}), so no value can be chosen.`;
    return failure("undecidable", "replicas_on_same", 0, needed, message, c.funnel);
  }

  c.funnel.push(`${input.nodes.length} nodes`);
  const sorted = [...input.nodes].sort((a, b) => byName(a.name, b.name));
  const nodes = funnelThrough(c, sorted, nodeStages(c, init.rules, regex), needed, (x) => x.length);
  if (!nodes.ok) return nodes.result;
  const names = new Set(nodes.items.map((n) => lower(n.name)));
  const sizeKib = input.volumeSizesKib.reduce((a, b) => a + b, 0);
  const pools = funnelThrough(
    c,
    input.pools.filter((p) => names.has(lower(p.node))),
    poolStages(filter, sizeKib),
    needed,
    (x) => new Set(x.map((p) => lower(p.node))).size,
  );
  if (!pools.ok) return pools.result;
  const candidates = rankCandidates(nodes.items, pools.items);
  const chosen = search(init.rules, candidates, needed);
  if (chosen === null) return chooseFailure(c, candidates.length, needed);

  const placements: Placement[] = chosen.map((x) => ({
    node: x.node.name,
    storagePool: x.pool.name,
    kind: "diskful",
  }));
  const { tiebreakerMissing } = addDiskless(c, placements, existingDiskful.length + chosen.length);
  return {
    ok: true,
    decision: { placements, existingDiskful, additionalCount: needed, tiebreakerMissing },
  };
}

function notEnough(
  constraint: string,
  candidates: number,
  needed: number,
  funnel: string[],
): PlacementResult {
  return failure(
    "notEnoughNodes",
    constraint,
    candidates,
    needed,
    `Not enough available nodes: ${needed} more diskful replica${needed === 1 ? "" : "s"} ` +
      `needed, ${candidates} candidate${candidates === 1 ? "" : "s"} left after ${constraint}.`,
    funnel,
  );
}
