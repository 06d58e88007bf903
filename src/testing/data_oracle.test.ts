//! Unit tests of the data oracle (checkers/data_oracle.ts): floors, holders, durability on a
//! crash, split-brain relaxation, and the payload tags it reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataOracle } from "./checkers/data_oracle.js";
import { blockSizeBytes, payloadBlockTag, payloadEncode, payloadWriteId } from "./payload.js";

test("oracle: the floor is the newest acked write; older data is a loss, newer is fine", () => {
  const o = new DataOracle(8);
  const w1 = o.writeIssued(0, 2, 1, false, 1, [], 0);
  const w2 = o.writeIssued(0, 2, 1, false, 1, [], 0);
  assert.equal(o.check(2, 0), null, "nothing acked: zeros are fine");
  o.writeCompleted(w1, true, [0, 1]);
  assert.match(o.check(2, 0)!, /acked write 1 lost/);
  assert.equal(o.check(2, w2.writeId), null, "a later write in flight may already be there");
  assert.equal(o.check(2, w1.writeId), null);
  o.writeCompleted(w2, true, [0, 1]);
  assert.match(o.check(2, w1.writeId)!, /holds write 1 but write 2 was acked/);
  assert.match(o.check(3, w1.writeId)!, /never touched it/);
  assert.match(o.check(2, -1)!, /garbage/);
  assert.ok(o.owes(1, 2) && !o.owes(2, 2), "only holders owe the write");
});

test("oracle: a crash of the writer lowers floors to the newest durable write", () => {
  const o = new DataOracle(4);
  const w1 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeCompleted(w1, true, [0, 1]);
  const flushCovers = o.flushIssued();
  o.flushCompleted(flushCovers, true);
  const w2 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeCompleted(w2, true, [0, 1]);
  const w3 = o.writeIssued(0, 1, 1, true, 1, [], 0);
  o.writeCompleted(w3, true, [0, 1]);
  o.nodeCrashed(1);
  assert.equal(o.floorOf(0), w2.writeId, "a crash of another node changes nothing");
  o.nodeCrashed(0);
  assert.equal(o.floorOf(0), w1.writeId, "unflushed w2 may be lost");
  assert.equal(o.floorOf(1), w3.writeId, "FUA w3 is durable");
  assert.equal(o.check(0, w2.writeId), null);
});

test("oracle: open writes keep a block unsettled; split-brain victims relax floors", () => {
  const o = new DataOracle(4);
  const w1 = o.writeIssued(0, 0, 2, false, 1, [], 0);
  assert.ok(o.unsettled(0));
  o.writeCompleted(w1, true, [0]);
  assert.ok(!o.unsettled(0));
  const w2 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeIndeterminate(w2);
  assert.ok(o.unsettled(0) && !o.unsettled(1));
  o.splitBrainVictim(0, 1);
  assert.equal(o.check(0, 0), null, "only the victim held it: discarding it is allowed");
});

test("oracle: a write lost in a crash stays lost when a later flush covers its ack", () => {
  const o = new DataOracle(2);
  const w1 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeCompleted(w1, true, [0]);
  o.flushCompleted(o.flushIssued(), true);
  const w2 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeCompleted(w2, true, [0]);
  o.nodeCrashed(0);
  assert.equal(o.floorOf(0), w1.writeId);
  // Another node flushes: its cover includes w2's ack sequence, but w2 was already given up.
  o.flushCompleted(o.flushIssued(), true);
  o.nodeCrashed(0);
  assert.equal(o.floorOf(0), w1.writeId, "the floor never climbs back to w2");
});

test("oracle: a read may miss only a rival session's write that nothing it reaches held", () => {
  const o = new DataOracle(2);
  // n1 (session 2) writes while n0 (session 1) is a rival Primary it is not connected to.
  const held = o.writeIssued(1, 0, 1, false, 2, [], 0);
  o.writeCompleted(held, true, [0, 1]);
  const rival = o.writeIssued(1, 0, 1, false, 2, [1], 0);
  o.writeCompleted(rival, true, [1]);
  const reader = { session: 1, rivals: [2], reachable: [0] };
  assert.ok(o.rivalWriteNotHeld(rival.writeId, reader));
  assert.ok(!o.rivalWriteNotHeld(held.writeId, reader), "n0 held it: it must show it");
  assert.ok(!o.rivalWriteNotHeld(rival.writeId, { ...reader, reachable: [0, 1] }));
  assert.ok(
    o.rivalWriteNotHeld(rival.writeId, { session: 1, rivals: [], reachable: [0] }),
    "the rival stepped down since: the write still named the reader's session as its rival",
  );
  assert.ok(!o.rivalWriteNotHeld(rival.writeId, { session: 3, rivals: [], reachable: [0] }));
});

test("payload: tags round-trip, detect garbage and misplaced blocks, and are memoised", () => {
  const data = payloadEncode(77, 10, 3, 2);
  for (let i = 0; i < 3; i++) assert.equal(payloadWriteId(data, i * blockSizeBytes, 10 + i), 77);
  assert.equal(payloadWriteId(data, 0, 11), -1, "a block in the wrong place");
  const torn = data.slice(0, blockSizeBytes);
  torn[blockSizeBytes - 1] ^= 0xff;
  assert.equal(payloadWriteId(torn, 0, 10), -1, "torn inside the block");
  assert.equal(payloadWriteId(new Uint8Array(blockSizeBytes)), 0);
  const block = data.slice(0, blockSizeBytes);
  assert.equal(payloadBlockTag(block, 10), 77);
  assert.equal(payloadBlockTag(block, 10), 77);
});

test("oracle: a write whose only holder crashed before its ack arrived raises no floor", () => {
  const o = new DataOracle(2);
  const w1 = o.writeIssued(2, 0, 1, false, 1, [], 0);
  o.writeCompleted(w1, true, [0]);
  o.flushCompleted(o.flushIssued(), true);
  // Diskless issuer n2; n0 acks w2 from its volatile cache and crashes before n2 hears it.
  const w2 = o.writeIssued(2, 0, 1, false, 1, [], 0);
  o.nodeCrashed(0);
  o.writeCompleted(w2, true, []);
  assert.equal(o.floorOf(0), w1.writeId, "w2 lived only in the crashed cache");
  assert.equal(o.check(0, w2.writeId), null, "a replica may still show it");
  // Without a crash since issue, a write without holders still raises the floor.
  const w3 = o.writeIssued(2, 1, 1, false, 1, [], 0);
  o.writeCompleted(w3, true, []);
  assert.equal(o.floorOf(1), w3.writeId);
});

test("oracle: a relaxed floor that becomes the floor again after a crash stays relaxed", () => {
  const o = new DataOracle(1);
  const w1 = o.writeIssued(1, 0, 1, false, 1, [], 0);
  o.writeCompleted(w1, true, [1]);
  o.flushCompleted(o.flushIssued(), true);
  // n0 becomes writable without reaching n1 (quorum off): w1 is excused.
  o.relaxFloorsNotHeldBy([0]);
  assert.equal(o.check(0, 0), null);
  // n1 writes on (unflushed), then crashes: the floor falls back to w1, still excused.
  const w2 = o.writeIssued(1, 0, 1, false, 1, [], 0);
  o.writeCompleted(w2, true, [1]);
  assert.match(o.check(0, 0)!, /acked write 2 lost/);
  o.nodeCrashed(1);
  assert.equal(o.floorOf(0), w1.writeId);
  assert.equal(o.check(0, 0), null, "n0 never had to see w1");
});

test("oracle: a failover under protocol A or B relaxes only other nodes' unreached writes", () => {
  const o = new DataOracle(3);
  // n0 wrote blocks 0 and 1 (held by itself only); n1 wrote block 2.
  const w0 = o.writeIssued(0, 0, 1, false, 1, [], 0);
  o.writeCompleted(w0, true, [0]);
  const w1 = o.writeIssued(0, 1, 1, false, 1, [], 0);
  o.writeCompleted(w1, true, [0, 1]);
  const w2 = o.writeIssued(1, 2, 1, false, 2, [], 0);
  o.writeCompleted(w2, true, [1]);
  // n2 becomes writable reaching only n1.
  o.relaxFailover(2, [1]);
  assert.equal(o.check(0, 0), null, "n0's write no reachable node held may be lost");
  assert.notEqual(o.check(1, 0), null, "n1 held w1: it stays owed");
  assert.notEqual(o.check(2, 0), null, "n1 held w2: it stays owed");
  // The writer's own writes are never relaxed.
  o.relaxFailover(1, [2]);
  assert.notEqual(o.check(2, 0), null, "n1's own write stays owed");
});
