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

test("resource groups: DfltRscGrp exists; create with a select filter read leniently", async () => {
  const list = await t.call("GET", "/v1/resource-groups");
  assert.deepEqual(
    arr(list.body).map((g) => obj(g)["name"]),
    ["DfltRscGrp"],
  );
  const c = await t.call("POST", "/v1/resource-groups", {
    name: "fast",
    description: "ssd",
    props: { "Aux/tier": "1" },
    select_filter: {
      place_count: "3",
      storage_pool: "pool1",
      replicas_on_different: ["Aux/zone"],
      layer_stack: ["drbd", "storage"],
      provider_list: ["file_thin"],
      diskless_on_remaining: null,
      unknown_field: 1,
    },
  });
  assert.deepEqual([c.status, c.retCodes], [201, [rc("ok", OBJ.rg, OP.crt, 1)]]);
  const g = obj((await t.call("GET", "/v1/resource-groups/FAST")).body);
  assert.equal(g["name"], "fast");
  assert.equal(g["description"], "ssd");
  assert.deepEqual(g["select_filter"], {
    place_count: 3,
    storage_pool: "pool1",
    replicas_on_different: ["Aux/zone"],
    layer_stack: ["DRBD", "STORAGE"],
    provider_list: ["FILE_THIN"],
  });
  const dup = await t.call("POST", "/v1/resource-groups", { name: "Fast" });
  assert.deepEqual([dup.status, dup.retCodes], [500, [rc("error", OBJ.rg, OP.crt, 522)]]);
  const badCount = await t.call("POST", "/v1/resource-groups", {
    name: "x1",
    select_filter: { place_count: "many" },
  });
  assert.deepEqual([badCount.status, badCount.retCodes], [400, [PARSE_ERROR]]);
  const badLayer = await t.call("POST", "/v1/resource-groups", {
    name: "x1",
    select_filter: { layer_stack: ["zfs"] },
  });
  assert.deepEqual([badLayer.status, badLayer.retCodes], [500, [rc("error", OBJ.rg, OP.crt, 224)]]);
  const missing = await t.call("GET", "/v1/resource-groups/nope");
  assert.deepEqual(
    [missing.status, missing.retCodes],
    [404, [rc("error", OBJ.none, OP.none, 317)]],
  );
});

test("resource groups: modify merges the select filter; delete refuses while used", async () => {
  const m = await t.call("PUT", "/v1/resource-groups/fast", {
    description: "nvme",
    select_filter: { place_count: 2 },
    override_props: { "Aux/b": "2" },
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.rg, OP.mod, 3)]]);
  const g = obj((await t.call("GET", "/v1/resource-groups/fast")).body);
  assert.equal(g["description"], "nvme");
  assert.equal(obj(g["select_filter"])["place_count"], 2);
  assert.equal(obj(g["select_filter"])["storage_pool"], "pool1");
  assert.deepEqual(g["props"], { "Aux/tier": "1", "Aux/b": "2" });

  await t.call("POST", "/v1/resource-groups", { name: "tmp" });
  await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "uses-tmp", resource_group_name: "tmp" },
  });
  const used = await t.call("DELETE", "/v1/resource-groups/tmp");
  assert.deepEqual([used.status, used.retCodes], [500, [rc("error", OBJ.rg, OP.del, 997)]]);
  const dflt = await t.call("DELETE", "/v1/resource-groups/DfltRscGrp");
  assert.deepEqual([dflt.status, dflt.retCodes], [500, [rc("error", OBJ.rg, OP.del, 997)]]);
  await t.call("DELETE", "/v1/resource-definitions/uses-tmp");
  const d = await t.call("DELETE", "/v1/resource-groups/tmp");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.rg, OP.del, 2)]]);
});

test("volume groups: create numbered and auto-numbered, get, modify flags, delete", async () => {
  const base = "/v1/resource-groups/fast/volume-groups";
  const a = await t.call("POST", base, {});
  assert.deepEqual([a.status, a.retCodes], [201, [rc("ok", OBJ.vg, OP.crt, 1)]]);
  const b = await t.call("POST", base, { volume_number: "5", props: { "Aux/v": "x" } });
  assert.equal(b.status, 201);
  const c = await t.call("POST", base);
  assert.equal(c.status, 201, "an empty body is an empty VolumeGroup");
  assert.deepEqual(
    arr((await t.call("GET", base)).body).map((v) => obj(v)["volume_number"]),
    [0, 1, 5],
  );
  const dup = await t.call("POST", base, { volume_number: 5 });
  assert.deepEqual([dup.status, dup.retCodes], [500, [rc("error", OBJ.vg, OP.crt, 523)]]);
  const m = await t.call("PUT", `${base}/5`, {
    flags: ["gross_size"],
    override_props: { "Aux/w": "y" },
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.vg, OP.mod, 3)]]);
  const v = obj((await t.call("GET", `${base}/5`)).body);
  assert.deepEqual([v["flags"], v["props"]], [["GROSS_SIZE"], { "Aux/v": "x", "Aux/w": "y" }]);
  await t.call("PUT", `${base}/5`, { flags: ["-GROSS_SIZE"] });
  assert.deepEqual(obj((await t.call("GET", `${base}/5`)).body)["flags"], []);
  const d = await t.call("DELETE", `${base}/1`);
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.vg, OP.del, 2)]]);
  for (const nr of ["1", "abc", "99999999"]) {
    const g = await t.call("GET", `${base}/${nr}`);
    assert.deepEqual([g.status, g.retCodes], [404, [rc("error", OBJ.none, OP.none, 318)]], nr);
  }
  assert.equal((await t.call("GET", "/v1/resource-groups/nope/volume-groups")).status, 404);
});

test("resource definitions: create allocates port and secret; exists is LINSTOR's exact error", async () => {
  const c = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: {
      name: "r1",
      props: { "DrbdOptions/Net/protocol": "C" },
      resource_group_name: "fast",
    },
  });
  assert.deepEqual([c.status, c.retCodes], [201, [20447233n]]);
  const dup = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "R1" },
  });
  assert.deepEqual([dup.status, dup.retCodes], [500, [-4611686018406940171n]]);
  const r = obj((await t.call("GET", "/v1/resource-definitions/r1")).body);
  assert.equal(r["name"], "r1");
  assert.equal(r["resource_group_name"], "fast");
  assert.deepEqual(r["props"], { "DrbdOptions/Net/protocol": "C" });
  const drbd = obj(arr(r["layer_data"])[0]);
  assert.equal(drbd["type"], "DRBD");
  const data = obj(drbd["data"]);
  assert.equal(data["port"], 7000);
  assert.match(String(data["secret"]), /^[A-Za-z0-9]{20}$/);
  assert.equal(obj(arr(r["layer_data"])[1])["type"], "STORAGE");

  const c2 = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "r2" },
    drbd_port: 7100,
    drbd_secret: "abc",
  });
  assert.equal(c2.status, 201);
  const r2 = obj((await t.call("GET", "/v1/resource-definitions/r2")).body);
  assert.equal(r2["resource_group_name"], "DfltRscGrp");
  assert.deepEqual(
    [
      obj(obj(arr(r2["layer_data"])[0])["data"])["port"],
      obj(obj(arr(r2["layer_data"])[0])["data"])["secret"],
    ],
    [7100, "abc"],
  );
  const c3 = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "r3" },
  });
  assert.equal(c3.status, 201);
  assert.equal(
    obj(
      obj(arr(obj((await t.call("GET", "/v1/resource-definitions/r3")).body)["layer_data"])[0])[
        "data"
      ],
    )["port"],
    7001,
  );

  const portUsed = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "r4" },
    drbd_port: 7100,
  });
  assert.deepEqual([portUsed.status, portUsed.retCodes], [500, [rc("error", OBJ.rd, OP.crt, 203)]]);
  const noGroup = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "r4", resource_group_name: "nope" },
  });
  assert.deepEqual([noGroup.status, noGroup.retCodes], [404, [rc("error", OBJ.rd, OP.crt, 317)]]);
  const badName = await t.call("POST", "/v1/resource-definitions", {
    resource_definition: { name: "9lives" },
  });
  assert.deepEqual([badName.status, badName.retCodes], [500, [rc("error", OBJ.rd, OP.crt, 202)]]);
  const noBody = await t.call("POST", "/v1/resource-definitions", { name: "r4" });
  assert.deepEqual([noBody.status, noBody.retCodes], [400, [PARSE_ERROR]]);
  const missing = await t.call("GET", "/v1/resource-definitions/nope");
  assert.deepEqual(
    [missing.status, missing.retCodes],
    [404, [rc("error", OBJ.none, OP.none, 301)]],
  );
});

test("resource definitions: list with filters and embedded volume definitions; modify; delete", async () => {
  await t.call("POST", "/v1/resource-definitions/r1/volume-definitions", {
    volume_definition: { size_kib: 1024 },
  });
  const names = async (q: string) =>
    arr((await t.call("GET", `/v1/resource-definitions${q}`)).body).map((r) => obj(r)["name"]);
  assert.deepEqual(await names("?limit=0&offset=0"), ["r1", "r2", "r3"]);
  assert.deepEqual(await names("?resource_definitions=R2&resource_definitions=r3"), ["r2", "r3"]);
  assert.deepEqual(await names("?props=DrbdOptions/Net/protocol=C"), ["r1"]);
  assert.deepEqual(await names("?limit=1&offset=2"), ["r3"]);
  const withVds = arr(
    (
      await t.call(
        "GET",
        "/v1/resource-definitions?with_volume_definitions=true&resource_definitions=r1",
      )
    ).body,
  );
  assert.deepEqual(
    arr(obj(withVds[0])["volume_definitions"]).map((v) => obj(v)["size_kib"]),
    [1024],
  );
  const without = arr(
    (await t.call("GET", "/v1/resource-definitions?resource_definitions=r1")).body,
  );
  assert.equal(obj(without[0])["volume_definitions"], undefined);

  const m = await t.call("PUT", "/v1/resource-definitions/r2", {
    override_props: { "Aux/a": "1" },
    resource_group: "fast",
    drbd_port: "7200",
  });
  assert.deepEqual([m.status, m.retCodes], [200, [rc("ok", OBJ.rd, OP.mod, 3)]]);
  const r2 = obj((await t.call("GET", "/v1/resource-definitions/r2")).body);
  assert.deepEqual([r2["resource_group_name"], r2["props"]], ["fast", { "Aux/a": "1" }]);
  assert.equal(obj(obj(arr(r2["layer_data"])[0])["data"])["port"], 7200);
  const badGroup = await t.call("PUT", "/v1/resource-definitions/r2", { resource_group: "nope" });
  assert.deepEqual([badGroup.status, badGroup.retCodes], [404, [rc("error", OBJ.rd, OP.mod, 317)]]);
  const badLayer = await t.call("PUT", "/v1/resource-definitions/r2", { layer_stack: ["tape"] });
  assert.deepEqual([badLayer.status, badLayer.retCodes], [500, [rc("error", OBJ.rd, OP.mod, 224)]]);

  const d = await t.call("DELETE", "/v1/resource-definitions/r3");
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.rd, OP.del, 2)]]);
  const again = await t.call("DELETE", "/v1/resource-definitions/r3");
  assert.deepEqual([again.status, again.retCodes], [404, [rc("error", OBJ.rd, OP.del, 301)]]);
});

test("volume definitions: create, auto-number, minors, get, resize, flags, delete", async () => {
  const base = "/v1/resource-definitions/r2/volume-definitions";
  const a = await t.call("POST", base, {
    volume_definition: { size_kib: "1048576", props: { "Aux/x": 1 } },
  });
  assert.deepEqual([a.status, a.retCodes], [201, [rc("ok", OBJ.vd, OP.crt, 1)]]);
  const b = await t.call("POST", base, {
    volume_definition: { volume_number: 3, size_kib: 4096 },
    drbd_minor_number: 2000,
  });
  assert.equal(b.status, 201);
  const list = arr((await t.call("GET", base)).body).map((v) => obj(v));
  assert.deepEqual(
    list.map((v) => [v["volume_number"], v["size_kib"]]),
    [
      [0, 1048576],
      [3, 4096],
    ],
  );
  const minors = list.map((v) => obj(obj(arr(v["layer_data"])[0])["data"])["minor_number"]);
  assert.deepEqual(minors, [1001, 2000], "r1's volume took minor 1000");
  assert.deepEqual(list[0]!["props"], { "Aux/x": "1" });

  const dup = await t.call("POST", base, { volume_definition: { volume_number: 3, size_kib: 1 } });
  assert.deepEqual([dup.status, dup.retCodes], [500, [rc("error", OBJ.vd, OP.crt, 503)]]);
  const minorUsed = await t.call("POST", base, {
    volume_definition: { size_kib: 1 },
    drbd_minor_number: 2000,
  });
  assert.deepEqual(
    [minorUsed.status, minorUsed.retCodes],
    [500, [rc("error", OBJ.vd, OP.crt, 207)]],
  );
  const noSize = await t.call("POST", base, { volume_definition: {} });
  assert.deepEqual([noSize.status, noSize.retCodes], [400, [PARSE_ERROR]]);
  for (const size of [0, -5, 2 ** 41]) {
    const bad = await t.call("POST", base, { volume_definition: { size_kib: size } });
    assert.deepEqual(
      [bad.status, bad.retCodes],
      [500, [rc("error", OBJ.vd, OP.crt, 206)]],
      String(size),
    );
  }
  const badNr = await t.call("POST", base, {
    volume_definition: { volume_number: 70000, size_kib: 1 },
  });
  assert.deepEqual([badNr.status, badNr.retCodes], [500, [rc("error", OBJ.vd, OP.crt, 205)]]);
  const float = await t.call("POST", base, { volume_definition: { size_kib: 1.5 } });
  assert.deepEqual([float.status, float.retCodes], [400, [PARSE_ERROR]]);

  const resize = await t.call("PUT", `${base}/0`, { size_kib: 2097152 });
  assert.deepEqual([resize.status, resize.retCodes], [200, [rc("ok", OBJ.vd, OP.mod, 3)]]);
  assert.equal(obj((await t.call("GET", `${base}/0`)).body)["size_kib"], 2097152);
  const shrink = await t.call("PUT", `${base}/0`, { size_kib: 1024 });
  assert.equal(shrink.status, 200, "no resources yet: shrinking is allowed");
  const flags = await t.call("PUT", `${base}/3`, { flags: ["GROSS_SIZE"] });
  assert.equal(flags.status, 200);
  assert.deepEqual(obj((await t.call("GET", `${base}/3`)).body)["flags"], ["GROSS_SIZE"]);

  const d = await t.call("DELETE", `${base}/3`);
  assert.deepEqual([d.status, d.retCodes], [200, [rc("ok", OBJ.vd, OP.del, 2)]]);
  const gone = await t.call("GET", `${base}/3`);
  assert.deepEqual([gone.status, gone.retCodes], [404, [rc("error", OBJ.none, OP.none, 303)]]);
  assert.equal(
    (await t.call("GET", "/v1/resource-definitions/nope/volume-definitions")).status,
    404,
  );
});
