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

let t: TestController;
before(async () => {
  t = await startTestController();
  // n1 and n2 have the pool "fast"; n3 only its diskless pool.
  for (const n of ["n1", "n2", "n3"]) {
    await t.call("POST", "/v1/nodes", {
      name: n,
      type: "SATELLITE",
      net_interfaces: [{ name: "default", address: "127.0.0.1" }],
    });
  }
  for (const n of ["n1", "n2"]) {
    await t.call("POST", `/v1/nodes/${n}/storage-pools`, {
      storage_pool_name: "fast",
      provider_kind: "FILE_THIN",
    });
  }
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "r1" } });
  await t.call("POST", "/v1/resource-definitions/r1/volume-definitions", {
    volume_definition: { size_kib: 1024 },
  });
  await t.call("POST", "/v1/resource-definitions/r1/volume-definitions", {
    volume_definition: { size_kib: 2048 },
  });
  const placed = await t.call("POST", "/v1/resource-definitions/r1/resources", [
    { resource: { node_name: "n1", props: { StorPoolName: "fast" } } },
    { resource: { node_name: "n2", props: { StorPoolName: "fast" } } },
    { resource: { node_name: "n3", flags: ["TIE_BREAKER", "DRBD_DISKLESS"] } },
  ]);
  assert.equal(placed.status, 201, placed.text);
});
after(() => t.close());

const path = (node: string, rest = ""): string =>
  `/v1/resource-definitions/r1/resources/${node}/toggle-disk${rest}`;

async function resource(node: string): Promise<Record<string, unknown>> {
  const view = arr((await t.call("GET", `/v1/view/resources?resources=r1&nodes=${node}`)).body);
  assert.equal(view.length, 1);
  return obj(view[0]);
}

const pools = (r: Record<string, unknown>): unknown[] =>
  arr(r["volumes"]).map((v) => obj(v)["storage_pool_name"]);

test("toggle-disk: a diskful replica goes diskless (the 1.27 CLI's path)", async () => {
  const a = await t.call("PUT", path("n2", "/diskless"));
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(a.retCodes, [rc("ok", OBJ.rsc, OP.mod, 3)]);
  assert.match(a.text, /Removal of disk from resource 'r1' on node 'n2' registered/);
  const r = await resource("n2");
  assert.deepEqual(r["flags"], ["DISKLESS", "DRBD_DISKLESS"]);
  assert.equal(obj(r["props"])["StorPoolName"], "DfltDisklessStorPool");
  assert.equal(obj(r["props"])["Mirra/DiskJoinsPeers"], undefined);
  assert.deepEqual(pools(r), ["DfltDisklessStorPool", "DfltDisklessStorPool"]);
});

test("toggle-disk: the last diskful replica cannot go diskless; nothing changes", async () => {
  const before = (await t.call("GET", "/v1/view/resources")).text;
  const a = await t.call("PUT", path("n1", "/diskless"));
  assert.equal(a.status, 500);
  assert.deepEqual(a.retCodes, [rc("error", OBJ.rsc, OP.mod, 991)]);
  assert.match(a.text, /only resource of 'r1' with a disk/);
  const b = await t.call("PUT", path("n1"), { operation: "INTO_DRBD_CLIENT" });
  assert.deepEqual(b.retCodes, [rc("error", OBJ.rsc, OP.mod, 991)]);
  assert.equal((await t.call("GET", "/v1/view/resources")).text, before);
});

test("toggle-disk: into the state it is in is a warning, and changes nothing", async () => {
  const a = await t.call("PUT", path("n2", "/diskless"));
  assert.equal(a.status, 200);
  assert.deepEqual(a.retCodes, [rc("warn", OBJ.rsc, OP.mod, 1008)]);
  const b = await t.call("PUT", path("n1", "/diskful"));
  assert.deepEqual(b.retCodes, [rc("warn", OBJ.rsc, OP.mod, 1007)]);
});

test("toggle-disk: the target pool must exist on the node and be of the right kind", async () => {
  const missing = await t.call("PUT", path("n2", "/diskful/nope"));
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.retCodes, [rc("error", OBJ.rsc, OP.mod, 310)]);
  assert.match(missing.text, /Storage pool 'nope' on node 'n2' not found/);
  assert.match(missing.text, /"correction":/);

  const diskless = await t.call("PUT", path("n2", "/diskful/DfltDisklessStorPool"));
  assert.equal(diskless.status, 500);
  assert.deepEqual(diskless.retCodes, [rc("error", OBJ.rsc, OP.mod, 208)]);

  // No pool named, no group default, no DfltStorPool on n3.
  const dflt = await t.call("PUT", path("n3", "/diskful"));
  assert.equal(dflt.status, 404);
  assert.deepEqual(dflt.retCodes, [rc("error", OBJ.rsc, OP.mod, 311)]);
});

test("toggle-disk: back to diskful (1.28 body) moves every volume to the pool", async () => {
  const a = await t.call("PUT", path("N2"), {
    operation: "into_drbd_diskful",
    storage_pool: "fast",
    layer_list: ["drbd", "storage"],
  });
  assert.equal(a.status, 200, a.text);
  assert.match(a.text, /Addition of disk to resource 'r1' on node 'n2' registered/);
  const r = await resource("n2");
  assert.deepEqual(r["flags"], []);
  assert.equal(obj(r["props"])["StorPoolName"], "fast");
  // The new disk joins peers that hold data: its satellite creates it Inconsistent.
  assert.equal(obj(r["props"])["Mirra/DiskJoinsPeers"], "true");
  assert.deepEqual(pools(r), ["fast", "fast"]);

  // With two disks, n1 may go diskless, but not into a pool that has disks.
  const wrongKind = await t.call("PUT", path("n1"), {
    operation: "INTO_DRBD_DISKLESS",
    storage_pool: "fast",
  });
  assert.equal(wrongKind.status, 500);
  assert.deepEqual(wrongKind.retCodes, [rc("error", OBJ.rsc, OP.mod, 208)]);
});

test("toggle-disk: a tie-breaker that gets a disk is a plain replica", async () => {
  await t.call("POST", "/v1/nodes/n3/storage-pools", {
    storage_pool_name: "fast",
    provider_kind: "FILE",
  });
  const a = await t.call("PUT", path("n3", "/diskful/fast"), { layer_list: ["DRBD"] });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual((await resource("n3"))["flags"], []);
});

test("toggle-disk: bad requests", async () => {
  const noOp = await t.call("PUT", path("n1"), {});
  assert.equal(noOp.status, 400);
  assert.deepEqual(noOp.retCodes, [PARSE_ERROR]);
  const badOp = await t.call("PUT", path("n1"), { operation: "INTO_NOTHING" });
  assert.deepEqual([badOp.status, badOp.retCodes], [400, [PARSE_ERROR]]);
  const badLayer = await t.call("PUT", path("n1", "/diskful"), { layer_list: ["ZRAM"] });
  assert.deepEqual([badLayer.status, badLayer.retCodes], [500, [rc("error", OBJ.rd, OP.mod, 224)]]);
  const migrate = await t.call("PUT", path("n1"), {
    operation: "INTO_DRBD_DISKFUL",
    migrate_from: "n2",
  });
  assert.equal(migrate.status, 501);
  const noRsc = await t.call(
    "PUT",
    "/v1/resource-definitions/r1/resources/nX/toggle-disk/diskless",
  );
  assert.equal(noRsc.status, 404);
  assert.deepEqual(noRsc.retCodes, [rc("error", OBJ.rsc, OP.mod, 302)]);
  const noRd = await t.call("PUT", "/v1/resource-definitions/rX/resources/n1/toggle-disk/diskless");
  assert.deepEqual(noRd.retCodes, [rc("error", OBJ.rd, OP.mod, 301)]);
});
