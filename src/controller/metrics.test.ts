import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { controllerMetrics, type ControllerMetricsSnapshot } from "./metrics.js";
import { nothingObserved, type ObservedState } from "./observed_state.js";
import { startTestController, type TestController } from "./test_client.js";

const base: ControllerMetricsSnapshot = {
  version: "0.1.0",
  buildTime: "",
  gitId: "",
  nodes: [
    {
      name: "n1",
      type: "SATELLITE",
      connectionStatus: "ONLINE",
      flags: ["EVICTED", "DELETE"],
      satellite: { address: "10.0.0.1", encryption: "PLAIN", port: 3366 },
    },
    { name: 'odd"name', type: "COMBINED", connectionStatus: "OFFLINE", flags: [] },
  ],
  resourceDefinitions: [
    { name: "r1", resourceGroup: "DfltRscGrp", volumes: [{ volumeNumber: 0, sizeKib: 1024 }] },
    { name: "r2", resourceGroup: "rg", volumes: [] },
  ],
  resources: [
    {
      name: "r1",
      node: "n1",
      inUse: true,
      drbdDiskless: false,
      volumes: [{ volumeNumber: 0, storagePool: "sp", devicePath: "", diskState: "UpToDate" }],
    },
    {
      name: "r1",
      node: "n2",
      inUse: undefined,
      drbdDiskless: false,
      volumes: [{ volumeNumber: 0, storagePool: "sp", devicePath: "", diskState: "Diskless" }],
    },
    {
      name: "r1",
      node: "n3",
      inUse: false,
      drbdDiskless: true,
      volumes: [{ volumeNumber: 0, storagePool: "dl", devicePath: "", diskState: undefined }],
    },
  ],
  storagePools: [
    {
      name: "sp",
      node: "n1",
      driver: "LVM_THIN",
      backingPool: "vg/thin",
      freeKib: 10,
      totalKib: 40,
    },
    {
      name: "sp",
      node: "n2",
      driver: "LVM_THIN",
      backingPool: "vg/thin",
      freeKib: undefined,
      totalKib: undefined,
    },
    {
      name: "DfltDisklessStorPool",
      node: "n1",
      driver: "DISKLESS",
      backingPool: "",
      freeKib: undefined,
      totalKib: undefined,
    },
  ],
  errorReports: [
    { hostname: "ctl", module: "CONTROLLER" },
    { hostname: "ctl", module: "CONTROLLER" },
    { hostname: "n1", module: "SATELLITE" },
  ],
  scrapeRequests: 3,
  scrapeDurationSeconds: 0.25,
};

test("controller metrics: LINSTOR's names, labels and values", () => {
  const text = controllerMetrics(base);
  const has = (line: string): void => assert.ok(text.split("\n").includes(line), line);
  has('linstor_info{version="0.1.0",buildtime="",gitid=""} 1');
  has(
    'linstor_node_state{node="n1",nodetype="SATELLITE",address="10.0.0.1",encryption="PLAIN",port="3366"} 2',
  );
  has('linstor_node_state{node="odd\\"name",nodetype="COMBINED"} 0');
  // EVICTED carries DELETE in LINSTOR; an evicted node is not reported as being deleted.
  has(
    'linstor_node_flag{node="n1",nodetype="SATELLITE",address="10.0.0.1",encryption="PLAIN",port="3366",flag="EVICTED"} 1',
  );
  has(
    'linstor_node_flag{node="n1",nodetype="SATELLITE",address="10.0.0.1",encryption="PLAIN",port="3366",flag="DELETE"} 0',
  );
  has("linstor_resource_definition_count 2");
  has('linstor_resource_definition_resource_count{name="r1",resource_group="DfltRscGrp"} 3');
  has('linstor_resource_definition_resource_count{name="r2",resource_group="rg"} 0');
  has(
    'linstor_volume_definition_size_bytes{name="r1",volume_number="0",resource_group="DfltRscGrp"} 1048576',
  );
  has('linstor_resource_state{name="r1",node="n1"} 1');
  has('linstor_resource_state{name="r1",node="n2"} -1');
  has('linstor_resource_state{name="r1",node="n3"} 0');
  has(
    'linstor_volume_state{resource="r1",node="n1",volume="0",device_path="",storage_pool="sp"} 1',
  );
  // Diskless without DRBD_DISKLESS is a lost disk (LINSTOR's Diskless(Detached)).
  has(
    'linstor_volume_state{resource="r1",node="n2",volume="0",device_path="",storage_pool="sp"} 90',
  );
  has(
    'linstor_volume_state{resource="r1",node="n3",volume="0",device_path="",storage_pool="dl"} -1',
  );
  has(
    'linstor_storage_pool_capacity_free_bytes{storage_pool="sp",node="n1",driver="LVM_THIN",backing_pool="vg/thin"} 10240',
  );
  has(
    'linstor_storage_pool_capacity_total_bytes{storage_pool="sp",node="n1",driver="LVM_THIN",backing_pool="vg/thin"} 40960',
  );
  has(
    'linstor_storage_pool_capacity_free_bytes{storage_pool="DfltDisklessStorPool",node="n1",driver="DISKLESS",backing_pool=""} 0',
  );
  assert.doesNotMatch(text, /storage_pool="sp",node="n2"/, "unknown capacity is left out");
  has("linstor_error_reports_count 3");
  has('linstor_error_reports_count{hostname="ctl",module="CONTROLLER"} 2');
  has('linstor_error_reports_count{hostname="n1",module="SATELLITE"} 1');
  has("# TYPE linstor_scrape_requests_count counter");
  has("linstor_scrape_requests_count 3");
  has("linstor_scrape_duration_seconds 0.25");
  assert.ok(text.endsWith("\n"));
  // Every family: HELP, then TYPE, then samples.
  assert.match(text, /^# HELP linstor_info .*\n# TYPE linstor_info gauge\nlinstor_info\{/);
});

test("controller metrics: families a scrape leaves out are absent", () => {
  const text = controllerMetrics({
    ...base,
    resources: undefined,
    storagePools: undefined,
    errorReports: undefined,
  });
  for (const gone of [
    "linstor_resource_state",
    "linstor_volume_state",
    "linstor_resource_definition_resource_count",
    "linstor_storage_pool_capacity",
    "linstor_error_reports_count",
  ]) {
    assert.ok(!text.includes(gone), gone);
  }
  assert.match(text, /^linstor_volume_definition_size_bytes\{/m);
});

// ---- a live scrape ----

const observed: ObservedState = {
  ...nothingObserved,
  nodeConnectionStatus: (n) => (n === "m1" ? "ONLINE" : "OFFLINE"),
  poolCapacity: (node, pool) =>
    node === "m1" && pool === "fast" ? { freeKib: 512, totalKib: 2048 } : undefined,
};

let t: TestController;
before(async () => {
  t = await startTestController({ observed, hostname: "ctl-h" });
  for (const n of ["m1", "m2"]) {
    await t.call("POST", "/v1/nodes", {
      name: n,
      type: "satellite",
      net_interfaces: [{ name: "default", address: "10.1.0.1" }],
    });
    await t.call("POST", `/v1/nodes/${n}/storage-pools`, {
      storage_pool_name: "fast",
      provider_kind: "LVM_THIN",
      props: { "StorDriver/StorPoolName": "vg/thin" },
    });
  }
  await t.call("POST", "/v1/resource-definitions", { resource_definition: { name: "res" } });
  await t.call("POST", "/v1/resource-definitions/res/volume-definitions", {
    volume_definition: { size_kib: 4096 },
  });
  await t.call("POST", "/v1/resource-definitions/res/resources", [
    { resource: { node_name: "m1", props: { StorPoolName: "fast" } } },
    { resource: { node_name: "m2", props: { StorPoolName: "fast" } } },
  ]);
  await t.running.store.write((tx) =>
    tx.putErrorReport({
      id: "00000001-00000-000001",
      nodeName: "ctl-h",
      errorTimeMs: 0,
      module: "CONTROLLER",
      version: "x",
      peer: null,
      exception: "Error",
      exceptionMessage: "m",
      originFile: null,
      originMethod: null,
      originLine: null,
      text: "t",
    }),
  );
});
after(() => t.close());

async function scrape(query = ""): Promise<{ text: string; type: string | null }> {
  const res = await fetch(`${t.running.url}/metrics${query}`);
  assert.equal(res.status, 200);
  return { text: await res.text(), type: res.headers.get("content-type") };
}

test("controller /metrics: a live scrape from the store and the observed state", async () => {
  const { text, type } = await scrape();
  assert.match(type ?? "", /^text\/plain; version=0\.0\.4/);
  const has = (line: string): void => assert.ok(text.split("\n").includes(line), line);
  has(
    'linstor_node_state{node="m1",nodetype="SATELLITE",address="10.1.0.1",encryption="PLAIN",port="3366"} 2',
  );
  has(
    'linstor_node_state{node="m2",nodetype="SATELLITE",address="10.1.0.1",encryption="PLAIN",port="3366"} 0',
  );
  has('linstor_resource_definition_resource_count{name="res",resource_group="DfltRscGrp"} 2');
  has(
    'linstor_volume_definition_size_bytes{name="res",volume_number="0",resource_group="DfltRscGrp"} 4194304',
  );
  has('linstor_resource_state{name="res",node="m1"} -1');
  has(
    'linstor_volume_state{resource="res",node="m2",volume="0",device_path="",storage_pool="fast"} -1',
  );
  has(
    'linstor_storage_pool_capacity_free_bytes{storage_pool="fast",node="m1",driver="LVM_THIN",backing_pool="vg/thin"} 524288',
  );
  assert.doesNotMatch(text, /capacity_free_bytes\{storage_pool="fast",node="m2"/);
  has('linstor_error_reports_count{hostname="ctl-h",module="CONTROLLER"} 1');
  const scrapes = Number(/^linstor_scrape_requests_count (\d+)$/m.exec(text)?.[1]);
  assert.equal(
    Number(/^linstor_scrape_requests_count (\d+)$/m.exec((await scrape()).text)?.[1]),
    scrapes + 1,
  );
});

test("controller /metrics: resource, storage_pools and error_reports=false leave families out", async () => {
  const { text } = await scrape("?resource=false&storage_pools=false&error_reports=false");
  assert.doesNotMatch(text, /linstor_resource_state|linstor_storage_pool|linstor_error_reports/);
  assert.match(text, /^linstor_node_state\{/m);
  assert.match((await scrape("?resource=true")).text, /^linstor_resource_state\{/m);
});

/** promtool's naming lints on names that LINSTOR fixed and dashboards query. */
const linstorNameLints = [
  /^linstor_\w+_count non-histogram and non-summary metrics should not have "_count" suffix$/,
  /^linstor_scrape_requests_count counter metrics should have "_total" suffix$/,
];

test("controller /metrics: promtool check metrics reads the scrape", (ctx) => {
  const probe = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  if (probe.error !== undefined) {
    ctx.skip("promtool is not installed");
    return;
  }
  return scrape().then(({ text }) => {
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    const complaints = `${check.stdout}${check.stderr}`
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
    // 0: clean; 3: lint findings only (a parse error is 1). Only LINSTOR's own names may be flagged.
    assert.ok(check.status === 0 || check.status === 3, `promtool: ${complaints.join("; ")}`);
    const other = complaints.filter((l) => !linstorNameLints.some((re) => re.test(l)));
    assert.deepEqual(other, []);
  });
});
