//! Named scenario tests on the simulator, one failure mode each. Every step runs the checkers
//! (src/testing/checkers/checkers.ts), so each test also asserts (a)..(f) all along.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AfterSb0pri, AfterSb1pri, AfterSb2pri, NodeId } from "../engine/mod.js";
import { createTestCluster, type Cluster } from "./cluster.js";
import { blockSizeBytes, payloadEncode, payloadWriteId } from "./payload.js";
import {
  connectAll,
  converge,
  demote,
  describe,
  engineMissing,
  engineReady,
  promote,
  waitDone,
  writeBlocks,
} from "./scenario_helpers.js";

const skip = engineReady() ? false : engineMissing;

function blockWriter(t: Cluster, node: NodeId, block: number): number {
  const id = payloadWriteId(t.node(node).disk.peekBlock(block), 0, block);
  return id <= 0 ? -1 : t.oracle.writes.get(id)!.node;
}

/**
 * Four nodes, quorum off, the diskless n3 Primary. n1, invalidated (Inconsistent), follows
 * n3 while cut off from n0 and n2, and n3's write w_b of `block` reaches n1 only (its peer
 * ack tells n1 that n0 and n2 lack it). The partition is still in place on return.
 */
function loneWriteOfDisklessPrimary(block: number): { t: Cluster; wbId: number } {
  const t = createTestCluster({
    nodes: "DDDd",
    sizeBlocks: 256,
    engine: { quorum: "off", pingIntTicks: 100, resyncRateKiBps: 40 },
  });
  connectAll(t);
  promote(t, 3);
  writeBlocks(t, 3, 0, 16);
  t.admin(1, { type: "invalidate" });
  assert.ok(
    t.runUntil(() => t.node(1).view()!.disk === "Inconsistent", 200),
    describe(t),
  );
  t.net.partition([1, 3], [0, 2]);
  assert.ok(
    t.runUntil(() => {
      const v = t.node(1).view()!;
      return v.peer(0)!.connection !== "Connected" && v.peer(2)!.connection !== "Connected";
    }, 300),
    describe(t),
  );
  const wb = t.write(3, block, 1);
  const wbId = wb.write!.writeId;
  waitDone(t, [wb]);
  assert.equal(payloadWriteId(t.node(1).disk.peekBlock(block), 0, block), wbId);
  return { t, wbId };
}

test("recovery: primary crash mid-write, torn activity-log write (R=3)", { skip }, () => {
  const t = createTestCluster({ nodes: "DDD", engine: { quorum: "majority" } });
  connectAll(t);
  promote(t, 0);
  writeBlocks(t, 0, 0, 8);
  waitDone(t, [t.flush(0)]);
  // Block 40 lies in an extent the activity log does not hold: a transaction must come first.
  const n0 = t.node(0);
  n0.disk.crashOutcomeForced = "torn";
  const write = t.write(0, 40, 2);
  assert.ok(
    n0.disk.metadataPendingCount() > 0,
    "the AL transaction is issued before the data write",
  );
  n0.crash();
  assert.equal(n0.disk.stats.metadataTorn, 1, "the AL transaction was torn");
  assert.equal(write.done, false);
  assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 200));
  promote(t, 1);
  writeBlocks(t, 1, 41, 4);
  n0.restart();
  converge(t);
  assert.equal(t.node(0).view()!.role, "Secondary");
});

test(
  "recovery: primary crash with data writes in flight, AL resync on restart (R=2)",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DD", disk: { writeLatencyTicksMin: 3 } });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 4);
    const open = [t.write(0, 20, 3), t.write(0, 30, 1)];
    t.run(2);
    t.node(0).crash();
    assert.ok(open.some((r) => !r.done));
    t.node(0).restart();
    converge(t);
  },
);

test(
  "network: partition 0|12 (isolate primary, symmetric, quorum majority, io-error)",
  { skip },
  () => {
    const t = createTestCluster({
      nodes: "DDD",
      engine: { quorum: "majority", onNoQuorum: "io-error" },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 8);
    t.net.partition([0], [1, 2]);
    const cut = t.write(0, 5, 1);
    assert.ok(
      t.runUntil(() => t.node(0).view()!.quorum === false, 500),
      `n0 keeps quorum: ${describe(t)}`,
    );
    assert.ok(
      t.runUntil(() => cut.done, 500),
      "the write on the isolated primary completes",
    );
    assert.equal(
      cut.ok,
      false,
      "without quorum the isolated primary must fail the write (io-error)",
    );
    assert.equal(t.node(0).view()!.canWrite(), false);
    promote(t, 1);
    writeBlocks(t, 1, 8, 8);
    t.net.heal();
    converge(t);
    // The majority's writes won; n0's failed write may or may not be there, nothing acked is lost.
    for (let b = 8; b < 16; b++) assert.equal(blockWriter(t, 0, b), 1);
  },
);

test(
  "network: partition 0|12 asymmetric (primary can send, not receive), quorum majority",
  { skip },
  () => {
    const t = createTestCluster({
      nodes: "DDD",
      engine: { quorum: "majority", onNoQuorum: "io-error" },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 4);
    t.net.partition([1, 2], [0], "asymmetric");
    t.write(0, 5, 1);
    t.run(300);
    assert.equal(t.node(0).view()!.canWrite(), false, describe(t));
    promote(t, 1);
    t.net.heal();
    converge(t);
  },
);

test(
  "resync: secondary rejoins after 40 writes, only the 40 written blocks are resynced",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DDD", sizeBlocks: 256, engine: { quorum: "majority" } });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 4);
    waitDone(t, [t.flush(0)]);
    t.net.partition([2], [0, 1]);
    assert.ok(t.runUntil(() => t.node(0).view()!.peer(2)!.connection !== "Connected", 500));
    writeBlocks(t, 0, 10, 40, 5); // blocks 10, 15, ..., 205
    waitDone(t, [t.flush(0)]);
    assert.equal(
      t.node(0).view()!.peer(2)!.bitmap.count(),
      40,
      "n0 tracks exactly the 40 blocks n2 lacks",
    );
    const before = t.stats.resyncBlocks;
    const sources = new Set<NodeId>();
    t.onSend = (from, _to, message) => {
      if (message.type === "syncStart") sources.add(from);
    };
    t.net.heal();
    converge(t);
    assert.equal(
      sources.size,
      1,
      `n2 resyncs from one source, not from ${[...sources].join(" and ")}`,
    );
    assert.equal(t.stats.resyncBlocks - before, 40, "bitmap resync of the marked blocks only");
  },
);

interface SbCase {
  name: string;
  afterSb0pri?: AfterSb0pri;
  afterSb1pri?: AfterSb1pri;
  afterSb2pri?: AfterSb2pri;
  /** Primaries when the split heals: none, n0 only, or both. */
  primaries: 0 | 1 | 2;
  /** Blocks each side writes during the split. */
  changes: [number, number];
  /** The node whose changes are discarded, or "disconnect". */
  expect: NodeId | "disconnect";
  /** Overrides the engine's ping timeout for this case. */
  pingTimeoutTicks?: number;
}

const sbCases: SbCase[] = [
  {
    name: "after-sb-0pri disconnect",
    afterSb0pri: "disconnect",
    primaries: 0,
    changes: [3, 5],
    expect: "disconnect",
  },
  {
    name: "after-sb-0pri discard-younger-primary",
    afterSb0pri: "discard-younger-primary",
    primaries: 0,
    changes: [3, 5],
    expect: 1,
  },
  {
    name: "after-sb-0pri discard-older-primary",
    afterSb0pri: "discard-older-primary",
    primaries: 0,
    changes: [3, 5],
    expect: 0,
  },
  {
    name: "after-sb-0pri discard-zero-changes",
    afterSb0pri: "discard-zero-changes",
    primaries: 0,
    changes: [3, 0],
    expect: 1,
  },
  {
    name: "after-sb-0pri discard-least-changes",
    afterSb0pri: "discard-least-changes",
    primaries: 0,
    changes: [3, 5],
    expect: 0,
    // A ping timeout right after the first writes would mark them on n0 too (counted as
    // changes, as DRBD counts them); a longer timeout keeps the counts to the split itself.
    pingTimeoutTicks: 30,
  },
  {
    name: "after-sb-0pri discard-node-node1",
    afterSb0pri: { discardNode: "node1" },
    primaries: 0,
    changes: [3, 5],
    expect: 1,
  },
  {
    name: "after-sb-1pri disconnect",
    afterSb1pri: "disconnect",
    primaries: 1,
    changes: [3, 5],
    expect: "disconnect",
  },
  {
    name: "after-sb-1pri discard-secondary",
    afterSb1pri: "discard-secondary",
    primaries: 1,
    changes: [3, 5],
    expect: 1,
  },
  {
    name: "after-sb-1pri consensus (0pri says discard the secondary)",
    afterSb0pri: "discard-younger-primary",
    afterSb1pri: "consensus",
    primaries: 1,
    changes: [3, 5],
    expect: 1,
  },
  {
    name: "after-sb-2pri disconnect",
    afterSb2pri: "disconnect",
    primaries: 2,
    changes: [3, 5],
    expect: "disconnect",
  },
];

for (const c of sbCases) {
  test(`split brain: ${c.name} (R=2, quorum off)`, { skip }, () => {
    const engine = {
      ...(c.afterSb0pri === undefined ? {} : { afterSb0pri: c.afterSb0pri }),
      ...(c.afterSb1pri === undefined ? {} : { afterSb1pri: c.afterSb1pri }),
      ...(c.afterSb2pri === undefined ? {} : { afterSb2pri: c.afterSb2pri }),
      ...(c.pingTimeoutTicks === undefined ? {} : { pingTimeoutTicks: c.pingTimeoutTicks }),
    };
    const t = createTestCluster({ nodes: "DD", engine });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 4);
    // A flush empties the transfer log (barrier acked), so the split starts with no bits.
    waitDone(t, [t.flush(0)]);
    t.net.partition([0], [1]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 500));
    promote(t, 1);
    // Both sides write without each other: that is the split brain.
    writeBlocks(t, 0, 10, c.changes[0]);
    writeBlocks(t, 1, 20, c.changes[1]);
    writeBlocks(t, 0, 30, 1);
    if (c.changes[1] > 0) writeBlocks(t, 1, 30, 1); // the same block on both sides
    waitDone(t, [t.flush(0), t.flush(1)]);
    if (c.primaries < 2) demote(t, 1);
    if (c.primaries < 1) demote(t, 0);
    t.net.heal();
    assert.ok(
      t.runUntil(() => t.splitBrains.length >= 2, 500),
      `split brain not detected: ${describe(t)}`,
    );
    const victims = t.splitBrains.filter((s) => s.resolution === "victim").map((s) => s.node);
    if (c.expect === "disconnect") {
      assert.deepEqual(victims, []);
      assert.ok(t.splitBrains.every((s) => s.resolution === "disconnect"));
      assert.ok(
        t.runUntil(() => t.node(1).view()!.peer(0)!.connection === "StandAlone", 100),
        describe(t),
      );
      // The operator picks n1 as the victim.
      if (c.primaries === 2) demote(t, 1);
      t.admin(1, { type: "connect", peer: 0, discardMyData: true });
      t.admin(0, { type: "connect", peer: 1 });
    } else {
      assert.deepEqual(victims, [c.expect], `victim: ${JSON.stringify(t.splitBrains)}`);
    }
    const victim = c.expect === "disconnect" ? 1 : c.expect;
    const survivor = 1 - victim;
    converge(t);
    // Nothing merged: every block on every node is the survivor's (or from before the split).
    for (const node of [0, 1]) {
      const wrote = blockWriter(t, node, 30);
      if (c.changes[survivor] > 0 || survivor === 0)
        assert.equal(wrote, survivor, `block 30 on n${node}`);
      for (let i = 0; i < c.changes[victim]; i++) {
        const block = (victim === 0 ? 10 : 20) + i;
        assert.notEqual(
          blockWriter(t, node, block),
          victim,
          `n${node} block ${block} still has the victim's write`,
        );
      }
    }
  });
}

test(
  "diskless: a diskless primary loses the peer serving its read mid-read (DDd)",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DDd", engine: { quorum: "majority" } });
    connectAll(t);
    promote(t, 2);
    writeBlocks(t, 2, 0, 8);
    let server = -1;
    t.onSend = (from, to, message) => {
      if (from === 2 && message.type === "readRequest" && server < 0) server = to;
    };
    const read = t.read(2, 0, 8);
    assert.ok(server === 0 || server === 1, "the read went to a diskful peer");
    t.node(server).crash();
    assert.ok(
      t.runUntil(() => read.done, 500),
      `read hangs: ${describe(t)}`,
    );
    assert.equal(read.ok, true, "the read fails over to the other UpToDate peer");
    assert.equal(read.readIds!.length, 8);
    t.node(server).restart();
    converge(t);
  },
);

test("single primary: a second promotion is refused while connected (R=3)", { skip }, () => {
  const t = createTestCluster({ nodes: "DDD" });
  connectAll(t);
  promote(t, 0);
  const request = t.admin(1, { type: "primary" });
  assert.ok(t.runUntil(() => request.done, 300));
  assert.equal(request.ok, false);
  assert.equal(t.node(1).view()!.canWrite(), false);
});

test("scale: 32 nodes (30 diskful, 2 diskless) connect, replicate and converge", { skip }, () => {
  const t = createTestCluster({
    nodes: "D".repeat(30) + "dd",
    sizeBlocks: 32,
    engine: { quorum: "majority" },
    // One tick per hop: with 496 links, exponential delays would trip 5-tick ping timeouts.
    network: { oneWayDelayTicksMean: 0 },
  });
  connectAll(t, 2000);
  promote(t, 31);
  writeBlocks(t, 31, 0, 8);
  waitDone(t, [t.flush(31)]);
  t.node(5).crash();
  writeBlocks(t, 31, 8, 4);
  t.node(5).restart();
  converge(t);
  for (const node of t.nodes.filter((n) => n.diskful)) assert.equal(blockWriter(t, node.id, 9), 31);
});

test(
  "verify: online verify finds a block a Secondary silently lost, and repairs it",
  { skip },
  () => {
    // The corruption is outside the fault model (a disk that lost a write without saying so),
    // so the per-tick block checks are off; the final convergence check runs them all.
    const t = createTestCluster({
      nodes: "DDD",
      engine: { verifyAlg: true, quorum: "majority" },
      checkers: { fullCheckIntervalTicks: 0, bitmapCheckLive: false },
    });
    connectAll(t);
    promote(t, 0);
    const [older] = writeBlocks(t, 0, 5, 1);
    writeBlocks(t, 0, 5, 1);
    writeBlocks(t, 0, 20, 4);
    waitDone(t, [t.flush(0)]);
    // n1's disk silently went back to the older write of block 5.
    t.node(1).disk.writeDirect(5 * blockSizeBytes, payloadEncode(older!.write!.writeId, 5, 1, 0));
    const verify = t.admin(0, { type: "verify", peer: 1 });
    assert.ok(
      t.runUntil(() => t.verifyResults.length > 0, 2000),
      describe(t),
    );
    assert.equal(verify.ok, true, verify.error);
    assert.ok(t.verifyResults[0]!.outOfSyncBlocks >= 1, "verify found the difference");
    converge(t);
    assert.equal(blockWriter(t, 1, 5), 0);
    assert.equal(payloadWriteId(t.node(1).disk.peekBlock(5), 0, 5), older!.write!.writeId + 1);
  },
);

test(
  "resync: a restarted Secondary's second source moves only its activity-log extents, not a full sync (R=3)",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DDD", sizeBlocks: 256, engine: { quorum: "majority" } });
    connectAll(t);
    promote(t, 0);
    // Seven extents of four blocks: n2's activity log is full of hot extents.
    writeBlocks(t, 0, 0, 28);
    waitDone(t, [t.flush(0)]);
    // Keep the Primary writing while n2 dies and comes back.
    const open = [t.write(0, 1, 2), t.write(0, 9, 1)];
    t.node(2).crash();
    t.node(2).restart();
    const marked = Math.max(
      t.node(2).view()!.peer(0)!.bitmap.count(),
      t.node(2).view()!.peer(1)!.bitmap.count(),
    );
    assert.ok(marked > 0 && marked <= 28, `n2 marks its hot extents: ${marked}`);
    const moved = new Map<NodeId, number>();
    const starts: string[] = [];
    t.onSend = (from, to, message) => {
      if (to !== 2) return;
      if (message.type === "syncStart") starts.push(`n${from} full=${message.full}`);
      let blocks = 0;
      if (message.type === "resyncReply" && message.ok && message.data !== undefined)
        blocks = message.data.length / blockSizeBytes;
      else if (message.type === "inSync") blocks = message.blockCount;
      moved.set(from, (moved.get(from) ?? 0) + blocks);
    };
    waitDone(t, open);
    converge(t);
    for (const [from, blocks] of moved) {
      assert.ok(
        blocks <= 28 + 3,
        `n${from} moved ${blocks} blocks to n2 (syncStarts: ${starts.join(", ")}), at most the activity log's worth`,
      );
    }
  },
);

test(
  "resync: a lagging source's reply read before a newer Primary write does not overwrite it, also after the target lost the Primary (R=3)",
  { skip },
  () => {
    // Seed 638: n1 is SyncTarget of the Secondary n2, which read block 10 before the
    // Primary's newer write w_b to it reached n2. The reply is held on the n2→n1 path while
    // n1 gets w_b, loses the Primary and reconnects (forgetting which blocks its stream
    // wrote). The reply's stream position is older than w_b: n1 keeps w_b.
    const block = 10;
    // Pings every 100 ticks: a held path is not a dead link.
    const t = createTestCluster({
      nodes: "DDD",
      engine: { quorum: "off", pingIntTicks: 100 },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 16);
    t.net.partition([1], [0, 2]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(2)!.connection !== "Connected", 300));
    const [wa] = writeBlocks(t, 0, block, 1);
    // n1 meets only n2, which holds bits for it: n2 becomes its resync source.
    t.net.heal();
    t.net.partition([1], [0]);
    let held = false;
    t.onSend = (from, to, message) => {
      if (from !== 2 || to !== 1 || message.type !== "resyncReply" || held) return;
      if (message.block > block || message.block + message.data!.length / blockSizeBytes <= block)
        return;
      held = true;
      t.net.clog(2, 1, 80);
    };
    assert.ok(
      t.runUntil(() => held, 300),
      `n2 sends block ${block} to n1: ${describe(t)}`,
    );
    t.onSend = null;
    // n1 reaches the Primary and gets the newer write w_b while n2's reply waits.
    t.net.heal();
    t.net.clog(2, 1, 60);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(0)!.replication !== "Off", 40),
      describe(t),
    );
    // n2 learns that n1 gets the Primary's writes (it does not mark w_b for n1).
    t.run(10);
    const wb = t.write(0, block, 1);
    waitDone(t, [wb], 30);
    assert.equal(payloadWriteId(t.node(1).disk.peekBlock(block), 0, block), wb.write!.writeId);
    // Once w_b is barrier-acked (no longer in the transfer log: nobody marks it for n1), n1
    // loses the Primary (its stream's protection is reset) and reconnects; then the held
    // reply arrives.
    t.run(8);
    t.net.disconnect(1, 0);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(0)!.replication !== "Off", 40),
      describe(t),
    );
    assert.ok(
      t.runUntil(() => t.net.inFlightCount((m) => m.type === "resyncReply") === 0, 80),
      describe(t),
    );
    assert.ok(wa !== undefined);
    assert.equal(
      payloadWriteId(t.node(1).disk.peekBlock(block), 0, block),
      wb.write!.writeId,
      "n1 keeps the newer write",
    );
    converge(t);
  },
);

test(
  "resync: an interrupted full sync finished from an older generation's node adopts that generation (R=3)",
  { skip },
  () => {
    // Seed 3916: n0, Inconsistent toward n1's newer generation, is left with only n2 (older
    // generation, Outdated) and takes a full sync from it. It holds n2's data afterwards, so it
    // must carry n2's generation, not the newer one it never finished (which would later make
    // it look newer than n1, the node that really holds that generation's writes).
    const t = createTestCluster({ nodes: "DDD", sizeBlocks: 256, engine: { quorum: "off" } });
    connectAll(t);
    promote(t, 1);
    writeBlocks(t, 1, 0, 8);
    t.net.partition([2], [0, 1]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(2)!.connection !== "Connected", 300));
    writeBlocks(t, 1, 8, 8);
    const newer = t.node(1).view()!.currentUuid;
    const older = t.node(2).view()!.currentUuid;
    assert.notEqual(newer, older, describe(t));
    // n0 starts a full sync from n1 and loses it half way.
    t.admin(0, { type: "invalidate" });
    assert.ok(
      t.runUntil(() => t.node(0).view()!.peer(1)!.replication === "SyncTarget", 100),
      describe(t),
    );
    t.run(3);
    t.node(1).crash();
    t.node(0).crash();
    t.node(0).restart();
    assert.equal(t.node(0).view()!.disk, "Inconsistent", describe(t));
    t.net.heal();
    assert.ok(
      t.runUntil(() => {
        const v = t.node(0).view()!;
        return v.disk !== "Inconsistent" && v.peer(2)!.replication === "Established";
      }, 1000),
      describe(t),
    );
    // (A UUID shows once the superblock holding it is durable.)
    assert.ok(
      t.runUntil(() => t.node(0).view()!.currentUuid === older, 50),
      `n0 holds n2's generation ${older}, not ${t.node(0).view()!.currentUuid}`,
    );
    t.node(1).restart();
    converge(t);
  },
);

test(
  "resync: a restarted Inconsistent node does not take a full sync from the other side of a split brain (R=3)",
  { skip },
  () => {
    // Seed 3290: n1, Inconsistent under a full sync from n0 (its own line), crashes and
    // restarts; it then meets only n2, merely Consistent, of the rival line of an earlier split
    // brain. Its resync target was not persisted: taking n2's data would make n1 a silent
    // split-brain victim, and n1 would later hand n2's data to n0 as well. It waits for a
    // source of its own generation (row @J0).
    const t = createTestCluster({ nodes: "DDD", engine: { quorum: "off" } });
    connectAll(t);
    promote(t, 1);
    writeBlocks(t, 1, 0, 8);
    t.net.partition([2], [0, 1]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(2)!.connection !== "Connected", 300));
    const [ours] = writeBlocks(t, 1, 8, 4);
    promote(t, 2);
    writeBlocks(t, 2, 20, 4);
    demote(t, 2);
    demote(t, 1);
    const line = t.node(1).view()!.currentUuid;
    assert.notEqual(line, t.node(2).view()!.currentUuid, describe(t));
    // n2 restarts merely Consistent; n1 starts a full sync from n0 and loses it half way.
    t.node(2).crash();
    t.node(2).restart();
    t.admin(1, { type: "invalidate" });
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(0)!.replication === "SyncTarget", 100),
      describe(t),
    );
    t.node(0).crash();
    t.node(1).crash();
    t.node(1).restart();
    assert.equal(t.node(1).view()!.disk, "Inconsistent", describe(t));
    t.net.heal();
    t.run(200);
    assert.equal(t.node(1).view()!.currentUuid, line, `n1 stays on its line: ${describe(t)}`);
    assert.equal(t.node(1).view()!.peer(2)!.replication, "Established", describe(t));
    // n0 comes back: n1 takes its own line's data from it.
    t.node(0).restart();
    assert.ok(
      t.runUntil(() => t.node(1).view()!.disk !== "Inconsistent", 500),
      describe(t),
    );
    assert.ok(ours !== undefined);
    assert.equal(blockWriter(t, 1, 8), 1, "n1 holds its own line's write");
  },
);

test(
  "resync: a target keeps its bit for a source the Primary's peer ack left out of a newer write (R=3, diskless Primary)",
  { skip },
  () => {
    // Seed 3809: n1, Inconsistent, follows the diskless Primary n2 while cut off from n0.
    // n2's write to block 63 leaves for n0 and n1 (protocol A: it completes once sent), but
    // n0's copy is lost with its link to n2; n2's peer acks tell n1 that n0 lacks it. n1 then
    // takes a full sync from n0 and skips n0's older data for block 63 (its own is the
    // Primary's newer write): its bit for n0 must stay, as the Primary keeps no bitmap.
    const t = createTestCluster({ nodes: "DDd", protocol: "A", engine: { quorum: "off" } });
    connectAll(t);
    promote(t, 2);
    writeBlocks(t, 2, 0, 64);
    waitDone(t, [t.flush(2)]);
    t.admin(1, { type: "invalidate" });
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(0)!.replication === "SyncTarget", 100),
      describe(t),
    );
    t.net.partition([0], [1]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 100));
    t.net.heal();
    t.net.partition([0], [1]);
    t.net.clog(2, 0, 50);
    const newer = t.write(2, 63, 1);
    t.run(1);
    t.net.disconnect(0, 2);
    t.net.partition([0], [1, 2]);
    waitDone(t, [newer]);
    assert.equal(newer.ok, true, describe(t));
    t.run(10);
    t.net.heal();
    t.net.partition([0], [2]);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.disk !== "Inconsistent", 500),
      describe(t),
    );
    assert.equal(blockWriter(t, 1, 63), 2, "n1 keeps the Primary's newer write");
    assert.ok(
      t.node(1).view()!.peer(0)!.bitmap.isSet(63),
      `n1 marks block 63 for n0: ${describe(t)}`,
    );
    t.net.heal();
    converge(t);
  },
);

test(
  "split brain: a victim taking the survivor's data refuses the other side's Primary as a second source (R=3, quorum off)",
  { skip },
  () => {
    // Seed 2340: n1 follows n2's line but meets only n0 (the other line, Secondary) and is
    // the victim of that split brain. While it takes n0's data, it reconnects to n2, the
    // Primary of its old line; as both still carry that line's UUID, the handshake says "target
    // of the Primary" (@E1), and n1 would merge both sides. It refuses n2 until the round ends.
    const t = createTestCluster({
      nodes: "DDD",
      sizeBlocks: 256,
      engine: { quorum: "off", afterSb0pri: "discard-younger-primary" },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 8);
    t.net.partition([0], [1, 2]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 300));
    writeBlocks(t, 0, 0, 64);
    demote(t, 0);
    promote(t, 2);
    writeBlocks(t, 2, 100, 8);
    t.net.partition([1], [0, 2]);
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(2)!.connection !== "Connected", 300));
    t.net.heal();
    t.net.partition([2], [0, 1]);
    const taking = (r: string): boolean =>
      r === "WFBitMapT" || r === "SyncTarget" || r === "PausedSyncT";
    assert.ok(
      t.runUntil(() => taking(t.node(1).view()!.peer(0)!.replication), 300),
      describe(t),
    );
    t.net.heal();
    t.net.partition([0], [2]);
    let mixed = false;
    t.runUntil(() => {
      const v = t.node(1).view()!;
      if (taking(v.peer(0)!.replication) && taking(v.peer(2)!.replication)) mixed = true;
      return false;
    }, 200);
    assert.ok(!mixed, `n1 took data from both sides: ${describe(t)}`);
    assert.equal(t.node(1).view()!.currentUuid, t.node(0).view()!.currentUuid, describe(t));
  },
);

test(
  "resync: a follower that lost the Primary keeps a write its UpToDate source had not received yet (R=3)",
  { skip },
  () => {
    // Swarm seed 250: n1 gets the Primary's write w_b, n2 does not yet (its path is slow);
    // n1 loses the Primary and, Outdated, takes a resync from n2, still UpToDate next to the
    // Primary. n2's data for the block predates w_b: n1 keeps w_b (and its bit for n2).
    // Before, n1 took the older block and nobody marked it for n0, which holds w_b.
    const block = 10;
    const t = createTestCluster({
      nodes: "DDD",
      engine: { quorum: "all", onNoQuorum: "io-error", pingIntTicks: 100 },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 16);
    t.net.clog(0, 2, 400);
    const wb = t.write(0, block, 1);
    const wbId = wb.write!.writeId;
    assert.ok(
      t.runUntil(() => payloadWriteId(t.node(1).disk.peekBlock(block), 0, block) === wbId, 40),
      describe(t),
    );
    t.net.partition([1], [0]);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(2)!.replication === "SyncTarget", 50),
      describe(t),
    );
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(2)!.replication === "Established", 50),
      describe(t),
    );
    assert.equal(
      payloadWriteId(t.node(1).disk.peekBlock(block), 0, block),
      wbId,
      "n1 keeps the newer write",
    );
    assert.notEqual(payloadWriteId(t.node(2).disk.peekBlock(block), 0, block), wbId);
    t.net.heal();
    converge(t);
  },
);

test(
  "resync: a target keeping a newer block against a source promoted meanwhile is not UpToDate until it takes the Primary's (R=3)",
  { skip },
  () => {
    // Seed 910: n2, full-sync target of the Secondary n1, keeps the Primary n0's write w_b
    // (n1 had not received it: its resync data for the block is older) and its bit for n1.
    // n0 crashes and n1 is promoted before n2's resync ends: n1's data is the volume's now.
    // Before, n2 went UpToDate holding w_b where the Primary has older data, and served it as
    // a resync source (910: n0 spread the block the new Primary lacked).
    const block = 40;
    const t = createTestCluster({
      nodes: "DDD",
      sizeBlocks: 256,
      engine: { quorum: "off", pingIntTicks: 100 },
    });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 16);
    writeBlocks(t, 0, block, 1);
    // n2 starts a full sync from n1 alone, then rejoins n0 (which waits its turn).
    t.net.partition([2], [0]);
    assert.ok(t.runUntil(() => t.node(2).view()!.peer(0)!.connection !== "Connected", 300));
    t.admin(2, { type: "invalidate" });
    assert.ok(
      t.runUntil(() => t.node(2).view()!.peer(1)!.replication === "SyncTarget", 100),
      describe(t),
    );
    t.net.heal();
    // n1 does not get w_b.
    t.net.clog(0, 1, 400);
    assert.ok(
      t.runUntil(() => t.node(2).view()!.peer(0)!.replication !== "Off", 100),
      describe(t),
    );
    const wb = t.write(0, block, 1);
    const wbId = wb.write!.writeId;
    assert.ok(
      t.runUntil(() => payloadWriteId(t.node(2).disk.peekBlock(block), 0, block) === wbId, 50),
      describe(t),
    );
    // n1's (older) data for the block reaches n2, which keeps w_b.
    assert.ok(
      t.runUntil(() => !t.node(1).view()!.peer(2)!.bitmap.isSet(block), 100),
      describe(t),
    );
    assert.equal(payloadWriteId(t.node(2).disk.peekBlock(block), 0, block), wbId);
    t.node(0).crash();
    assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 50));
    promote(t, 1);
    const ok = t.runUntil(() => {
      const v = t.node(2).view()!;
      const same =
        payloadWriteId(t.node(2).disk.peekBlock(block), 0, block) ===
        payloadWriteId(t.node(1).disk.peekBlock(block), 0, block);
      assert.ok(v.disk !== "UpToDate" || same, `n2 UpToDate without the Primary's block`);
      return v.disk === "UpToDate" && v.peer(1)!.replication === "Established";
    }, 300);
    assert.ok(ok, describe(t));
    t.node(0).restart();
    converge(t);
  },
);

test(
  "resync: a paused source that lost the Primary keeps its bits for writes newer than the covered data (R=3)",
  { skip },
  () => {
    // Swarm seed 1499: n1, full-sync target of the Primary n2, meets n0 meanwhile (paused
    // source). n2's write w_b to block 0 reaches n0 but not n1. n2 is cut off; n1's round
    // goes on with n0 and tells it which blocks it already received ("covered", with the
    // stream position of an earlier round's source: older than w_b). Before, n0 cleared its
    // bit for block 0 against that: n1 kept the older block, n0 holds w_b, nobody marks it.
    const block = 0;
    const t = createTestCluster({
      nodes: "DDD",
      sizeBlocks: 256,
      engine: { quorum: "off", pingIntTicks: 100, resyncRateKiBps: 40 },
    });
    const invalidateFromPrimary = (): void => {
      t.net.partition([0], [1]);
      assert.ok(t.runUntil(() => t.node(1).view()!.peer(0)!.connection !== "Connected", 300));
      t.admin(1, { type: "invalidate" });
      assert.ok(
        t.runUntil(() => t.node(1).view()!.peer(2)!.replication === "SyncTarget", 200),
        describe(t),
      );
      t.net.heal();
      assert.ok(
        t.runUntil(() => t.node(1).view()!.peer(0)!.replication === "PausedSyncT", 100),
        describe(t),
      );
    };
    connectAll(t);
    promote(t, 2);
    writeBlocks(t, 2, 0, 16);
    // An earlier round of n1 on n2's stream, done in full.
    invalidateFromPrimary();
    connectAll(t);
    writeBlocks(t, 2, 16, 4);
    // This round: n1 gets n2's data for block 0, then w_b goes to n0 only.
    invalidateFromPrimary();
    t.net.clog(2, 1, 1000);
    const wb = t.write(2, block, 1);
    const wbId = wb.write!.writeId;
    assert.ok(
      t.runUntil(() => payloadWriteId(t.node(0).disk.peekBlock(block), 0, block) === wbId, 50),
      describe(t),
    );
    t.net.partition([2], [0, 1]);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.disk !== "Inconsistent", 800),
      describe(t),
    );
    const same =
      payloadWriteId(t.node(1).disk.peekBlock(block), 0, block) ===
      payloadWriteId(t.node(0).disk.peekBlock(block), 0, block);
    assert.ok(
      same || t.node(0).view()!.peer(1)!.bitmap.isSet(block),
      `n1 and n0 differ on block ${block}, unmarked: ${describe(t)}`,
    );
  },
);

test(
  "resync: a paused source the diskless Primary's peer ack left out does not count a kept block as covered (R=4)",
  { skip },
  () => {
    // Swarm seed 1152: n1, Inconsistent, follows the diskless Primary n3 while cut off from
    // n0 and n2; n3's write w_b reaches n1 only, and n3's peer ack tells n1 that both lack
    // it. Healed, n1 takes a full sync from one of them (the other waits, PausedSyncT), keeps
    // w_b against its older data and its bit for it. Before, the waiting source's turn counted
    // the block as covered: both dropped their bits, and n1 went UpToDate with a block the
    // second source lacks and nobody marks.
    const block = 0;
    const { t, wbId } = loneWriteOfDisklessPrimary(block);
    t.run(5);
    // n1 meets n0 first (full sync), n2 once it settled with n0 (it waits its turn).
    t.net.heal();
    t.net.partition([1], [2]);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(0)!.replication === "SyncTarget", 200),
      describe(t),
    );
    assert.ok(
      t.runUntil(() => {
        const v = t.node(2).view()!;
        return v.disk === "UpToDate" && v.peer(0)!.replication === "Established";
      }, 200),
      describe(t),
    );
    t.net.heal();
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(2)!.replication === "PausedSyncT", 100),
      describe(t),
    );
    assert.ok(
      t.runUntil(() => t.node(1).view()!.disk !== "Inconsistent", 600),
      describe(t),
    );
    assert.equal(payloadWriteId(t.node(1).disk.peekBlock(block), 0, block), wbId);
    const v = t.node(1).view()!;
    for (const q of [0, 2]) {
      const same = payloadWriteId(t.node(q).disk.peekBlock(block), 0, block) === wbId;
      const marked =
        v.peer(q)!.bitmap.isSet(block) || t.node(q).view()!.peer(1)!.bitmap.isSet(block);
      assert.ok(same || marked, `n${q} lacks w_b, unmarked: ${describe(t)}`);
    }
  },
);

test(
  "resync: a full-sync target drops the writes of a demoted diskless Primary of the other side of a split (R=4, quorum off)",
  { skip },
  () => {
    // Seed 3200: n1, Inconsistent, follows the diskless Primary n3 while cut off from n0 and
    // n2; n3's write w_b reaches n1 only (its peer ack tells n1 that n0 and n2 lack it). n0
    // is promoted on the other side: two Primaries, two lines. Healed, the operator demotes
    // n3 and n1 takes a full sync from n2 (n0's line). Before, n1 skipped n2's data for the
    // block (the stream of n3, still connected, wrote it) and kept its bit for n2: it went
    // UpToDate with the other side's write and resynced it to n2, never to the Primary n0.
    const block = 0;
    const { t } = loneWriteOfDisklessPrimary(block);
    promote(t, 0);
    writeBlocks(t, 0, 32, 4);
    demote(t, 3);
    // n1 meets n2 first (n0 stays apart until n1's round with n2 is over).
    t.net.heal();
    t.net.partition([1], [0]);
    t.net.partition([3], [0]);
    assert.ok(
      t.runUntil(() => t.node(1).view()!.peer(2)!.replication === "SyncTarget", 300),
      describe(t),
    );
    assert.ok(
      t.runUntil(() => t.node(1).view()!.disk !== "Inconsistent", 600),
      describe(t),
    );
    assert.equal(
      payloadWriteId(t.node(1).disk.peekBlock(block), 0, block),
      payloadWriteId(t.node(2).disk.peekBlock(block), 0, block),
      `n1 took its source's block: ${describe(t)}`,
    );
    assert.ok(!t.node(1).view()!.peer(2)!.bitmap.isSet(block), describe(t));
    t.net.heal();
    converge(t);
  },
);
