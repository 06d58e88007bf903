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
  testNowMs,
  type TestController,
} from "./test_client.js";

let t: TestController;
before(async () => {
  t = await startTestController();
  // Three nodes; n1 and n2 have the default pool, n3 only a named one.
  for (const n of ["n1", "n2", "n3"]) {
    await t.call("POST", "/v1/nodes", {
      name: n,
      type: "SATELLITE",
      net_interfaces: [{ name: "default", address: "127.0.0.1" }],
    });
  }
  for (const n of ["n1", "n2"]) {
    await t.call("POST", `/v1/nodes/${n}/storage-pools`, {
      storage_pool_name: "DfltStorPool",
      provider_kind: "FILE_THIN",
    });
  }
  await t.call("POST", "/v1/nodes/n3/storage-pools", {
    storage_pool_name: "ssd",
    provider_kind: "FILE",
  });
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "r1" } });
  await t.call("POST", "/v1/resource-definitions/r1/volume-definitions", {
    volume_definition: { size_kib: 1048576 },
  });
  await t.call("POST", "/v1/resource-definitions/r1/volume-definitions", {
    volume_definition: { size_kib: 2048 },
  });
});
after(() => t.close());

test("resources: create from a list, all in one answer with one ret code each", async () => {
  const a = await t.call("POST", "/v1/resource-definitions/r1/resources", [
    { resource: { node_name: "n1" } },
    { resource: { node_name: "N2", props: { "Aux/a": "b" } } },
  ]);
  assert.equal(a.status, 201);
  assert.deepEqual(a.retCodes, [rc("ok", OBJ.rsc, OP.crt, 1), rc("ok", OBJ.rsc, OP.crt, 1)]);
  const list = arr((await t.call("GET", "/v1/resource-definitions/r1/resources")).body).map((r) =>
    obj(r),
  );
  assert.deepEqual(
    list.map((r) => r["node_name"]),
    ["n1", "n2"],
  );
  const r2 = list[1]!;
  assert.equal(r2["name"], "r1");
  assert.deepEqual(r2["props"], { "Aux/a": "b" });
  assert.equal(r2["create_timestamp"], testNowMs);
  assert.equal(r2["volumes"], undefined, "the plain list has no volumes; the view does");
  const layer = obj(r2["layer_object"]);
  assert.equal(layer["type"], "DRBD");
  assert.equal(obj(layer["drbd"])["node_id"], 1);
  assert.equal(obj(arr(layer["children"])[0])["type"], "STORAGE");
});

test("resources: a list with one bad entry creates none of them", async () => {
  const a = await t.call("POST", "/v1/resource-definitions/r1/resources", [
    { resource: { node_name: "n3", props: { StorPoolName: "ssd" } } },
    { resource: { node_name: "n1" } },
  ]);
  assert.deepEqual([a.status, a.retCodes], [500, [rc("error", OBJ.rsc, OP.crt, 502)]]);
  assert.equal((await t.call("GET", "/v1/resource-definitions/r1/resources/n3")).status, 404);
  for (const body of [
    "{}",
    "[]",
    "[1]",
    JSON.stringify([{ resource: {} }]),
    JSON.stringify([{ resource: { node_name: "n3", flags: ["bogus"] } }]),
  ]) {
    const bad = await t.call("POST", "/v1/resource-definitions/r1/resources", body);
    assert.deepEqual([bad.status, bad.retCodes], [400, [PARSE_ERROR]], body);
  }
});

test("resources: single create takes the node from the path; pools and node-ids are resolved", async () => {
  const noDefault = await t.call("POST", "/v1/resource-definitions/r1/resources/n3", {});
  assert.deepEqual(
    [noDefault.status, noDefault.retCodes],
    [404, [rc("error", OBJ.rsc, OP.crt, 311)]],
  );
  const noPool = await t.call("POST", "/v1/resource-definitions/r1/resources/n3", {
    resource: { props: { StorPoolName: "nope" } },
  });
  assert.deepEqual([noPool.status, noPool.retCodes], [404, [rc("error", OBJ.rsc, OP.crt, 310)]]);
  const a = await t.call("POST", "/v1/resource-definitions/r1/resources/n3", {
    resource: { props: { StorPoolName: "ssd" } },
    drbd_node_id: 7,
  });
  assert.deepEqual([a.status, a.retCodes], [201, [rc("ok", OBJ.rsc, OP.crt, 1)]]);
  const r = obj((await t.call("GET", "/v1/resource-definitions/R1/resources/N3")).body);
  assert.equal(obj(obj(r["layer_object"])["drbd"])["node_id"], 7);
  const again = await t.call("POST", "/v1/resource-definitions/r1/resources/n3", {});
  assert.deepEqual([again.status, again.retCodes], [500, [rc("error", OBJ.rsc, OP.crt, 502)]]);
  const noNode = await t.call("POST", "/v1/resource-definitions/r1/resources/n9", {});
  assert.deepEqual([noNode.status, noNode.retCodes], [404, [rc("error", OBJ.rsc, OP.crt, 300)]]);
  const noRd = await t.call("POST", "/v1/resource-definitions/nope/resources/n1", {});
  assert.deepEqual([noRd.status, noRd.retCodes], [404, [rc("error", OBJ.rd, OP.crt, 301)]]);
});

test("resources: diskless resources use the diskless pool; node-id collisions are refused", async () => {
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "r2" } });
  await t.call("POST", "/v1/resource-definitions/r2/volume-definitions", {
    volume_definition: { size_kib: 4096 },
  });
  const a = await t.call("POST", "/v1/resource-definitions/r2/resources", [
    { resource: { node_name: "n3", flags: ["drbd_diskless"] } },
    { resource: { node_name: "n1" }, drbd_node_id: "0" },
  ]);
  assert.deepEqual([a.status, a.retCodes.length], [201, 2]);
  const view = arr((await t.call("GET", "/v1/view/resources?resources=r2&nodes=n3")).body).map(
    (r) => obj(r),
  );
  assert.equal(view.length, 1);
  assert.deepEqual(view[0]!["flags"], ["DISKLESS", "DRBD_DISKLESS"]);
  assert.equal(
    obj(obj(view[0]!["layer_object"])["drbd"])["node_id"],
    1,
    "n1 asked for 0 and got it; n3 took 1",
  );
  const clash = await t.call("POST", "/v1/resource-definitions/r2/resources/n2", {
    drbd_node_id: 1,
  });
  assert.deepEqual([clash.status, clash.retCodes], [500, [rc("error", OBJ.rsc, OP.crt, 204)]]);
  const disklessOnDisk = await t.call("POST", "/v1/resource-definitions/r2/resources/n2", {
    resource: { flags: ["DISKLESS"], props: { StorPoolName: "DfltStorPool" } },
  });
  assert.deepEqual(
    [disklessOnDisk.status, disklessOnDisk.retCodes],
    [500, [rc("error", OBJ.rsc, OP.crt, 208)]],
  );
});

test("resources view: volumes per volume definition, filters, strict kinds", async () => {
  const all = arr(
    (await t.call("GET", "/v1/view/resources?limit=0&offset=0&cached=true")).body,
  ).map((r) => obj(r));
  assert.deepEqual(
    all.map((r) => `${r["name"]}@${r["node_name"]}`),
    ["r1@n1", "r1@n2", "r1@n3", "r2@n1", "r2@n3"],
  );
  const r1n3 = all[2]!;
  const vols = arr(r1n3["volumes"]).map((v) => obj(v));
  assert.deepEqual(
    vols.map((v) => [v["volume_number"], v["storage_pool_name"], v["provider_kind"]]),
    [
      [0, "ssd", "FILE"],
      [1, "ssd", "FILE"],
    ],
  );
  assert.deepEqual(
    arr(vols[0]!["layer_data_list"]).map((l) => obj(l)["type"]),
    ["DRBD", "STORAGE"],
  );
  assert.match(
    String(vols[0]!["uuid"]),
    /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  const diskless = all[4]!;
  assert.equal(obj(arr(diskless["volumes"])[0])["provider_kind"], "DISKLESS");
  const byPool = arr((await t.call("GET", "/v1/view/resources?storage_pools=ssd")).body);
  assert.equal(byPool.length, 1);
  const byProps = arr((await t.call("GET", "/v1/view/resources?props=Aux/a=b")).body);
  assert.deepEqual(
    byProps.map((r) => obj(r)["node_name"]),
    ["n2"],
  );
  const paged = arr((await t.call("GET", "/v1/view/resources?limit=2&offset=1")).body);
  assert.deepEqual(
    paged.map((r) => obj(r)["node_name"]),
    ["n2", "n3"],
  );
});

test("volumes: list and single GET under a resource", async () => {
  const vols = arr(
    (await t.call("GET", "/v1/resource-definitions/r1/resources/n1/volumes")).body,
  ).map((v) => obj(v));
  assert.deepEqual(
    vols.map((v) => v["volume_number"]),
    [0, 1],
  );
  const v = obj((await t.call("GET", "/v1/resource-definitions/r1/resources/n1/volumes/1")).body);
  assert.equal(v["storage_pool_name"], "DfltStorPool");
  const missing = await t.call("GET", "/v1/resource-definitions/r1/resources/n1/volumes/9");
  assert.deepEqual(
    [missing.status, missing.retCodes],
    [404, [rc("error", OBJ.none, OP.none, 304)]],
  );
  const noRsc = await t.call("GET", "/v1/resource-definitions/r1/resources/n9/volumes");
  assert.deepEqual([noRsc.status, noRsc.retCodes], [404, [rc("error", OBJ.none, OP.none, 302)]]);
});

test("resources: deployed replicas keep a volume from shrinking; growing is fine", async () => {
  const shrink = await t.call("PUT", "/v1/resource-definitions/r1/volume-definitions/0", {
    size_kib: 1024,
  });
  assert.deepEqual([shrink.status, shrink.retCodes], [500, [rc("error", OBJ.vd, OP.mod, 206)]]);
  const grow = await t.call("PUT", "/v1/resource-definitions/r1/volume-definitions/0", {
    size_kib: 2097152,
  });
  assert.equal(grow.status, 200);
});

test("resources: objects in use refuse deletion; modify props; delete", async () => {
  const pool = await t.call("DELETE", "/v1/nodes/n3/storage-pools/ssd");
  assert.deepEqual([pool.status, pool.retCodes], [500, [rc("error", OBJ.sp, OP.del, 997)]]);
  const node = await t.call("DELETE", "/v1/nodes/n3");
  assert.deepEqual([node.status, node.retCodes], [500, [rc("error", OBJ.node, OP.del, 997)]]);
  const m = await t.call("PUT", "/v1/resource-definitions/r1/resources/n3", {
    override_props: { "Aux/k": "v" },
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.rsc, OP.mod, 3)]]);
  assert.deepEqual(
    obj((await t.call("GET", "/v1/resource-definitions/r1/resources/n3")).body)["props"],
    {
      StorPoolName: "ssd",
      "Aux/k": "v",
      // n3 was added to a definition that already had a disk: it full-syncs from it.
      "Mirra/DiskJoinsPeers": "true",
    },
  );
  const d = await t.call("DELETE", "/v1/resource-definitions/r1/resources/n3");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.rsc, OP.del, 2)]]);
  const again = await t.call(
    "DELETE",
    "/v1/resource-definitions/r1/resources/n3?keep_tiebreaker=true",
  );
  assert.deepEqual([again.status, again.retCodes], [404, [rc("error", OBJ.rsc, OP.del, 302)]]);
  // Deleting the definition takes its resources and volume definitions with it.
  assert.equal((await t.call("DELETE", "/v1/resource-definitions/r2")).status, 200);
  assert.deepEqual(arr((await t.call("GET", "/v1/view/resources?resources=r2")).body), []);
  assert.equal((await t.call("DELETE", "/v1/nodes/n3")).status, 200, "n3 is free now");
});
