import assert from "node:assert/strict";
import { test } from "node:test";

import { Histogram, VolumeIoCounters, latencyBucketsSeconds } from "./io_counters.js";

test("histogram: a value equal to a bound counts in that bucket (le), larger ones in +Inf", () => {
  const h = new Histogram([0.001, 0.01, 0.1]);
  for (const v of [0.0005, 0.001, 0.002, 0.01, 0.5, 7]) h.observe(v);
  const s = h.snapshot();
  assert.deepEqual(s.le, [0.001, 0.01, 0.1]);
  assert.deepEqual(s.cumulative, [2, 4, 4, 6]);
  assert.equal(s.count, 6);
  assert.ok(Math.abs(s.sumSeconds - 7.5135) < 1e-9);
});

test("histogram: bounds must ascend", () => {
  assert.throws(() => new Histogram([0.1, 0.1]), /ascend/);
  assert.throws(() => new Histogram([0.2, 0.1]), /ascend/);
});

test("histogram: a snapshot is a copy; later observations do not change it", () => {
  const h = new Histogram(latencyBucketsSeconds);
  h.observe(0.0003);
  const before = h.snapshot();
  h.observe(0.0003);
  assert.equal(before.count, 1);
  assert.equal(before.cumulative.at(-1), 1);
  assert.equal(h.snapshot().count, 2);
});

test("volume counters: the snapshot carries every count and both histograms", () => {
  const c = new VolumeIoCounters();
  c.reads += 2;
  c.readBytes += 8192;
  c.writes++;
  c.writtenBytes += 4096;
  c.readLatency.observe(0.0001);
  c.writeLatency.observe(0.002);
  const s = c.snapshot();
  assert.equal(s.reads, 2);
  assert.equal(s.readBytes, 8192);
  assert.equal(s.writes, 1);
  assert.equal(s.writtenBytes, 4096);
  assert.equal(s.flushes, 0);
  assert.equal(s.errors, 0);
  assert.equal(s.readLatency.count, 1);
  assert.equal(s.writeLatency.cumulative.length, latencyBucketsSeconds.length + 1);
});
