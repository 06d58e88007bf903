//! Volume resize and toggle-disk end to end through the satellites (issue 5): a controller and
//! three satellites on 127.0.30.x; a place-count-2 volume (two replicas and a tie-breaker)
//! holds a pattern written through NBD.
//! - `vd set-size` to a larger size: every replica's backing file grows, one satellite runs
//!   the online resize, every replica reports the new size without its daemon restarting,
//!   `nbdinfo` sees it, the old data is intact, and a write at the new end reads back from the
//!   other replica.
//! - toggle-disk of the tie-breaker into diskful: it gets a disk, full-syncs and is UpToDate
//!   with data identical to the others'.
//! - toggle-disk of a replica into diskless: its backing files are deleted once its daemon
//!   runs diskless, and the remaining replicas (and its own diskless export) serve the data.
//!
//! Every wait is a poll of the controller's view (or the pool directory) with a deadline.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { startController, type RunningController } from "../../src/controller/mod.js";
import { createLogger } from "../../src/io/log.js";
import { startSatellite, type RunningSatellite } from "../../src/satellite/satellite.js";
import { must, waitFor } from "./daemon_cluster.js";
import { describeResult, mirraMain, nbdsh } from "./nbd_helpers.js";
import {
  pattern,
  registerSatellites,
  restCall,
  viewResources,
  type ResourceView,
} from "./test_data.js";

const quiet = createLogger({ write: () => undefined });
const hosts = ["127.0.30.1", "127.0.30.2", "127.0.30.3"];
const names = ["o1", "o2", "o3"];
const nbdPortBase = 27811;
const MiB = 1024 * 1024;
const sizeBefore = 16 * MiB;
const sizeAfter = 24 * MiB;

let dir: string;
let controller: RunningController;
const satellites: RunningSatellite[] = [];

function call(method: string, path: string, body?: unknown): Promise<unknown> {
  return restCall(controller.url, method, path, body);
}

function view(): Promise<ResourceView[]> {
  return viewResources(controller.url, "vol1");
}

/**
 * Node → NBD URI of every replica once each is UpToDate (Diskless when flagged so), connected
 * to all others, and serving `sizeBytes`; undefined until then.
 */
async function healthy(sizeBytes: number): Promise<Map<string, string> | undefined> {
  const rs = await view();
  const uris = new Map<string, string>();
  for (const r of rs) {
    const diskless = r.flags.includes("DISKLESS");
    const v = r.volumes[0];
    if (v?.state?.disk_state !== (diskless ? "Diskless" : "UpToDate")) return undefined;
    if (v.usable_size_kib !== sizeBytes / 1024) return undefined;
    const peers = Object.values(v.state.replication_states ?? {});
    if (peers.length !== rs.length - 1 || peers.some((p) => p.replication_state !== "Established"))
      return undefined;
    if (v.device_path !== undefined) uris.set(r.node_name, v.device_path);
  }
  return uris;
}

/** The whole volume as one node serves it. */
async function readAll(uri: string, name: string): Promise<Buffer> {
  const out = join(dir, `${name}.bin`);
  rmSync(out, { force: true });
  await must("nbdcopy", [uri, out]);
  return readFileSync(out);
}

async function writeAt(uri: string, offset: number, data: Buffer): Promise<void> {
  const file = join(dir, "chunk.bin");
  writeFileSync(file, data);
  const r = await nbdsh(uri, `h.pwrite(open(${JSON.stringify(file)}, "rb").read(), ${offset})`);
  assert.equal(r.code, 0, describeResult(r));
}

function poolDir(node: string): string {
  return join(dir, "pools", node);
}

function readPid(node: string): number | undefined {
  try {
    const file = join(dir, "satellites", node, "run", "vol1.pid");
    return (JSON.parse(readFileSync(file, "utf8")) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

before(async () => {
  mkdirSync("/tmp/h-vr", { recursive: true });
  dir = mkdtempSync("/tmp/h-vr/ops-");
  controller = await startController({
    dataDir: join(dir, "controller"),
    port: 0,
    host: "127.0.30.10",
    logger: quiet,
    satellites: { pollIntervalMs: 250, applyTimeoutMs: 30_000 },
  });
  for (const [i, node] of names.entries())
    satellites.push(
      await startSatellite({
        node,
        dataDir: join(dir, "satellites", node),
        host: hosts[i]!,
        port: 0,
        logger: quiet,
        intervalMs: 500,
      }),
    );
  await registerSatellites(
    controller.url,
    names.map((name, i) => ({
      name,
      address: hosts[i]!,
      port: satellites[i]!.port,
      poolDir: poolDir(name),
    })),
    "FILE",
    nbdPortBase,
  );
  await call("POST", "/v1/resource-groups", {
    name: "rg2",
    select_filter: { place_count: 2, storage_pool: "pool" },
  });
  await call("POST", "/v1/resource-groups/rg2/spawn", {
    resource_definition_name: "vol1",
    volume_sizes: [sizeBefore / 1024],
  });
});

after(async () => {
  for (const s of satellites) await s.close(true);
  await controller?.close();
  rmSync(dir, { recursive: true, force: true });
});

const head = pattern("head", 4 * MiB);
const tail = pattern("tail", MiB);
let reference: Buffer;

test("vd set-size grows every replica online, keeps the data and the daemons", async () => {
  const uris = await waitFor("two replicas UpToDate", () => healthy(sizeBefore), 30_000);
  const [first, second] = [...uris.values()];
  assert.ok(first !== undefined && second !== undefined && uris.size === 2);
  await writeAt(first, 0, head);
  const pids = names.map(readPid);

  // Through the CLI, as an operator would: `mirra vd set-size`, then `mirra v list`.
  await must(process.execPath, [
    mirraMain,
    "--controllers",
    controller.url,
    "vd",
    "set-size",
    "vol1",
    "0",
    "24M",
  ]);
  await waitFor("every replica at the new size", () => healthy(sizeAfter), 30_000);
  const list = await must(process.execPath, [
    mirraMain,
    "--controllers",
    controller.url,
    "--no-color",
    "v",
    "list",
    "-r",
    "vol1",
  ]);
  assert.equal(list.match(/24(\.00)? MiB/g)?.length, uris.size, list);
  assert.deepEqual(names.map(readPid), pids, "no daemon restarted for the resize");
  for (const uri of [first, second])
    assert.equal(Number((await must("nbdinfo", ["--size", uri])).trim()), sizeAfter);
  // Every diskful node's backing file holds the new size.
  for (const node of names) {
    const img = join(poolDir(node), "vol1_00000.img");
    if (existsSync(img)) assert.equal(readFileSync(img).length, sizeAfter);
  }

  // The old data is intact, and a write at the new end reads back from the other replica.
  await writeAt(first, sizeAfter - MiB, tail);
  const back = await readAll(second, "second");
  assert.equal(back.length, sizeAfter);
  assert.ok(back.subarray(0, head.length).equals(head), "old data intact");
  assert.ok(back.subarray(sizeAfter - MiB).equals(tail), "the new end replicated");
  reference = back;
});

test("toggle-disk: the tie-breaker gets a disk and full-syncs to identical data", async () => {
  const tieBreaker = (await view()).find((r) => r.flags.includes("TIE_BREAKER"));
  assert.ok(tieBreaker !== undefined, "the spawn placed a tie-breaker");
  const node = tieBreaker.node_name;
  await call("PUT", `/v1/resource-definitions/vol1/resources/${node}/toggle-disk/diskful/pool`);
  const uris = await waitFor("three replicas UpToDate", () => healthy(sizeAfter), 60_000);
  assert.equal(uris.size, 3);
  assert.ok(existsSync(join(poolDir(node), "vol1_00000.img")));
  const data = await readAll(uris.get(node)!, "joined");
  assert.ok(data.equals(reference), "the new replica holds the same data");
});

test("toggle-disk: a replica goes diskless, loses its files, the others serve the data", async () => {
  const node = names[0]!;
  await call("PUT", `/v1/resource-definitions/vol1/resources/${node}/toggle-disk/diskless`);
  const files = ["vol1_00000.img", "vol1_00000.meta"].map((f) => join(poolDir(node), f));
  await waitFor(
    "its backing files deleted",
    async () => (files.some((f) => existsSync(f)) ? undefined : true),
    30_000,
  );
  const uris = await waitFor("the others UpToDate, it Diskless", () => healthy(sizeAfter), 30_000);
  for (const [other, uri] of uris) {
    const data = await readAll(uri, `after-${other}`);
    assert.ok(data.equals(reference), `${other} serves the data`);
  }
});
