import { test } from "node:test";
import assert from "node:assert/strict";
import { MiniCluster } from "./mini_cluster.js";
import { decideResize } from "./resize.js";
import type { NodeId, ResourceConfig } from "./types.js";

function cfg(n: number, diskless: readonly NodeId[] = []): ResourceConfig {
  const nodes = [];
  for (let i = 0; i < n; i++)
    nodes.push({
      id: i,
      name: `n${i}`,
      disk: diskless.includes(i) ? ("diskless" as const) : ("diskful" as const),
    });
  return { name: "r0", nodes, sizeBlocks: 64, options: { alExtentBlocks: 8, alExtents: 4 } };
}

/** Every node's shell reports how much its (grown) backing device holds. */
function capacities(c: MiniCluster, blocks: readonly number[]): void {
  blocks.forEach((b, id) => c.step(id, { type: "backingCapacity", sizeBlocks: b }));
}

function synced(c: MiniCluster, ids: readonly NodeId[]): boolean {
  return ids.every((id) =>
    c.node(id).peers.every((p) => p.replication === "Established" && p.bitmap.count() === 0),
  );
}

test("resize: grows to the smallest diskful capacity and resyncs the new blocks", () => {
  const c = new MiniCluster(cfg(3));
  c.settle();
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  c.write(0, 5, 0x11);
  c.settle();
  capacities(c, [128, 96, 200]);
  const r = c.adminSync(0, { type: "resize" });
  assert.deepEqual(r, { ok: true });
  for (const id of [0, 1, 2]) assert.equal(c.node(id).config.sizeBlocks, 96, `node ${id}`);
  assert.ok(c.log.includes(`0: {"kind":"resized","sizeBlocks":96}`));
  // The new blocks differ on every disk until the resync from n0 copies them.
  assert.equal(c.node(0).peer(1)!.bitmap.count(), 32);
  assert.ok(
    c.runUntil(() => synced(c, [0, 1, 2])),
    "the new blocks are resynced",
  );
  assert.ok(c.sameData(0, 1) && c.sameData(0, 2));
  assert.equal(c.byteAt(2, 90), 0xe0, "n2 holds n0's bytes of a new block");
  // The grown volume takes writes at its new end, on every replica.
  const w = c.write(0, 95, 0x22);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  assert.equal(c.byteAt(1, 95), 0x22);
  assert.equal(c.meta[1]!.bitmaps[0]!.length, 12, "n1's persisted bitmaps grew");
});

test("resize: assume-clean grows without marking anything", () => {
  const c = new MiniCluster(cfg(2));
  c.settle();
  capacities(c, [80, 80]);
  assert.deepEqual(c.adminSync(1, { type: "resize", assumeClean: true }), { ok: true });
  for (const id of [0, 1]) {
    assert.equal(c.node(id).config.sizeBlocks, 80);
    assert.equal(c.node(id).peers[0]!.bitmap.count(), 0);
  }
  c.tick(100);
  assert.equal(c.node(0).peers[0]!.replication, "Established");
  // The operator vouched for the new blocks; here they differ, which is what that risks.
  assert.notEqual(c.byteAt(0, 70), c.byteAt(1, 70));
});

test("resize: an explicit size must fit every disk; shrinking is refused", () => {
  const c = new MiniCluster(cfg(3, [2]));
  c.settle();
  capacities(c, [128, 96, 0]);
  const tooBig = c.adminSync(0, { type: "resize", sizeBlocks: 100 });
  assert.equal(tooBig.ok, false);
  assert.match(tooBig.error!, /n1 holds only/);
  const shrink = c.adminSync(0, { type: "resize", sizeBlocks: 32 });
  assert.match(shrink.error!, /Shrinking .* not supported/);
  assert.equal(c.node(0).config.sizeBlocks, 64);
  // The diskless node imposes no limit and grows with the others.
  assert.deepEqual(c.adminSync(0, { type: "resize", sizeBlocks: 72 }), { ok: true });
  for (const id of [0, 1, 2]) assert.equal(c.node(id).config.sizeBlocks, 72);
});

test("resize: refused without every diskful peer, on a non-Primary, or with no growth room", () => {
  const c = new MiniCluster(cfg(3));
  c.settle();
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  capacities(c, [128, 128, 128]);
  assert.match(c.adminSync(1, { type: "resize" }).error!, /n0 is Primary: run the resize there/);
  c.adminSync(0, { type: "disconnect", peer: 2 });
  c.settle();
  assert.match(c.adminSync(0, { type: "resize" }).error!, /n2 is not \(connect it first\)/);
  c.adminSync(0, { type: "connect", peer: 2 });
  c.adminSync(2, { type: "connect", peer: 0 });
  assert.ok(c.runUntil(() => synced(c, [0, 1, 2])));
  capacities(c, [64, 128, 128]);
  // Nothing to grow: a no-op round, as drbdadm resize on unchanged disks.
  assert.deepEqual(c.adminSync(0, { type: "resize" }), { ok: true });
  assert.equal(c.node(2).config.sizeBlocks, 64);
});

test("resize: a peer lost before the size is chosen leaves everything as it was", () => {
  const c = new MiniCluster(cfg(2));
  c.settle();
  capacities(c, [128, 128]);
  const id = c.adminCmd(0, { type: "resize" });
  c.breakLink(0, 1);
  c.settle();
  assert.match(c.admin.get(id)!.error!, /n1 disconnected during the resize; nothing changed/);
  assert.equal(c.node(0).config.sizeBlocks, 64);
});

test("resize: a peer whose disk shrank meanwhile refuses to grow, and the round says so", () => {
  const c = new MiniCluster(cfg(2));
  c.settle();
  capacities(c, [128, 128]);
  const id = c.adminCmd(0, { type: "resize" });
  c.deliver(); // resizeRequest to n1; its reply is queued
  c.step(1, { type: "backingCapacity", sizeBlocks: 70 });
  c.settle();
  assert.match(c.admin.get(id)!.error!, /Grown here, but not on n1 \(could not grow\)/);
  assert.equal(c.node(1).config.sizeBlocks, 64, "n1 kept its size and its disk");
  assert.equal(c.node(1).disk, "UpToDate");
});

test("decideResize: the operator's size, the capacity, or nothing", () => {
  const round = { requestedBlocks: 0, capacityBlocks: 96, limitedBy: "n1" };
  assert.deepEqual(decideResize(64, round), { kind: "grow", sizeBlocks: 96 });
  assert.deepEqual(decideResize(96, round), { kind: "none" });
  assert.deepEqual(decideResize(64, { ...round, requestedBlocks: 80 }), {
    kind: "grow",
    sizeBlocks: 80,
  });
  assert.equal(decideResize(64, { ...round, requestedBlocks: 97 }).kind, "refuse");
  assert.equal(decideResize(64, { ...round, requestedBlocks: 32 }).kind, "refuse");
});
