//! The control plane end to end: a controller (with its satellite link) and three satellites
//! on their own loopback addresses; a resource group with place-count 2 spawns a volume
//! through the REST API, the call returns once the satellites applied it, both replicas
//! become UpToDate and connected, and data written through one node's NBD URI (as the
//! controller reports it) reads back identical through the other's. A satellite that stops
//! without stopping its daemons (as after SIGKILL) is restarted and adopts them.
//!
//! Every wait is a poll of the controller's view with a deadline, never a sleep.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { startController, type RunningController } from "../../src/controller/mod.js";
import { createLogger } from "../../src/io/log.js";
import type { SatelliteReport } from "../../src/satellite/protocol.js";
import { startSatellite, type RunningSatellite } from "../../src/satellite/satellite.js";
import { must, waitFor } from "./daemon_cluster.js";
import { registerSatellites, restCall, viewResources, type ResourceView } from "./test_data.js";

const quiet = createLogger({ write: () => undefined });
const hosts = ["127.0.10.11", "127.0.10.12", "127.0.10.13"];
const names = ["s1", "s2", "s3"];
const nbdPortBase = 21811;
const MiB = 1024 * 1024;

let dir: string;
let controller: RunningController;
const satellites: (RunningSatellite | undefined)[] = [];

function satelliteDir(i: number): string {
  return join(dir, "satellites", names[i]!);
}

function call(method: string, path: string, body?: unknown): Promise<unknown> {
  return restCall(controller.url, method, path, body);
}

function view(): Promise<ResourceView[]> {
  return viewResources(controller.url, "vol1");
}

/** The diskful replicas' NBD URIs once every replica is UpToDate (or Diskless) and connected. */
async function healthyUris(): Promise<string[] | undefined> {
  const rs = await view();
  const uris: string[] = [];
  for (const r of rs) {
    const diskless = r.flags.includes("DISKLESS");
    const v = r.volumes[0];
    if (v?.state?.disk_state !== (diskless ? "Diskless" : "UpToDate")) return undefined;
    const peers = Object.values(v.state.replication_states ?? {});
    if (peers.length !== rs.length - 1 || peers.some((p) => p.replication_state !== "Established"))
      return undefined;
    if (!diskless) uris.push(v.device_path ?? "");
  }
  return uris;
}

async function startOne(i: number, port: number): Promise<RunningSatellite> {
  return startSatellite({
    node: names[i]!,
    dataDir: satelliteDir(i),
    host: hosts[i]!,
    port,
    logger: quiet,
    intervalMs: 500,
  });
}

before(async () => {
  mkdirSync("/tmp/h-sat", { recursive: true });
  dir = mkdtempSync("/tmp/h-sat/cluster-");
  controller = await startController({
    dataDir: join(dir, "controller"),
    port: 0,
    host: "127.0.10.10",
    logger: quiet,
    satellites: { pollIntervalMs: 250, applyTimeoutMs: 30_000 },
  });
  for (const i of [0, 1, 2]) satellites.push(await startOne(i, 0));
});

after(async () => {
  for (const s of satellites) await s?.close(true);
  await controller?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a spawned place-count-2 volume is applied, UpToDate on both nodes, and serves data", async () => {
  await registerSatellites(
    controller.url,
    names.map((name, i) => ({
      name,
      address: hosts[i]!,
      port: satellites[i]!.port,
      poolDir: join(dir, "pools", name),
    })),
    "FILE_THIN",
    nbdPortBase,
  );
  const nodes = (await call("GET", "/v1/nodes")) as { connection_status: string }[];
  assert.deepEqual(
    nodes.map((n) => n.connection_status),
    ["ONLINE", "ONLINE", "ONLINE"],
  );
  const pools = (await call("GET", "/v1/view/storage-pools?storage_pools=pool")) as {
    free_capacity?: number;
    total_capacity?: number;
  }[];
  assert.equal(pools.length, 3);
  for (const p of pools) assert.ok(p.free_capacity! > 0 && p.total_capacity! >= p.free_capacity!);

  await call("POST", "/v1/resource-groups", {
    name: "rg2",
    select_filter: { place_count: 2, storage_pool: "pool" },
  });
  const spawned = (await call("POST", "/v1/resource-groups/rg2/spawn", {
    resource_definition_name: "vol1",
    volume_sizes: [32 * 1024],
  })) as { message: string }[];
  assert.ok(!spawned.some((rc) => /satellite/.test(rc.message)), JSON.stringify(spawned));
  // The call returned after the satellites applied it: every daemon is up and attached.
  const applied = await view();
  assert.equal(applied.length, 3); // two replicas and the tie-breaker placement adds
  const diskful = applied.filter((r) => !r.flags.includes("DISKLESS"));
  assert.equal(diskful.length, 2);
  // Attached; UpToDate once it has talked to its peer (until then DRBD says Consistent).
  for (const r of diskful)
    assert.match(r.volumes[0]?.state?.disk_state ?? "", /^(UpToDate|Consistent)$/);

  const uris = await waitFor("both replicas UpToDate and connected", healthyUris, 30_000);
  assert.equal(uris.length, 2);
  for (const uri of uris) assert.match(uri, /^nbd:\/\/127\.0\.10\.1[123]:21811\/vol1$/);

  const data = Buffer.alloc(4 * MiB);
  for (let at = 0; at < data.length; at += 32)
    createHash("sha256").update(String(at)).digest().copy(data, at);
  const input = join(dir, "in.bin");
  const output = join(dir, "out.bin");
  writeFileSync(input, data);
  await must("nbdcopy", [input, uris[0]!]);
  // The writer disconnected, so its node demoted; the other node's export promotes.
  await must("nbdcopy", [uris[1]!, output]);
  assert.ok(readFileSync(output).subarray(0, data.length).equals(data));
});

test("a satellite restarted without stopping its daemons adopts them", async () => {
  const i = names.findIndex((_, k) => readPid(k) !== undefined);
  assert.ok(i >= 0, "a satellite runs a daemon");
  const pid = readPid(i)!;
  const port = satellites[i]!.port;
  await satellites[i]!.close(false);
  satellites[i] = undefined;
  process.kill(pid, 0); // still running
  satellites[i] = await startOne(i, port);
  // The controller sees the new satellite (generation 0) and pushes again; nothing restarts.
  await waitFor("the controller to push to the restarted satellite", async () => {
    const r = (await (await fetch(`${satellites[i]!.url}/v1/report`)).json()) as SatelliteReport;
    return r.appliedGeneration > 0 && r.resources[0]?.running === true ? true : undefined;
  });
  await waitFor("the volume to be UpToDate and connected again", healthyUris, 30_000);
  assert.equal(readPid(i), pid);
});

test("a node daemon killed with SIGKILL is started again by the next pass", async () => {
  const i = names.findIndex((_, k) => readPid(k) !== undefined);
  const pid = readPid(i)!;
  process.kill(pid, "SIGKILL");
  const restarted = await waitFor("a new node daemon", async () => {
    const now = readPid(i);
    return now !== undefined && now !== pid ? now : undefined;
  });
  assert.notEqual(restarted, pid);
  await waitFor("the volume to be UpToDate and connected again", healthyUris, 30_000);
});

function readPid(i: number): number | undefined {
  try {
    const p = JSON.parse(readFileSync(join(satelliteDir(i), "run", "vol1.pid"), "utf8")) as {
      pid: number;
    };
    return p.pid;
  } catch {
    return undefined;
  }
}
