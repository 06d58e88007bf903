//! Tests of the simulator's shell (cluster.ts) itself: what it hands the engine and what it
//! keeps from it, independent of whether the engine is right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyMetadataRecord, createPersistedMeta, type MetadataRecord } from "../engine/mod.js";
import { createTestCluster } from "./cluster.js";
import {
  connectAll,
  engineMissing,
  engineReady,
  promote,
  waitDone,
  writeBlocks,
} from "./scenario_helpers.js";

const skip = engineReady() ? false : engineMissing;

test("cluster: messages of an old connection generation never reach the engine", { skip }, () => {
  const t = createTestCluster({
    nodes: "DD",
    network: { staleDeliveryProbability: 1, replayProbability: 0.2, oneWayDelayTicksMin: 3 },
  });
  connectAll(t);
  promote(t, 0);
  for (let round = 0; round < 5; round++) {
    const writes = [t.write(0, round, 1), t.write(0, 10 + round, 1)];
    t.run(1);
    t.net.disconnect(0, 1);
    waitDone(t, writes);
    connectAll(t);
  }
  assert.ok(t.net.stats.staleDelivered > 0, "the network did deliver stale messages");
  assert.equal(t.stats.staleDropped, t.net.stats.staleDelivered, "the shell dropped every one");
});

test(
  "cluster: a restarted node gets exactly the metadata records that became durable",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DDD", engine: { quorum: "majority" } });
    const issued: MetadataRecord[] = [];
    const completed = new Set<number>();
    t.trace = (line) => {
      const m = / n0 <- metadataCompleted io=(\d+) ok/.exec(line);
      if (m !== null) completed.add(Number(m[1]));
    };
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 6);
    const n0 = t.node(0);
    // Everything n0 persisted so far came back as completed, in order: fold it independently.
    const folded = createPersistedMeta(t.options.sizeBlocks, true);
    for (const record of n0.disk.metadataRecords()) {
      issued.push(record);
      applyMetadataRecord(folded, record);
    }
    assert.ok(issued.length > 0 && completed.size >= issued.length);
    assert.deepEqual(n0.meta.superblock, folded.superblock);
    assert.deepEqual(n0.meta.alExtents, folded.alExtents);
    n0.disk.crashOutcomeForced = "lost";
    t.write(0, 40, 1);
    const pending = n0.disk.metadataPendingCount();
    n0.crash();
    assert.equal(n0.disk.stats.metadataLost, pending, "pending metadata writes were lost");
    assert.deepEqual(n0.meta.alExtents, folded.alExtents, "the lost AL transaction is not applied");
    n0.restart();
    assert.ok(n0.up && n0.view() !== null);
  },
);

test(
  "checkers: a split-brain Primary may read its own data, not its rival's, only with quorum off",
  { skip },
  () => {
    const t = createTestCluster({ nodes: "DD", engine: { quorum: "off" } });
    connectAll(t);
    promote(t, 0);
    writeBlocks(t, 0, 0, 1);
    t.net.partition([0], [1]);
    t.runUntil(() => t.node(1).view()?.peer(0)?.connection !== "Connected", 200);
    promote(t, 1);
    const rivalWrite = t.write(1, 0, 1);
    waitDone(t, [rivalWrite]);
    assert.ok(rivalWrite.ok);
    // n0 still serves its own block 0: allowed, the write was acked by its rival only.
    const read = t.read(0, 0, 1);
    waitDone(t, [read]);
    assert.ok(read.ok && read.readIds![0] !== rivalWrite.write!.writeId);
    assert.notEqual(t.checkers.splitBrainView(0), null);

    const strict = createTestCluster({ nodes: "DDD", engine: { quorum: "majority" } });
    connectAll(strict);
    promote(strict, 0);
    assert.equal(strict.checkers.splitBrainView(0), null, "quorum on: every acked write");
  },
);
