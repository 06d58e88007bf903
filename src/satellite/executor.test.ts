import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";

import { readMd } from "../cli/md.js";
import { parseResourceFile } from "../config/resource_file.js";
import { execute, observe, resourceFilePath, type ResourceRunner } from "./executor.js";
import {
  plan,
  reconcile,
  type DesiredResource,
  type DesiredState,
  type ObservedRunning,
} from "./reconcile.js";

/** Runs nothing: records which resources would run, and checks their files exist. */
class FakeRunner implements ResourceRunner {
  readonly table = new Map<string, string>();
  async start(resource: string, filePath: string, hash: string): Promise<void> {
    parseResourceFile(fs.readFileSync(filePath, "utf8"), filePath);
    this.table.set(resource, hash);
  }
  async stop(resource: string): Promise<void> {
    assert.ok(this.table.delete(resource));
  }
  running(): readonly ObservedRunning[] {
    return [...this.table].map(([resource, hash]) => ({ resource, hash }));
  }
  async resize(resource: string): Promise<void> {
    assert.ok(this.table.has(resource));
  }
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-satellite-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function resource(name: string, pool: string, nodeId: number): DesiredResource {
  return {
    name,
    nodeName: "alpha",
    host: "127.0.0.1",
    port: 7100 + nodeId,
    sharedSecret: `secret-${name}`,
    nodeId,
    peerSlots: 2,
    diskless: false,
    pool,
    volumes: [{ volume: 0, sizeKib: 2048, nbd: `unix:${root}/${name}.sock` }],
    peers: [{ name: "beta", nodeId: nodeId + 1, host: "127.0.0.2", poolDirectory: "/p" }],
  };
}

describe("satellite executor", () => {
  const thick = path.join(root, "pools", "thick");
  const thin = path.join(root, "pools", "thin");
  const config = { resourceDirectory: path.join(root, "resources"), runner: new FakeRunner() };
  const desired: DesiredState = {
    pools: [
      { name: "thick", kind: "FILE", directory: thick },
      { name: "thin", kind: "FILE_THIN", directory: thin },
    ],
    resources: [resource("r0", "thick", 0), resource("r1", "thin", 1)],
  };
  const look = () => observe([thick, thin], config);

  test("executor: reconcile, execute, observe and reconcile again gives nothing to do", async () => {
    const first = reconcile(desired, look());
    assert.ok(first.length > 0);
    await execute(first, config);
    const observed = look();
    assert.deepEqual(plan(desired, observed), { actions: [], problems: [] });

    // FILE preallocates every block; FILE_THIN leaves the backing file sparse.
    const r0 = fs.statSync(path.join(thick, "r0_00000.img"));
    const r1 = fs.statSync(path.join(thin, "r1_00000.img"));
    assert.equal(r0.size, 2048 * 1024);
    assert.equal(r1.size, 2048 * 1024);
    assert.ok(r0.blocks * 512 >= r0.size, `r0 has ${r0.blocks} blocks`);
    assert.ok(r1.blocks * 512 < r1.size / 2, `r1 has ${r1.blocks} blocks`);

    const md = readMd({
      backing: path.join(thin, "r1_00000.img"),
      meta: path.join(thin, "r1_00000.meta"),
    });
    assert.equal(md.decoded.header.nodeId, 1);
    assert.equal(md.decoded.header.peerSlots, 2);
    assert.equal(md.decoded.header.volumeBytes, 2048 * 1024);
    assert.deepEqual(
      config.runner.running().map((r) => r.resource),
      ["r0", "r1"],
    );
    const pool = observed.pools.find((p) => p.directory === thick);
    assert.ok(pool !== undefined && pool.totalKib >= pool.freeKib && pool.freeKib > 0);
  });

  test("executor: a resource removed from desired is stopped and its files deleted", async () => {
    const fewer = { ...desired, resources: [desired.resources[0]!] };
    const actions = reconcile(fewer, look());
    assert.deepEqual(
      actions.map((a) => a.type),
      ["stopResource", "deleteResourceFile", "deleteVolumeFile", "deleteVolumeFile"],
    );
    await execute(actions, config);
    assert.deepEqual(reconcile(fewer, look()), []);
    assert.deepEqual(fs.readdirSync(thin), []);
    assert.ok(!fs.existsSync(resourceFilePath(config, "r1")));
    assert.deepEqual(fs.readdirSync(thick).sort(), ["r0_00000.img", "r0_00000.meta"]);
  });

  test("executor: a half-created backing file is grown after a crash", async () => {
    const r2 = { ...resource("r2", "thick", 2), volumes: [{ volume: 0, sizeKib: 1024 }] };
    const more = { ...desired, resources: [desired.resources[0]!, r2] };
    fs.writeFileSync(path.join(thick, "r2_00000.img"), new Uint8Array(4096));
    const actions = reconcile(more, look());
    assert.equal(actions[0]?.type, "growBacking");
    await execute(actions, config);
    assert.deepEqual(reconcile(more, look()), []);
    assert.equal(fs.statSync(path.join(thick, "r2_00000.img")).size, 1024 * 1024);
  });

  test("executor: toggle-disk diskless removes the files; a joining disk starts Inconsistent", async () => {
    const r0 = desired.resources[0]!;
    // Back to r0 alone (the tests above left r2).
    await execute(reconcile({ ...desired, resources: [r0] }, look()), config);
    const diskless = { ...desired, resources: [{ ...r0, diskless: true }] };
    const actions = reconcile(diskless, look());
    assert.deepEqual(
      actions.map((a) => a.type),
      ["writeResourceFile", "restartResource", "removeDisk", "removeDisk"],
    );
    await execute(actions, config);
    assert.ok(!fs.readdirSync(thick).some((f) => f.startsWith("r0_")));
    const joining = { ...desired, resources: [{ ...r0, joining: true }] };
    await execute(reconcile(joining, look()), config);
    assert.deepEqual(reconcile(joining, look()), []);
    const md = readMd({
      backing: path.join(thick, "r0_00000.img"),
      meta: path.join(thick, "r0_00000.meta"),
    });
    assert.equal(md.decoded.meta.superblock.consistent, false);
    assert.equal(md.decoded.meta.superblock.wasUpToDate, false);
  });
});
