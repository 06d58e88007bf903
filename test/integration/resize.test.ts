//! Online grow with real daemons (issue 4, `mirra adm resize`): data written, backing files
//! grown behind the daemons' backs (one daemon even restarted before the resize, so it
//! attaches with its metadata left at the old end), `mirra adm resize` on the Primary, the
//! new size seen by `nbdinfo`, a write at the new end, and both replicas byte-identical
//! over the whole grown volume once the new area is resynced. A restart after the resize
//! attaches the moved metadata at the agreed size.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { open, truncate } from "node:fs/promises";
import { after, test } from "node:test";

import * as C from "../../src/nbd/protocol/constants.js";
import { TestClient } from "../../src/nbd/test_client.js";
import { DaemonCluster, MiB, must, waitFor } from "./daemon_cluster.js";
import { pattern } from "./test_data.js";

const volumeBytes = 8 * MiB;
const grownFileBytes = 40 * MiB;

async function writeNbd(c: DaemonCluster, node: number, offset: number, data: Buffer) {
  const client = await TestClient.open(c.nbdAddress(node));
  try {
    await client.go(c.resource, false);
    client.send(C.CMD_WRITE, offset, data.length, 1n, C.CMD_FLAG_FUA, data);
    const reply = await client.reply();
    assert.equal(reply.error, 0, `write at ${offset} failed with NBD error ${reply.error}`);
  } finally {
    client.close();
  }
}

async function dataHash(path: string, length: number): Promise<string> {
  const file = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    await file.read(buf, 0, length, 0);
    return createHash("sha256").update(buf).digest("hex");
  } finally {
    await file.close();
  }
}

async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const file = await open(path, "r+");
  try {
    await file.write(data, 0, data.length, offset);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function nbdSize(c: DaemonCluster, node: number): Promise<number> {
  return Number((await must("nbdinfo", ["--size", c.nbdUri(node)])).trim());
}

const clusters: DaemonCluster[] = [];
after(async () => {
  for (const c of clusters) await c.destroy();
});

test("adm resize grows a two-node resource online and resyncs the new area", async () => {
  const c = await DaemonCluster.create({ nodes: 2, volumeBytes });
  clusters.push(c);
  try {
    await c.waitHealthy();
    await c.adm(0, "primary");
    const head = pattern("head", MiB);
    await writeNbd(c, 0, 0, head);
    assert.equal(await nbdSize(c, 0), volumeBytes);

    // Grow both backing files; node 1 restarts before the resize and must find its
    // metadata below the new end of the file.
    for (const disk of c.disks) await truncate(disk!, grownFileBytes);
    // What a grown LV may hold: node 1's new area is not zeroes, so only the resync from
    // the Primary makes the replicas equal there.
    await writeAt(c.disks[1]!, 20 * MiB, pattern("junk", MiB));
    await c.kill(1);
    await c.start(1);
    await c.waitHealthy();
    assert.equal(
      c.logEntries(1, "metadata found below the end of the grown device; run adm resize").length,
      1,
    );

    // Shrinking is refused; growing to what every disk holds works.
    await assert.rejects(c.adm(0, "resize", "--size", "4M"), /Shrinking/);
    await c.adm(0, "resize");
    const status = await c.status(0);
    const grownBytes = status.volumes[0]!.sizeBytes;
    assert.ok(grownBytes > 30 * MiB && grownBytes < grownFileBytes, `new size ${grownBytes}`);
    assert.equal((await c.status(1)).volumes[0]!.sizeBytes, grownBytes);
    assert.equal(await nbdSize(c, 0), grownBytes, "nbdinfo shows the new size on the Primary");
    await writeNbd(c, 0, grownBytes - MiB, pattern("tail", MiB));
    await c.waitHealthy(60_000);
    let hashes = await Promise.all(c.disks.map((d) => dataHash(d!, grownBytes)));
    assert.equal(hashes[0], hashes[1], "both replicas are identical over the grown volume");

    // --size grows file-backed disks itself, on every node.
    const newBytes = 48 * MiB;
    await c.adm(0, "resize", "--size", "48M");
    assert.equal(await nbdSize(c, 0), newBytes);
    await writeNbd(c, 0, newBytes - MiB, pattern("end", MiB));
    await c.waitHealthy(60_000);
    hashes = await Promise.all(c.disks.map((d) => dataHash(d!, newBytes)));
    assert.equal(hashes[0], hashes[1], "both replicas are identical after the second grow");

    // A restart attaches the moved metadata at the agreed size (the file still says 8 MiB).
    await c.kill(1);
    await c.start(1);
    await c.waitHealthy();
    assert.equal((await c.status(1)).volumes[0]!.sizeBytes, newBytes);
    await waitFor("no resync after the restart", async () => {
      const s = await c.status(0);
      return s.connections.every((p) => p.volumes.every((v) => v.outOfSyncKiB === 0))
        ? true
        : undefined;
    });
    const again = await Promise.all(c.disks.map((d) => dataHash(d!, newBytes)));
    assert.equal(again[0], again[1]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${c.describe()}`, { cause: err });
  }
});
