import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../io/log.js";
import { startController } from "./server.js";
import { openSqliteStore, StoreError } from "./store/sqlite_store.js";
import type { ControllerStore } from "./store/store.js";
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

const UNKNOWN_API_CALL = -3458764513820540929n;

test("controller: version reports REST API 1.28.0", async () => {
  const a = await t.call("GET", "/v1/controller/version");
  assert.equal(a.status, 200);
  const v = obj(a.body);
  assert.equal(v["rest_api_version"], "1.28.0");
  assert.equal(typeof v["version"], "string");
});

test("controller: properties set, list, delete; deleting an unset key warns", async () => {
  assert.deepEqual((await t.call("GET", "/v1/controller/properties")).body, {});
  const s = await t.call("POST", "/v1/controller/properties", {
    override_props: { "Aux/site": "lab", "Aux/x/y": "1" },
  });
  assert.deepEqual([s.status, s.retCodes], [200, [rc("ok", OBJ.ctrl, OP.mod, 3)]]);
  assert.deepEqual((await t.call("GET", "/v1/controller/properties")).body, {
    "Aux/site": "lab",
    "Aux/x/y": "1",
  });
  const d = await t.call("DELETE", "/v1/controller/properties/Aux/x/y");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.ctrl, OP.del, 2)]]);
  const unset = await t.call("DELETE", "/v1/controller/properties/Aux/never");
  assert.deepEqual(
    [unset.status, unset.retCodes],
    [200, [rc("ok", OBJ.ctrl, OP.del, 2), rc("warn", OBJ.ctrl, OP.mod, 1005)]],
  );
  assert.deepEqual((await t.call("GET", "/v1/controller/properties")).body, { "Aux/site": "lab" });
  const bad = await t.call("POST", "/v1/controller/properties", {
    override_props: { "bad key": "1" },
  });
  assert.deepEqual([bad.status, bad.retCodes], [500, [rc("error", OBJ.ctrl, OP.mod, 213)]]);
});

test("key-value store: PUT creates and modifies, GET lists, DELETE removes", async () => {
  const missing = await t.call("GET", "/v1/key-value-store/csi");
  assert.deepEqual(
    [missing.status, missing.retCodes],
    [404, [rc("error", OBJ.none, OP.none, 316)]],
  );
  const p = await t.call("PUT", "/v1/key-value-store/csi", {
    override_props: { "snap/a": "1", "snap/b": "2", other: "x" },
  });
  assert.deepEqual([p.status, p.retCodes], [200, [37748739n]]);
  await t.call("PUT", "/v1/key-value-store/CSI", {
    delete_namespaces: ["snap"],
    override_props: { other: "y" },
  });
  assert.deepEqual((await t.call("GET", "/v1/key-value-store/csi")).body, [
    { name: "csi", props: { other: "y" } },
  ]);
  await t.call("PUT", "/v1/key-value-store/other", { override_props: {} });
  assert.deepEqual(
    arr((await t.call("GET", "/v1/key-value-store")).body).map((k) => obj(k)["name"]),
    ["csi", "other"],
  );
  const d = await t.call("DELETE", "/v1/key-value-store/other");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.kvs, OP.del, 2)]]);
  const again = await t.call("DELETE", "/v1/key-value-store/other");
  assert.deepEqual([again.status, again.retCodes], [404, [rc("error", OBJ.kvs, OP.del, 316)]]);
  const badName = await t.call("PUT", "/v1/key-value-store/x!", { override_props: {} });
  assert.deepEqual([badName.status, badName.retCodes], [500, [rc("error", OBJ.kvs, OP.mod, 223)]]);
});

test("controller: an unknown path or method is 404 with an ApiCallRc body", async () => {
  for (const [m, p] of [
    ["GET", "/v1/nope"],
    ["PATCH", "/v1/nodes"],
    ["GET", "/"],
  ] as const) {
    const a = await t.call(m, p);
    assert.deepEqual([a.status, a.retCodes], [404, [UNKNOWN_API_CALL]], `${m} ${p}`);
    assert.equal(a.contentType, "application/json; charset=utf-8");
  }
  assert.equal((await t.call("GET", "/v1/nodes/")).status, 200, "a trailing slash is tolerated");
});

test("hostile bodies: each is refused with LINSTOR's status and the controller keeps serving", async () => {
  const node = (extra: Record<string, unknown>) => ({ name: "h1", type: "satellite", ...extra });
  const nested = "[".repeat(5000) + "]".repeat(5000);
  const badProp = rc("error", OBJ.node, OP.crt, 213);
  // Bodies the reader cannot take are parse errors (400); readable but invalid values are
  // FAIL_INVLD_* validation errors, which LINSTOR answers with 500.
  const cases: [unknown, bigint][] = [
    ["\u0000\u0001\u0002", PARSE_ERROR],
    ["null", PARSE_ERROR],
    ["42", PARSE_ERROR],
    ['"a string"', PARSE_ERROR],
    [nested, PARSE_ERROR],
    [node({ props: [] }), PARSE_ERROR],
    [node({ props: { k: null } }), PARSE_ERROR],
    [node({ net_interfaces: [null] }), PARSE_ERROR],
    [
      node({ net_interfaces: [{ name: "default", address: "10.0.0.1", is_active: "maybe" }] }),
      PARSE_ERROR,
    ],
    [node({ name: "x".repeat(300) }), rc("error", OBJ.node, OP.crt, 200)],
    [node({ props: { ["k".repeat(300)]: "v" } }), badProp],
    [node({ props: { "a\nb": "v" } }), badProp],
    [node({ props: { big: "v".repeat(70 * 1024) } }), badProp],
  ];
  for (const [body, code] of cases) {
    const a = await t.call("POST", "/v1/nodes", body);
    const what = `${JSON.stringify(body).slice(0, 80)} -> ${a.text.slice(0, 200)}`;
    assert.deepEqual([a.status, a.retCodes], [code === PARSE_ERROR ? 400 : 500, [code]], what);
    assert.ok(typeof obj(arr(a.body)[0])["message"] === "string");
  }
  // A `__proto__` key is just an unknown field: ignored, and nothing is polluted.
  const proto = await t.call(
    "POST",
    "/v1/nodes",
    '{"name":"h1","type":"satellite","__proto__":{"polluted":true}}',
  );
  assert.equal(proto.status, 201);
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  assert.deepEqual(obj((await t.call("GET", "/v1/nodes/h1")).body)["props"], {});
  // A number where a name belongs is coerced to a string, as Jackson does.
  assert.equal((await t.call("POST", "/v1/nodes", node({ name: 12 }))).status, 201);
  assert.equal((await t.call("DELETE", "/v1/nodes/12")).status, 200);
  assert.equal((await t.call("DELETE", "/v1/nodes/h1")).status, 200);
  const tooBig = await t.call(
    "POST",
    "/v1/nodes",
    JSON.stringify(node({ props: { a: "x".repeat(2 * 1024 * 1024) } })),
  );
  assert.deepEqual([tooBig.status, tooBig.retCodes], [413, [PARSE_ERROR]]);
  const plain = await fetch(`${t.running.url}/v1/nodes`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify({ name: "h2", type: "satellite" }),
  });
  assert.equal(plain.status, 201, "the body is JSON whatever the content type says");
  const longPath = await t.call("GET", `/v1/nodes/${"n".repeat(2000)}`);
  assert.ok(longPath.status === 404 || longPath.status === 414, String(longPath.status));
  assert.deepEqual(
    arr((await t.call("GET", "/v1/nodes")).body).map((n) => obj(n)["name"]),
    ["h2"],
  );
});

test("restart: everything written survives a controller restart", async () => {
  await t.call("POST", "/v1/nodes", {
    name: "p1",
    type: "satellite",
    props: { "Aux/zone": "a" },
    net_interfaces: [{ name: "default", address: "127.0.0.1" }],
  });
  await t.call("POST", "/v1/nodes/p1/storage-pools", {
    storage_pool_name: "DfltStorPool",
    provider_kind: "FILE_THIN",
  });
  await t.call("POST", "/v1/resource-groups", { name: "g1", select_filter: { place_count: 2 } });
  await t.call("POST", "/v1/resource-groups/g1/volume-groups", { volume_number: 0 });
  await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "pr", resource_group_name: "g1" },
  });
  await t.call("POST", "/v1/resource-definitions/pr/volume-definitions", {
    volume_definition: { size_kib: 65536 },
  });
  await t.call("POST", "/v1/resource-definitions/pr/resources", [
    { resource: { node_name: "p1" } },
  ]);
  const paths = [
    "/v1/controller/properties",
    "/v1/nodes",
    "/v1/view/storage-pools",
    "/v1/resource-groups",
    "/v1/resource-groups/g1/volume-groups",
    "/v1/resource-definitions?with_volume_definitions=true",
    "/v1/view/resources",
    "/v1/key-value-store",
  ];
  const before = await Promise.all(paths.map(async (p) => (await t.call("GET", p)).text));
  await t.restart();
  const after = await Promise.all(paths.map(async (p) => (await t.call("GET", p)).text));
  assert.deepEqual(after, before);
  // Allocation continues from the persisted state: the next definition gets the next port.
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "pr2" } });
  const pr2 = obj((await t.call("GET", "/v1/resource-definitions/pr2")).body);
  assert.equal(obj(obj(arr(pr2["layer_data"])[0])["data"])["port"], 7001);
});

test("store failure: a write the database refuses is FAIL_SQL, 500, and nothing is half-done", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "mirra-ctrl-fail-"));
  const real = openSqliteStore({ dataDir });
  const failing: ControllerStore = {
    read: (fn) => real.read(fn),
    write: () => Promise.reject(new StoreError("disk full")),
    close: () => real.close(),
  };
  const c = await startController({
    dataDir,
    port: 0,
    store: failing,
    logger: createLogger({ write: () => undefined }),
  });
  try {
    const res = await fetch(`${c.url}/v1/nodes`, {
      method: "POST",
      body: JSON.stringify({ name: "n1", type: "satellite" }),
    });
    const text = await res.text();
    assert.equal(res.status, 500);
    assert.match(text, /^\[\{"ret_code":-4611686018427387804,/);
    assert.match(text, /disk full/);
    assert.equal((await fetch(`${c.url}/v1/nodes/n1`)).status, 404);
  } finally {
    await c.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
