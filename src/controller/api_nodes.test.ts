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
});
after(() => t.close());

const satellite = (name: string, address = "10.0.0.1") => ({
  name,
  type: "satellite",
  net_interfaces: [
    { name: "default", address, satellite_port: "3366", satellite_encryption_type: "plain" },
  ],
});

test("nodes: create answers 201 with LINSTOR's ret code; the node reads back uppercase", async () => {
  const a = await t.call("POST", "/v1/nodes", satellite("Alpha"));
  assert.equal(a.status, 201);
  assert.equal(a.contentType, "application/json; charset=utf-8");
  assert.deepEqual(a.retCodes, [rc("ok", OBJ.node, OP.crt, 1)]);
  assert.deepEqual(
    arr(a.body).map((e) => obj(e)["obj_refs"]),
    [{ Node: "Alpha" }],
  );
  assert.equal(obj(arr(a.body)[0])["created_at"], "2026-12-04T12:00:00.000Z");

  const g = await t.call("GET", "/v1/nodes/alpha");
  assert.equal(g.status, 200);
  const n = obj(g.body);
  assert.equal(n["name"], "Alpha", "echoed as created, found case-insensitively");
  assert.equal(n["type"], "SATELLITE");
  assert.equal(n["connection_status"], "OFFLINE");
  assert.deepEqual(n["props"], { CurStltConnName: "default" });
  const nif = obj(arr(n["net_interfaces"])[0]);
  assert.equal(nif["satellite_port"], 3366, "a number sent as a string is read");
  assert.equal(nif["satellite_encryption_type"], "PLAIN");
  assert.equal(nif["is_active"], true);
  assert.equal(typeof nif["uuid"], "string");
  // Every node gets LINSTOR's diskless pool.
  const pools = await t.call("GET", "/v1/nodes/Alpha/storage-pools");
  assert.deepEqual(
    arr(pools.body).map((p) => [obj(p)["storage_pool_name"], obj(p)["provider_kind"]]),
    [["DfltDisklessStorPool", "DISKLESS"]],
  );
});

test("nodes: a second create of the same name (any case) is FAIL_EXISTS_NODE, 500", async () => {
  const a = await t.call("POST", "/v1/nodes", satellite("ALPHA"));
  assert.equal(a.status, 500);
  assert.deepEqual(a.retCodes, [rc("error", OBJ.node, OP.crt, 500)]);
  assert.equal(a.retCodes[0], -4611686018406678028n);
});

test("nodes: bad input is refused with LINSTOR's status and changes nothing", async () => {
  const cases: [unknown, bigint][] = [
    ["{not json", PARSE_ERROR],
    ["[1,2]", PARSE_ERROR],
    ["", PARSE_ERROR],
    [{ type: "satellite" }, PARSE_ERROR],
    [{ name: "n-x", type: "satellite", net_interfaces: "eth0" }, PARSE_ERROR],
    [{ name: "n-x", type: "satellite", props: { a: { b: 1 } } }, PARSE_ERROR],
    [
      {
        name: "n-x",
        type: "satellite",
        net_interfaces: [{ name: "data", address: "10.0.0.1", satellite_port: "x" }],
      },
      PARSE_ERROR,
    ],
    [
      {
        name: "n-x",
        type: "satellite",
        net_interfaces: [{ name: "data", address: "10.0.0.1", satellite_port: 70000 }],
      },
      PARSE_ERROR,
    ],
    [{ name: "-bad", type: "satellite" }, rc("error", OBJ.node, OP.crt, 200)],
    [{ name: "n x", type: "satellite" }, rc("error", OBJ.node, OP.crt, 200)],
    [{ name: "n-x", type: "toaster" }, rc("error", OBJ.node, OP.crt, 201)],
    [
      {
        name: "n-x",
        type: "satellite",
        net_interfaces: [{ name: "default", address: "not-an-ip" }],
      },
      rc("error", OBJ.netIf, OP.crt, 210),
    ],
    [
      { name: "n-x", type: "satellite", props: { "/lead": "x" } },
      rc("error", OBJ.node, OP.crt, 213),
    ],
  ];
  for (const [body, code] of cases) {
    const a = await t.call("POST", "/v1/nodes", body);
    // LINSTOR: 400 only for a parse error; FAIL_INVLD_* validation errors are 500.
    const status = code === PARSE_ERROR ? 400 : 500;
    assert.equal(a.status, status, `${JSON.stringify(body)}: ${a.text}`);
    assert.deepEqual(a.retCodes, [code], JSON.stringify(body));
    assert.ok(typeof obj(arr(a.body)[0])["message"] === "string");
  }
  const all = await t.call("GET", "/v1/nodes");
  assert.deepEqual(
    arr(all.body).map((n) => obj(n)["name"]),
    ["Alpha"],
  );
});

test("nodes: list filters and pages; limit=0 means all", async () => {
  for (const name of ["bravo", "charlie", "delta"]) {
    assert.equal(
      (
        await t.call("POST", "/v1/nodes", {
          ...satellite(name),
          props: { "Aux/zone": name === "delta" ? "b" : "a" },
        })
      ).status,
      201,
    );
  }
  const names = async (q: string) =>
    arr((await t.call("GET", `/v1/nodes${q}`)).body).map((n) => obj(n)["name"]);
  assert.deepEqual(await names("?limit=0&offset=0"), ["Alpha", "bravo", "charlie", "delta"]);
  assert.deepEqual(await names("?limit=2&offset=1"), ["bravo", "charlie"]);
  assert.deepEqual(await names("?offset=3"), ["delta"]);
  assert.deepEqual(await names("?nodes=BRAVO&nodes=delta"), ["bravo", "delta"]);
  assert.deepEqual(await names("?props=Aux/zone=b"), ["delta"]);
  assert.deepEqual(await names("?props=Aux/zone"), ["bravo", "charlie", "delta"]);
  const bad = await t.call("GET", "/v1/nodes?limit=-1");
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.retCodes, [PARSE_ERROR]);
});

test("nodes: modify props and type; deleting an unset key warns", async () => {
  const a = await t.call("PUT", "/v1/nodes/bravo", {
    node_type: "combined",
    override_props: { "Aux/rack": "r1", "Aux/x": "1" },
    delete_props: ["Aux/nope", "Aux/zone"],
  });
  assert.equal(a.status, 200);
  assert.deepEqual(a.retCodes, [rc("ok", OBJ.node, OP.mod, 3), rc("warn", OBJ.node, OP.mod, 1005)]);
  const n = obj((await t.call("GET", "/v1/nodes/bravo")).body);
  assert.equal(n["type"], "COMBINED");
  assert.deepEqual(n["props"], { CurStltConnName: "default", "Aux/rack": "r1", "Aux/x": "1" });
  await t.call("PUT", "/v1/nodes/bravo", { delete_namespaces: ["Aux"] });
  assert.deepEqual(obj((await t.call("GET", "/v1/nodes/bravo")).body)["props"], {
    CurStltConnName: "default",
  });
  const missing = await t.call("PUT", "/v1/nodes/nope", { override_props: {} });
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.retCodes, [rc("error", OBJ.node, OP.mod, 300)]);
});

test("nodes: missing node is 404 with an ApiCallRc body", async () => {
  const a = await t.call("GET", "/v1/nodes/nobody");
  assert.equal(a.status, 404);
  // LINSTOR's single-object GETs answer the bare code: MASK_ERROR | 300.
  assert.deepEqual(a.retCodes, [-4611686018427387604n]);
  assert.equal(obj(arr(a.body)[0])["message"], "Node 'nobody' not found.");
});

test("net interfaces: list, create, get, modify, delete", async () => {
  const base = "/v1/nodes/charlie/net-interfaces";
  const c = await t.call("POST", base, { name: "data", address: "fd00::2" });
  assert.equal(c.status, 201);
  assert.deepEqual(c.retCodes, [rc("ok", OBJ.netIf, OP.crt, 1)]);
  const dup = await t.call("POST", base, { name: "DATA", address: "10.1.1.1" });
  assert.deepEqual([dup.status, dup.retCodes], [500, [rc("error", OBJ.netIf, OP.crt, 505)]]);
  assert.deepEqual(
    arr((await t.call("GET", base)).body).map((n) => obj(n)["name"]),
    ["default", "data"],
  );
  const one = obj((await t.call("GET", `${base}/data`)).body);
  assert.deepEqual(
    [one["address"], one["is_active"], one["satellite_port"]],
    ["fd00::2", false, undefined],
  );
  const m = await t.call("PUT", `${base}/data`, {
    address: "10.9.9.9",
    satellite_port: 3367,
    satellite_encryption_type: "ssl",
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.netIf, OP.mod, 3)]]);
  const after = obj((await t.call("GET", `${base}/data`)).body);
  assert.deepEqual(
    [after["address"], after["satellite_port"], after["satellite_encryption_type"]],
    ["10.9.9.9", 3367, "SSL"],
  );
  const inUse = await t.call("DELETE", `${base}/default`);
  assert.deepEqual([inUse.status, inUse.retCodes], [500, [rc("error", OBJ.netIf, OP.del, 997)]]);
  const d = await t.call("DELETE", `${base}/data`);
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.netIf, OP.del, 2)]]);
  const gone = await t.call("GET", `${base}/data`);
  assert.deepEqual([gone.status, gone.retCodes], [404, [rc("error", OBJ.none, OP.none, 305)]]);
  assert.equal((await t.call("GET", "/v1/nodes/nobody/net-interfaces")).status, 404);
  // Activating another interface moves the satellite connection to it.
  await t.call("POST", base, { name: "data2", address: "10.2.2.2", satellite_port: 3366 });
  const act = await t.call("PUT", `${base}/data2`, { is_active: true });
  assert.equal(act.status, 200);
  const node = obj((await t.call("GET", "/v1/nodes/charlie")).body);
  assert.equal(obj(node["props"])["CurStltConnName"], "data2");
  assert.deepEqual(
    arr(node["net_interfaces"]).map((n) => [obj(n)["name"], obj(n)["is_active"]]),
    [
      ["default", false],
      ["data2", true],
    ],
  );
  assert.equal((await t.call("DELETE", `${base}/default`)).status, 200);
});

test("storage pools: create, get, list per node and in the view, modify, delete", async () => {
  const c = await t.call("POST", "/v1/nodes/Alpha/storage-pools", {
    storage_pool_name: "pool1",
    provider_kind: "file_thin",
    props: { "StorDriver/FileDir": "/var/lib/mirra/pool1" },
  });
  assert.deepEqual([c.status, c.retCodes], [201, [rc("ok", OBJ.sp, OP.crt, 1)]]);
  const dup = await t.call("POST", "/v1/nodes/alpha/storage-pools", {
    storage_pool_name: "POOL1",
    provider_kind: "FILE",
  });
  assert.deepEqual([dup.status, dup.retCodes], [500, [rc("error", OBJ.sp, OP.crt, 510)]]);
  const badKind = await t.call("POST", "/v1/nodes/alpha/storage-pools", {
    storage_pool_name: "p2",
    provider_kind: "floppy",
  });
  assert.deepEqual([badKind.status, badKind.retCodes], [500, [rc("error", OBJ.sp, OP.crt, 227)]]);
  const noNode = await t.call("POST", "/v1/nodes/nobody/storage-pools", {
    storage_pool_name: "p2",
    provider_kind: "FILE",
  });
  assert.deepEqual([noNode.status, noNode.retCodes], [404, [rc("error", OBJ.sp, OP.crt, 300)]]);

  const p = obj((await t.call("GET", "/v1/nodes/alpha/storage-pools/Pool1")).body);
  assert.equal(p["storage_pool_name"], "pool1");
  assert.equal(p["node_name"], "Alpha");
  assert.equal(p["provider_kind"], "FILE_THIN");
  assert.equal(p["free_space_mgr_name"], "Alpha;pool1");
  assert.deepEqual(p["static_traits"], { Provisioning: "Thin", SupportsSnapshots: "true" });

  await t.call("POST", "/v1/nodes/bravo/storage-pools", {
    storage_pool_name: "pool1",
    provider_kind: "LVM",
  });
  const view = async (q: string) =>
    arr((await t.call("GET", `/v1/view/storage-pools${q}`)).body).map(
      (x) => `${obj(x)["node_name"]}/${obj(x)["storage_pool_name"]}`,
    );
  assert.deepEqual(await view("?storage_pools=pool1"), ["Alpha/pool1", "bravo/pool1"]);
  assert.deepEqual(await view("?nodes=bravo&limit=1"), ["bravo/DfltDisklessStorPool"]);
  assert.equal((await view("?limit=0&offset=0&cached=true")).length, 6);

  const m = await t.call("PUT", "/v1/nodes/alpha/storage-pools/pool1", {
    override_props: { "Aux/a": "1" },
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.sp, OP.mod, 3)]]);
  const d = await t.call("DELETE", "/v1/nodes/bravo/storage-pools/pool1");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.sp, OP.del, 2)]]);
  const gone = await t.call("GET", "/v1/nodes/bravo/storage-pools/pool1");
  assert.deepEqual([gone.status, gone.retCodes], [404, [rc("error", OBJ.none, OP.none, 310)]]);
});

test("nodes: delete removes the node and its pools", async () => {
  const d = await t.call("DELETE", "/v1/nodes/DELTA");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.node, OP.del, 2)]]);
  assert.equal((await t.call("GET", "/v1/nodes/delta")).status, 404);
  const again = await t.call("DELETE", "/v1/nodes/delta");
  assert.deepEqual([again.status, again.retCodes], [404, [rc("error", OBJ.node, OP.del, 300)]]);
  assert.deepEqual(arr((await t.call("GET", "/v1/view/storage-pools?nodes=delta")).body), []);
});
