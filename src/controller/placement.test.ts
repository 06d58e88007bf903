import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  additionalReplicaCount,
  placeResource,
  type PlacementDecision,
  type PlacementFailure,
  type PlacementInput,
  type PlacementNode,
  type PlacementPool,
  type PlacementResource,
} from "./placement.js";
import type { AutoSelectFilter, Props, ProviderKind } from "./store/store.js";

/** Fixed seed: property runs are reproducible, as every test here must be. */
const fcOptions = { seed: 0x6d697272, numRuns: 400 };

function node(name: string, props: Props = {}): PlacementNode {
  return { name, type: "SATELLITE", flags: [], props, netInterfaces: ["default"] };
}

function pool(
  nodeName: string,
  name = "sp",
  freeCapacityKib: number | null = null,
  providerKind: ProviderKind = "FILE",
): PlacementPool {
  return { node: nodeName, name, providerKind, freeCapacityKib, totalCapacityKib: null };
}

const diskless = (n: string): PlacementPool => pool(n, "DfltDisklessStorPool", null, "DISKLESS");

function rsc(rd: string, n: string, flags: string[] = []): PlacementResource {
  return { resourceDefinition: rd, node: n, storagePool: "sp", flags };
}

/** n nodes n1..nN, each with pool `sp` (unknown capacity) and the diskless pool. */
function cluster(count: number, props: (i: number) => Props = () => ({})): PlacementInput {
  const names = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  return {
    resourceDefinition: "r",
    nodes: names.map((n, i) => node(n, props(i))),
    pools: names.flatMap((n) => [pool(n), diskless(n)]),
    resources: [],
    filter: { place_count: 2 },
    volumeSizesKib: [1024],
    autoTiebreaker: false,
  };
}

function ok(input: PlacementInput): PlacementDecision {
  const r = placeResource(input);
  if (!r.ok) assert.fail(`placement failed: ${r.failure.message}\n${r.failure.details}`);
  return r.decision;
}

function fail(input: PlacementInput): PlacementFailure {
  const r = placeResource(input);
  if (r.ok) assert.fail(`placement succeeded: ${JSON.stringify(r.decision)}`);
  return r.failure;
}

const diskfulNodes = (d: PlacementDecision) =>
  d.placements.filter((p) => p.kind === "diskful").map((p) => p.node);

// ---- examples, one per rule ----

test("placement: place_count picks that many nodes, by name when capacity is unknown", () => {
  const d = ok({ ...cluster(4), filter: { place_count: 3 } });
  assert.deepEqual(diskfulNodes(d), ["n1", "n2", "n3"]);
  assert.deepEqual(
    d.placements.map((p) => p.storagePool),
    ["sp", "sp", "sp"],
  );
});

test("placement: balanced by free capacity, most free first; unknown after known", () => {
  const input = cluster(4);
  input.pools = [
    pool("n1", "sp", 2000),
    pool("n2", "sp", 5000),
    pool("n3", "sp", null),
    pool("n4", "sp", 5000),
  ];
  assert.deepEqual(diskfulNodes(ok({ ...input, filter: { place_count: 3 } })), ["n2", "n4", "n1"]);
  assert.deepEqual(diskfulNodes(ok({ ...input, filter: { place_count: 4 } })), [
    "n2",
    "n4",
    "n1",
    "n3",
  ]);
});

test("placement: a node's best pool is used; storage_pool and storage_pool_list restrict", () => {
  const input = cluster(2);
  input.volumeSizesKib = [];
  input.pools = [
    pool("n1", "hdd", 10_000),
    pool("n1", "ssd", 20_000),
    pool("n2", "hdd", 30_000),
    pool("n2", "ssd", 1_000),
  ];
  assert.deepEqual(
    ok(input).placements.map((p) => `${p.node}:${p.storagePool}`),
    ["n2:hdd", "n1:ssd"],
  );
  const ssd = ok({ ...input, filter: { place_count: 2, storage_pool: "SSD" } });
  assert.deepEqual(
    ssd.placements.map((p) => `${p.node}:${p.storagePool}`),
    ["n1:ssd", "n2:ssd"],
  );
  const list = ok({ ...input, filter: { place_count: 2, storage_pool_list: ["hdd"] } });
  assert.deepEqual(
    list.placements.map((p) => `${p.node}:${p.storagePool}`),
    ["n2:hdd", "n1:hdd"],
  );
  const none = fail({ ...input, filter: { place_count: 2, storage_pool: "nvme" } });
  assert.equal(none.constraint, "storage pool nvme");
  assert.equal(none.candidates, 0);
});

test("placement: pools without room are skipped; thin pools only with overprovision", () => {
  const input = cluster(3);
  input.volumeSizesKib = [600, 600];
  input.pools = [
    pool("n1", "sp", 1000),
    pool("n2", "sp", 2000),
    pool("n3", "sp", 100, "FILE_THIN"),
  ];
  assert.deepEqual(diskfulNodes(ok(input)), ["n2", "n3"]);
  const f = fail({ ...input, filter: { place_count: 2, overprovision: 2 } });
  assert.equal(f.reason, "notEnoughNodes");
  assert.equal(f.constraint, "1200 KiB free");
  assert.equal(f.candidates, 1);
  assert.equal(f.needed, 2);
  assert.match(f.details, /1 after: 1200 KiB free/);
  assert.deepEqual(diskfulNodes(ok({ ...input, filter: { place_count: 2, overprovision: 20 } })), [
    "n2",
    "n3",
  ]);
});

test("placement: provider_list restricts pool kinds", () => {
  const input = cluster(3);
  input.pools = [pool("n1", "a", null, "LVM"), pool("n2", "b"), pool("n3", "c", null, "LVM")];
  const d = ok({ ...input, filter: { place_count: 2, provider_list: ["LVM"] } });
  assert.deepEqual(diskfulNodes(d), ["n1", "n3"]);
});

test("placement: replicas_on_same keeps replicas in one zone", () => {
  const zones = ["a", "b", "b", "a", "b"];
  const input = cluster(5, (i) => ({ "Aux/zone": zones[i]! }));
  const d = ok({ ...input, filter: { place_count: 3, replicas_on_same: ["Aux/zone"] } });
  assert.deepEqual(diskfulNodes(d), ["n2", "n3", "n5"], "zone a has only two nodes");
  const a = ok({ ...input, filter: { place_count: 2, replicas_on_same: ["Aux/zone=a"] } });
  assert.deepEqual(diskfulNodes(a), ["n1", "n4"]);
  const f = fail({ ...input, filter: { place_count: 3, replicas_on_same: ["Aux/zone=a"] } });
  assert.deepEqual([f.constraint, f.candidates, f.needed], ["replicas_on_same", 2, 3]);
  // Existing replicas decide the value.
  input.resources = [rsc("r", "n4")];
  const more = ok({ ...input, filter: { place_count: 2, replicas_on_same: ["Aux/zone"] } });
  assert.deepEqual(diskfulNodes(more), ["n1"]);
});

test("placement: replicas_on_same whose existing replicas disagree is undecidable", () => {
  const input = cluster(3, (i) => ({ "Aux/zone": `z${i}` }));
  input.resources = [rsc("r", "n1"), rsc("r", "n2")];
  const f = fail({ ...input, filter: { place_count: 3, replicas_on_same: ["Aux/zone"] } });
  assert.equal(f.reason, "undecidable");
  assert.match(f.message, /z0, z1/);
});

test("placement: replicas_on_different spreads over zones; key=value forbids one", () => {
  const zones = ["a", "a", "b", "b", "c"];
  const input = cluster(5, (i) => ({ "Aux/zone": zones[i]! }));
  const d = ok({ ...input, filter: { place_count: 3, replicas_on_different: ["Aux/zone"] } });
  assert.deepEqual(diskfulNodes(d), ["n1", "n3", "n5"]);
  const f = fail({ ...input, filter: { place_count: 4, replicas_on_different: ["Aux/zone"] } });
  assert.equal(f.constraint, "replicas_on_different");
  assert.equal(f.candidates, 5);
  const notB = ok({
    ...input,
    filter: { place_count: 2, replicas_on_different: ["Aux/zone=b"] },
  });
  assert.deepEqual(diskfulNodes(notB), ["n1", "n5"]);
  // An existing replica in zone a leaves b and c.
  input.resources = [rsc("r", "n2")];
  const more = ok({ ...input, filter: { place_count: 3, replicas_on_different: ["Aux/zone"] } });
  assert.deepEqual(diskfulNodes(more), ["n3", "n5"]);
});

test("placement: x_replicas_on_different_map allows N per zone, one group partly filled", () => {
  const zones = ["a", "a", "a", "b", "b", "c"];
  const input = cluster(6, (i) => ({ "Aux/site": zones[i]! }));
  const filter: AutoSelectFilter = {
    place_count: 3,
    replicas_on_different: ["Aux/site"],
    x_replicas_on_different_map: { "Aux/site": 2 },
  };
  // n1, n2 fill site a; then n3 (a) is full, n4 starts site b: one partial group.
  assert.deepEqual(diskfulNodes(ok({ ...input, filter })), ["n1", "n2", "n4"]);
  const four = ok({ ...input, filter: { ...filter, place_count: 4 } });
  assert.deepEqual(diskfulNodes(four), ["n1", "n2", "n4", "n5"]);
  // Five fill a and b, and leave c the one partly filled group.
  const five = ok({ ...input, filter: { ...filter, place_count: 5 } });
  assert.deepEqual(diskfulNodes(five), ["n1", "n2", "n4", "n5", "n6"]);
  // One node per site: any two replicas leave two groups partly filled, which LINSTOR rejects.
  const spread = cluster(3, (i) => ({ "Aux/site": ["a", "b", "c"][i]! }));
  const f = fail({ ...spread, filter: { ...filter, place_count: 2 } });
  assert.equal(f.reason, "notEnoughNodes");
  assert.equal(f.constraint, "replicas_on_different");
});

test("placement: not_place_with_rsc and not_place_with_rsc_regex avoid nodes", () => {
  const input = cluster(4);
  input.resources = [rsc("db-1", "n1"), rsc("DB-2", "n2"), rsc("web", "n3")];
  const a = ok({ ...input, filter: { place_count: 2, not_place_with_rsc: ["web", "db-1"] } });
  assert.deepEqual(diskfulNodes(a), ["n2", "n4"]);
  const b = ok({ ...input, filter: { place_count: 2, not_place_with_rsc_regex: "db-.*" } });
  assert.deepEqual(diskfulNodes(b), ["n3", "n4"]);
  const f = fail({ ...input, filter: { place_count: 3, not_place_with_rsc_regex: "db-.*" } });
  assert.deepEqual([f.constraint, f.candidates], ["not_place_with_rsc_regex", 2]);
  assert.equal(
    fail({ ...input, filter: { not_place_with_rsc_regex: "(" } }).reason,
    "invalidFilter",
  );
});

test("placement: existing replicas count toward place_count and are kept", () => {
  const input = cluster(4);
  input.resources = [rsc("r", "n2"), rsc("r", "n3", ["DISKLESS", "DRBD_DISKLESS"])];
  const d = ok({ ...input, filter: { place_count: 3 } });
  assert.deepEqual(d.existingDiskful, ["n2"]);
  assert.deepEqual(diskfulNodes(d), ["n1", "n4"], "n3 holds a diskless replica already");
  const done = ok({ ...input, filter: { place_count: 1 } });
  assert.deepEqual(done.placements, []);
  const extra = ok({ ...input, filter: { place_count: 1, additional_place_count: 1 } });
  assert.deepEqual(diskfulNodes(extra), ["n1"]);
  assert.equal(additionalReplicaCount({}, 0), 2, "LINSTOR's default place count");
});

test("placement: only reachable satellites; node_name_list restricts", () => {
  const input = cluster(4);
  input.nodes = [
    { ...node("n1"), type: "CONTROLLER" },
    { ...node("n2"), flags: ["EVICTED"] },
    { ...node("n3"), netInterfaces: [] },
    node("n4"),
  ];
  const f = fail(input);
  assert.deepEqual([f.constraint, f.candidates, f.needed], ["a reachable satellite", 1, 2]);
  assert.match(f.message, /2 more diskful replicas needed, 1 candidate left/);
  const all = cluster(4);
  const d = ok({ ...all, filter: { place_count: 2, node_name_list: ["N4", "n3"] } });
  assert.deepEqual(diskfulNodes(d), ["n3", "n4"]);
});

test("placement: diskless_on_remaining puts a diskless replica on every other satellite", () => {
  const input = cluster(4);
  input.pools = input.pools.filter((p) => !(p.node === "n4" && p.providerKind === "DISKLESS"));
  const d = ok({ ...input, filter: { place_count: 1, diskless_on_remaining: true } });
  assert.deepEqual(
    d.placements.map((p) => `${p.kind}:${p.node}:${p.storagePool}`),
    ["diskful:n1:sp", "diskless:n2:DfltDisklessStorPool", "diskless:n3:DfltDisklessStorPool"],
  );
});

test("placement: two diskful replicas get a diskless tie-breaker on a third node", () => {
  const input = { ...cluster(4), autoTiebreaker: true };
  input.resources = [rsc("other", "n3")];
  const d = ok(input);
  assert.deepEqual(
    d.placements.map((p) => `${p.kind}:${p.node}`),
    ["diskful:n1", "diskful:n2", "tiebreaker:n4"],
    "n4 carries fewer resources than n3",
  );
  assert.equal(ok({ ...input, filter: { place_count: 3 } }).placements.length, 3);
  const two = ok({ ...cluster(2), autoTiebreaker: true });
  assert.equal(two.tiebreakerMissing, true);
  assert.equal(ok({ ...cluster(3), autoTiebreaker: false }).placements.length, 2);
  // A diskless replica already gives the third vote.
  const withClient = { ...cluster(3), autoTiebreaker: true };
  withClient.resources = [rsc("r", "n3", ["DISKLESS"])];
  assert.deepEqual(
    ok(withClient).placements.map((p) => p.kind),
    ["diskful", "diskful"],
  );
});

// ---- properties ----

const zoneArb = fc.option(fc.constantFrom("a", "b", "c"), { nil: undefined });
const capacityArb = fc.option(fc.integer({ min: 0, max: 4096 }), { nil: null });

const inputArb: fc.Arbitrary<PlacementInput> = fc
  .record({
    nodes: fc.array(fc.record({ zone: zoneArb, rack: zoneArb, reachable: fc.boolean() }), {
      minLength: 0,
      maxLength: 7,
    }),
    pools: fc.array(
      fc.record({
        node: fc.nat(6),
        name: fc.constantFrom("sp1", "sp2"),
        kind: fc.constantFrom<ProviderKind>("FILE", "FILE_THIN", "LVM"),
        free: capacityArb,
      }),
      { maxLength: 12 },
    ),
    existing: fc.array(fc.record({ rd: fc.constantFrom("r", "o1", "o2"), node: fc.nat(6) }), {
      maxLength: 6,
    }),
    placeCount: fc.integer({ min: 1, max: 5 }),
    different: fc.constantFrom<string[] | undefined>(undefined, ["Aux/zone"], ["Aux/zone=a"]),
    same: fc.constantFrom<string[] | undefined>(undefined, ["Aux/rack"], ["Aux/rack=b"]),
    avoid: fc.constantFrom<string[] | undefined>(undefined, ["o1"]),
    storagePool: fc.constantFrom<string | undefined>(undefined, "sp1"),
    sizes: fc.array(fc.integer({ min: 1, max: 2048 }), { maxLength: 2 }),
    tiebreaker: fc.boolean(),
    disklessOnRemaining: fc.boolean(),
  })
  .map((g) => {
    const names = g.nodes.map((_, i) => `n${i}`);
    const nodes = g.nodes.map((n, i) => {
      const props: Props = {};
      if (n.zone !== undefined) props["Aux/zone"] = n.zone;
      if (n.rack !== undefined) props["Aux/rack"] = n.rack;
      return { ...node(names[i]!, props), netInterfaces: n.reachable ? ["default"] : [] };
    });
    const seen = new Set<string>();
    const pools = g.pools
      .filter((p) => p.node < names.length)
      .map((p) => pool(names[p.node]!, p.name, p.free, p.kind))
      .filter((p) => !seen.has(`${p.node}/${p.name}`) && seen.add(`${p.node}/${p.name}`));
    pools.push(...names.map(diskless));
    const taken = new Set<string>();
    const resources = g.existing
      .filter((e) => e.node < names.length)
      .map((e) => rsc(e.rd, names[e.node]!))
      .filter((r) => !taken.has(`${r.resourceDefinition}/${r.node}`))
      .filter((r) => taken.add(`${r.resourceDefinition}/${r.node}`));
    const filter: AutoSelectFilter = { place_count: g.placeCount };
    if (g.different) filter.replicas_on_different = g.different;
    if (g.same) filter.replicas_on_same = g.same;
    if (g.avoid) filter.not_place_with_rsc = g.avoid;
    if (g.storagePool) filter.storage_pool = g.storagePool;
    if (g.disklessOnRemaining) filter.diskless_on_remaining = true;
    return {
      resourceDefinition: "r",
      nodes,
      pools,
      resources,
      filter,
      volumeSizesKib: g.sizes,
      autoTiebreaker: g.tiebreaker,
    };
  });

const existingOf = (input: PlacementInput) =>
  input.resources.filter((r) => r.resourceDefinition === "r").map((r) => r.node);

test("placement: never two replicas on one node, never on a node that has one (property)", () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const r = placeResource(input);
      if (!r.ok) return;
      const nodes = r.decision.placements.map((p) => p.node);
      assert.equal(new Set(nodes).size, nodes.length);
      for (const n of existingOf(input)) assert.ok(!nodes.includes(n), `${n} already had one`);
    }),
    fcOptions,
  );
});

test("placement: place_count is met exactly, or the failure says why (property)", () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const r = placeResource(input);
      const existing = existingOf(input).length;
      const wanted = Math.max(input.filter.place_count ?? 0, existing);
      if (r.ok) {
        assert.deepEqual([...r.decision.existingDiskful].sort(), [...existingOf(input)].sort());
        assert.equal(existing + diskfulNodes(r.decision).length, wanted);
      } else {
        assert.ok(r.failure.needed === wanted - existing);
        assert.ok(r.failure.message.length > 0 && r.failure.constraint.length > 0);
        if (r.failure.reason === "notEnoughNodes") {
          assert.ok(r.failure.candidates >= 0);
          assert.match(r.failure.message, new RegExp(r.failure.constraint.replace(/\W/g, ".")));
        }
      }
    }),
    fcOptions,
  );
});

test("placement: every rule of the filter holds for the new replicas (property)", () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const r = placeResource(input);
      if (!r.ok) return;
      const byName = new Map(input.nodes.map((n) => [n.name, n]));
      const placed = r.decision.placements.filter((p) => p.kind === "diskful");
      const all = [...existingOf(input), ...placed.map((p) => p.node)];
      const props = (n: string) => byName.get(n)!.props;
      const f = input.filter;
      if (f.replicas_on_different?.[0] === "Aux/zone") {
        const values = all.map((n) => props(n)["Aux/zone"]).filter((v) => v !== undefined);
        const fresh = placed.map((p) => props(p.node)["Aux/zone"]).filter((v) => v !== undefined);
        // Existing replicas may already share a zone; new ones never join a used zone.
        for (const v of fresh) assert.equal(values.filter((x) => x === v).length, 1);
      }
      if (f.replicas_on_different?.[0] === "Aux/zone=a") {
        for (const p of placed) assert.notEqual(props(p.node)["Aux/zone"], "a");
      }
      if (f.replicas_on_same !== undefined) {
        const values = new Set<string | undefined>(placed.map((p) => props(p.node)["Aux/rack"]));
        assert.ok(!values.has(undefined));
        assert.ok(values.size <= 1);
        if (f.replicas_on_same[0] === "Aux/rack=b" && existingOf(input).length === 0) {
          for (const v of values) assert.equal(v, "b");
        }
      }
      for (const p of placed) {
        const pl = input.pools.find((x) => x.node === p.node && x.name === p.storagePool)!;
        assert.notEqual(pl.providerKind, "DISKLESS");
        if (f.storage_pool !== undefined) assert.equal(pl.name, f.storage_pool);
        const size = input.volumeSizesKib.reduce((a, b) => a + b, 0);
        if (pl.providerKind !== "FILE_THIN" && pl.freeCapacityKib !== null) {
          assert.ok(pl.freeCapacityKib >= size);
        }
        if (f.not_place_with_rsc) {
          assert.ok(
            !input.resources.some((x) => x.node === p.node && x.resourceDefinition === "o1"),
          );
        }
        assert.ok(byName.get(p.node)!.netInterfaces.length > 0);
      }
      for (const p of r.decision.placements.filter((x) => x.kind !== "diskful")) {
        const pl = input.pools.find((x) => x.node === p.node && x.name === p.storagePool)!;
        assert.equal(pl.providerKind, "DISKLESS");
      }
      const ties = r.decision.placements.filter((p) => p.kind === "tiebreaker");
      assert.ok(ties.length <= 1);
      if (ties.length === 1) assert.equal(all.length, 2);
    }),
    fcOptions,
  );
});

test("placement: deterministic, whatever the order of nodes, pools and resources (property)", () => {
  fc.assert(
    fc.property(inputArb, fc.integer(), (input, salt) => {
      const shuffle = <T>(xs: readonly T[]): T[] =>
        xs
          .map((x, i) => ({ x, k: (i * 7919 + salt) % 97 }))
          .sort((a, b) => a.k - b.k)
          .map((e) => e.x);
      const again = {
        ...input,
        nodes: shuffle(input.nodes),
        pools: shuffle(input.pools),
        resources: shuffle(input.resources),
      };
      assert.deepEqual(placeResource(again), placeResource(input));
    }),
    fcOptions,
  );
});

test("placement: fails only when no valid selection exists (property, brute force)", () => {
  // A naive model: try every subset of eligible nodes for replicas_on_different on one key.
  fc.assert(
    fc.property(inputArb, (input) => {
      const f = { ...input.filter };
      delete f.replicas_on_same;
      delete f.diskless_on_remaining;
      const simple = { ...input, filter: f };
      const r = placeResource(simple);
      if (r.ok || r.failure.reason !== "notEnoughNodes") return;
      const existing = existingOf(simple);
      const size = simple.volumeSizesKib.reduce((a, b) => a + b, 0);
      const eligible = simple.nodes.filter(
        (n) =>
          n.netInterfaces.length > 0 &&
          !existing.includes(n.name) &&
          !(f.not_place_with_rsc ?? []).some((o) =>
            simple.resources.some((x) => x.node === n.name && x.resourceDefinition === o),
          ) &&
          simple.pools.some(
            (p) =>
              p.node === n.name &&
              p.providerKind !== "DISKLESS" &&
              (f.storage_pool === undefined || p.name === f.storage_pool) &&
              (p.providerKind === "FILE_THIN" ||
                p.freeCapacityKib === null ||
                p.freeCapacityKib >= size),
          ) &&
          !(f.replicas_on_different?.[0] === "Aux/zone=a" && n.props["Aux/zone"] === "a"),
      );
      const need = r.failure.needed;
      // Both forms make Aux/zone a different-key; "=a" also forbids zone a (LINSTOR's rule).
      const zoneKey = f.replicas_on_different !== undefined;
      const used = new Set(
        existing.flatMap((n) => {
          const z = simple.nodes.find((x) => x.name === n)?.props["Aux/zone"];
          return z === undefined ? [] : [z];
        }),
      );
      const fits = (pick: PlacementNode[]) => {
        if (!zoneKey) return true;
        const zones = pick.flatMap((n) => n.props["Aux/zone"] ?? []);
        return new Set(zones).size === zones.length && zones.every((z) => !used.has(z));
      };
      const anySubset = (from: number, pick: PlacementNode[]): boolean =>
        pick.length === need
          ? fits(pick)
          : eligible.slice(from).some((n, i) => anySubset(from + i + 1, [...pick, n]));
      assert.ok(!anySubset(0, []), `a selection exists but placement said: ${r.failure.message}`);
    }),
    fcOptions,
  );
});
