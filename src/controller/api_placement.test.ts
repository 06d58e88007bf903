import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  arr,
  obj,
  OBJ,
  OP,
  PARSE_ERROR,
  rc,
  startTestController,
  type TestController,
} from "./test_client.js";
import { nothingObserved } from "./observed_state.js";

/** rc() has no info severity; INFO_* codes carry MASK_INFO. */
const info = (object: number, op: number, code: number): bigint =>
  BigInt.asIntN(64, 0x4000000000000000n | BigInt(op) | BigInt(object) | BigInt(code));

const created = rc("ok", OBJ.rsc, OP.crt, 1);
const tiebreakerCreated = info(OBJ.rsc, OP.crt, 10003);
const notEnoughNodes = rc("error", OBJ.rsc, OP.crt, 996);

let t: TestController;
before(async () => {
  t = await startTestController();
  // n1..n3 have file pools in zones a, a, b; n4 has only the diskless pool every node gets.
  const zones: Record<string, string> = { n1: "a", n2: "a", n3: "b", n4: "b" };
  for (const n of ["n1", "n2", "n3", "n4"]) {
    await t.call("POST", "/v1/nodes", {
      name: n,
      type: "satellite",
      props: { "Aux/zone": zones[n] },
      net_interfaces: [{ name: "default", address: "127.0.0.1" }],
    });
  }
  for (const n of ["n1", "n2", "n3"]) {
    await t.call("POST", `/v1/nodes/${n}/storage-pools`, {
      storage_pool_name: "DfltStorPool",
      provider_kind: "FILE_THIN",
    });
  }
});
after(() => t.close());

async function definition(name: string, props: Record<string, string> = {}): Promise<void> {
  const a = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name, props },
  });
  assert.equal(a.status, 201);
  await t.call("POST", `/v1/resource-definitions/${name}/volume-definitions`, {
    volume_definition: { size_kib: 1048576 },
  });
}

async function resources(rd: string): Promise<Record<string, unknown>[]> {
  const a = await t.call("GET", `/v1/resource-definitions/${rd}/resources`);
  return a.status === 200 ? arr(a.body).map(obj) : [];
}

const summary = (rs: Record<string, unknown>[]) =>
  rs.map((r) => `${String(r["node_name"])}:${(r["flags"] as string[]).join("+")}`);

test("autoplace: two replicas and a diskless tie-breaker, in one 201 answer", async () => {
  await definition("r1");
  const a = await t.call("POST", "/v1/resource-definitions/r1/autoplace", {
    select_filter: { place_count: "2" },
    diskless_on_remaining: null,
  });
  assert.equal(a.status, 201, a.text);
  assert.deepEqual(a.retCodes, [created, created, created, created, tiebreakerCreated]);
  const body = arr(a.body).map(obj);
  assert.equal(body[3]!["message"], "Resource 'r1' successfully autoplaced on 2 nodes");
  assert.equal(body[3]!["details"], "Used storage pool: 'DfltStorPool'\nUsed nodes: 'n1', 'n2'");
  assert.equal(body[4]!["message"], "Tie breaker resource 'r1' created on node 'n3'.");
  const rs = await resources("r1");
  assert.deepEqual(summary(rs), ["n1:", "n2:", "n3:DISKLESS+DRBD_DISKLESS+TIE_BREAKER"]);
  assert.deepEqual(rs[0]!["props"], { StorPoolName: "DfltStorPool" });
  const view = arr((await t.call("GET", "/v1/view/resources?resources=r1")).body).map(obj);
  const pools = view.map((r) => obj(arr(r["volumes"])[0])["storage_pool_name"]);
  assert.deepEqual(pools, ["DfltStorPool", "DfltStorPool", "DfltDisklessStorPool"]);
});

test("autoplace: asking again for what exists is a warning and changes nothing", async () => {
  const a = await t.call("POST", "/v1/resource-definitions/r1/autoplace", {
    select_filter: { place_count: 2 },
  });
  assert.deepEqual([a.status, a.retCodes], [201, [rc("warn", OBJ.rsc, OP.crt, 1006)]]);
  assert.equal(
    obj(arr(a.body)[0])["message"],
    "Resource 'r1' was already deployed on 2 nodes. Skipping.",
  );
  assert.equal((await resources("r1")).length, 3);
});

test("autoplace: more replicas than nodes fail with FAIL_NOT_ENOUGH_NODES and create none", async () => {
  await definition("r2");
  const a = await t.call("POST", "/v1/resource-definitions/r2/autoplace", {
    select_filter: { place_count: 4 },
  });
  assert.deepEqual([a.status, a.retCodes], [500, [notEnoughNodes]]);
  const e = obj(arr(a.body)[0]);
  assert.equal(
    e["message"],
    "Not enough available nodes: 4 more diskful replicas needed, 3 candidates left after " +
      "a diskful storage pool.",
  );
  assert.match(String(e["details"]), /^4 nodes\n/);
  assert.match(String(e["cause"]), /Rule 'a diskful storage pool' left 3 candidate/);
  assert.deepEqual(await resources("r2"), []);
});

test("autoplace: replicas_on_different spreads over zones; the tie-breaker avoids used nodes", async () => {
  const a = await t.call("POST", "/v1/resource-definitions/r2/autoplace", {
    select_filter: { place_count: 2, replicas_on_different: ["Aux/zone"] },
  });
  assert.equal(a.status, 201, a.text);
  // Ranked by name (capacity is unknown); the tie-breaker goes to the least loaded node.
  assert.deepEqual(summary(await resources("r2")), [
    "n1:",
    "n3:",
    "n4:DISKLESS+DRBD_DISKLESS+TIE_BREAKER",
  ]);
  const f = await t.call("POST", "/v1/resource-definitions/r2/autoplace", {
    select_filter: { place_count: 3, replicas_on_different: ["Aux/zone"] },
  });
  assert.deepEqual([f.status, f.retCodes], [500, [notEnoughNodes]]);
});

test("autoplace: filter rules and the tie-breaker property", async () => {
  await definition("r3", { "DrbdOptions/auto-add-quorum-tiebreaker": "False" });
  const a = await t.call("POST", "/v1/resource-definitions/r3/autoplace", {
    select_filter: { place_count: 2, not_place_with_rsc: ["r2"] },
  });
  assert.deepEqual([a.status, a.retCodes], [500, [notEnoughNodes]]);
  const b = await t.call("POST", "/v1/resource-definitions/r3/autoplace", {
    select_filter: {
      place_count: 1,
      not_place_with_rsc_regex: "R[12]",
      diskless_on_remaining: true,
    },
  });
  assert.equal(b.status, 500, "every file pool sits on a node with r1 or r2");
  const c = await t.call("POST", "/v1/resource-definitions/r3/autoplace", {
    select_filter: { place_count: 2, replicas_on_same: ["Aux/zone=a"] },
  });
  assert.deepEqual([c.status, c.retCodes], [201, [created, created, created]]);
  assert.deepEqual(summary(await resources("r3")), ["n1:", "n2:"], "no tie-breaker: disabled");
  const bad = await t.call("POST", "/v1/resource-definitions/r3/autoplace", {
    select_filter: { place_count: 3, not_place_with_rsc_regex: "(" },
  });
  assert.deepEqual([bad.status, bad.retCodes], [400, [PARSE_ERROR]]);
});

test("autoplace: diskless_on_remaining gives every other satellite a diskless replica", async () => {
  await definition("r4");
  const a = await t.call("POST", "/v1/resource-definitions/r4/autoplace", {
    select_filter: { place_count: 1, storage_pool: "DfltStorPool" },
    diskless_on_remaining: true,
  });
  assert.equal(a.status, 201, a.text);
  assert.deepEqual(summary(await resources("r4")), [
    "n1:",
    "n2:DISKLESS+DRBD_DISKLESS",
    "n3:DISKLESS+DRBD_DISKLESS",
    "n4:DISKLESS+DRBD_DISKLESS",
  ]);
});

test("autoplace: existing replicas in two zones make replicas_on_same undecidable", async () => {
  await definition("r5");
  const made = await t.call("POST", "/v1/resource-definitions/r5/resources", [
    { resource: { node_name: "n2" } },
    { resource: { node_name: "n3" } },
  ]);
  assert.equal(made.status, 201, made.text);
  const a = await t.call("POST", "/v1/resource-definitions/r5/autoplace", {
    select_filter: { place_count: 3, replicas_on_same: ["Aux/zone"] },
  });
  assert.deepEqual([a.status, a.retCodes], [500, [rc("error", OBJ.rsc, OP.crt, 985)]]);
  assert.match(String(obj(arr(a.body)[0])["message"]), /'Aux\/zone'.*\(a, b\)/);
  assert.equal((await resources("r5")).length, 2);
});

test("autoplace: bad requests are 400 or 404 with LINSTOR's codes", async () => {
  const missing = await t.call("POST", "/v1/resource-definitions/nope/autoplace", {
    select_filter: { place_count: 1 },
  });
  assert.deepEqual([missing.status, missing.retCodes], [404, [rc("error", OBJ.rd, OP.crt, 301)]]);
  const noFilter = await t.call("POST", "/v1/resource-definitions/r4/autoplace", {});
  assert.deepEqual([noFilter.status, noFilter.retCodes], [400, [PARSE_ERROR]]);
  const notJson = await t.call("POST", "/v1/resource-definitions/r4/autoplace", "{");
  assert.deepEqual([notJson.status, notJson.retCodes], [400, [PARSE_ERROR]]);
});

test("spawn: definition, volume definitions from the volume groups, and placement", async () => {
  await t.call("POST", "/v1/resource-groups", {
    name: "grp",
    select_filter: { place_count: 2, storage_pool: "DfltStorPool" },
  });
  await t.call("POST", "/v1/resource-groups/grp/volume-groups", {
    volume_number: 0,
    props: { "Aux/vg": "zero" },
  });
  const a = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s1",
    volume_sizes: [1048576],
    resource_definition_props: { "Aux/app": "db" },
  });
  assert.equal(a.status, 201, a.text);
  assert.deepEqual(a.retCodes, [
    rc("ok", OBJ.rd, OP.crt, 1),
    rc("ok", OBJ.vd, OP.crt, 1),
    created,
    created,
    created,
    created,
    tiebreakerCreated,
  ]);
  const rd = obj((await t.call("GET", "/v1/resource-definitions/s1")).body);
  assert.equal(rd["resource_group_name"], "grp");
  assert.deepEqual(rd["props"], { "Aux/app": "db" });
  const vd = obj((await t.call("GET", "/v1/resource-definitions/s1/volume-definitions/0")).body);
  assert.deepEqual([vd["size_kib"], vd["props"]], [1048576, { "Aux/vg": "zero" }]);
  assert.equal((await resources("s1")).length, 3);
});

test("spawn: overrides, definitions_only, and partial sizes", async () => {
  const only = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s2",
    volume_sizes: [2048, 4096],
    partial: true,
    definitions_only: true,
  });
  assert.deepEqual(
    [only.status, only.retCodes],
    [201, [rc("ok", OBJ.rd, OP.crt, 1), rc("ok", OBJ.vd, OP.crt, 1), rc("ok", OBJ.vd, OP.crt, 1)]],
  );
  const vds = arr((await t.call("GET", "/v1/resource-definitions/s2/volume-definitions")).body);
  assert.deepEqual(
    vds.map((v) => [obj(v)["volume_number"], obj(v)["size_kib"]]),
    [
      [0, 2048],
      [1, 4096],
    ],
  );
  assert.deepEqual(await resources("s2"), []);
  const one = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s3",
    volume_sizes: ["1024"],
    select_filter: { place_count: 1 },
  });
  assert.deepEqual([one.status, one.retCodes.length], [201, 4]);
  assert.deepEqual(summary(await resources("s3")), ["n1:"]);
});

test("spawn: a request that cannot be placed creates nothing at all", async () => {
  const a = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s4",
    volume_sizes: [1024],
    select_filter: { place_count: 5 },
  });
  assert.deepEqual([a.status, a.retCodes], [500, [notEnoughNodes]]);
  assert.equal((await t.call("GET", "/v1/resource-definitions/s4")).status, 404);
  const sizes = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s4",
    volume_sizes: [1024, 2048],
  });
  assert.deepEqual([sizes.status, sizes.retCodes], [500, [rc("error", OBJ.rg, OP.crt, 228)]]);
  const exists = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s1",
    volume_sizes: [1024],
  });
  assert.deepEqual([exists.status, exists.retCodes], [500, [rc("error", OBJ.rd, OP.crt, 501)]]);
  const noGroup = await t.call("POST", "/v1/resource-groups/nope/spawn", {
    resource_definition_name: "s4",
    volume_sizes: [1024],
  });
  assert.deepEqual([noGroup.status, noGroup.retCodes], [404, [rc("error", OBJ.rg, OP.crt, 317)]]);
  const badSize = await t.call("POST", "/v1/resource-groups/grp/spawn", {
    resource_definition_name: "s4",
    volume_sizes: [0],
  });
  assert.deepEqual([badSize.status, badSize.retCodes], [500, [rc("error", OBJ.vd, OP.crt, 206)]]);
  assert.equal((await t.call("GET", "/v1/resource-definitions/s4")).status, 404);
});

test("spawn: the placed state survives a controller restart", async () => {
  await t.restart();
  assert.deepEqual(summary(await resources("s1")), [
    "n1:",
    "n2:",
    "n4:DISKLESS+DRBD_DISKLESS+TIE_BREAKER",
  ]);
});

test("autoplace: reported free capacity balances, and a pool too small is passed over", async () => {
  // Satellites reported n1 nearly full (less than the 1 GiB volume), n3 the emptiest.
  const freeKib: Record<string, number> = { n1: 512 * 1024, n2: 8 << 20, n3: 16 << 20 };
  const observed = {
    ...nothingObserved,
    poolCapacity: (node: string, pool: string) =>
      pool === "DfltStorPool" && freeKib[node] !== undefined
        ? { freeKib: freeKib[node]!, totalKib: 32 << 20 }
        : undefined,
  };
  const c = await startTestController({ observed });
  try {
    for (const n of ["n1", "n2", "n3"]) {
      await c.call("POST", "/v1/nodes", {
        name: n,
        type: "satellite",
        net_interfaces: [{ name: "default", address: "127.0.0.1" }],
      });
      await c.call("POST", `/v1/nodes/${n}/storage-pools`, {
        storage_pool_name: "DfltStorPool",
        provider_kind: "FILE", // preallocated: free space limits it
      });
    }
    await c.call("POST", "/v1/resource-definitions", { resource_definition: { name: "cap" } });
    await c.call("POST", "/v1/resource-definitions/cap/volume-definitions", {
      volume_definition: { size_kib: 1048576 },
    });
    const one = await c.call("POST", "/v1/resource-definitions/cap/autoplace", {
      select_filter: { place_count: 1 },
    });
    assert.equal(one.status, 201);
    const placed = await c.call("GET", "/v1/resource-definitions/cap/resources");
    assert.deepEqual(
      arr(placed.body).map((r) => obj(r)["node_name"]),
      ["n3"],
      "the node with the most free capacity",
    );
    const three = await c.call("POST", "/v1/resource-definitions/cap/autoplace", {
      select_filter: { place_count: 3 },
    });
    assert.equal(
      three.status,
      500,
      "n1 cannot hold a preallocated 1 GiB, so three replicas do not fit",
    );
  } finally {
    await c.close();
  }
});
