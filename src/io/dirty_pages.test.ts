import { test } from "node:test";
import assert from "node:assert/strict";
import { computeSample, DirtyPageMonitor } from "./dirty_pages.js";

const meminfo = (dirtyKiB: number): string =>
  [
    "MemTotal:       24000000 kB",
    "MemFree:        10000000 kB",
    "Active(file):    4000000 kB",
    "Inactive(file):  6000000 kB",
    `Dirty:           ${dirtyKiB} kB`,
    "Writeback:          1000 kB",
  ].join("\n");

const vm = { ratio: 20, backgroundRatio: 10, bytes: 0, backgroundBytes: 0 };

test("dirty pages: free-run point is halfway between the background and foreground thresholds", () => {
  const s = computeSample(meminfo(5000), vm)!;
  const dirtyable = 20_000_000 * 1024;
  assert.equal(s.freerunBytes, (dirtyable * 0.2 + dirtyable * 0.1) / 2);
  assert.equal(s.dirtyBytes, 6000 * 1024);
});

test("dirty pages: absolute byte settings win over ratios", () => {
  const s = computeSample(meminfo(0), { ...vm, bytes: 400 << 20, backgroundBytes: 100 << 20 })!;
  assert.equal(s.freerunBytes, 250 << 20);
});

test("dirty pages: unreadable meminfo gives no sample (so nothing goes inline)", () => {
  assert.equal(computeSample("garbage", vm), undefined);
});

test("dirty pages: only whole pages go inline, and only while a sample exists", async () => {
  const m = new DirtyPageMonitor(0.8, 10_000);
  assert.equal(m.mayWriteInline(0, 4096), false, "no sample yet");
  for (let i = 0; i < 100 && !m.mayWriteInline(0, 4096); i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(m.mayWriteInline(512, 4096), false);
  assert.equal(m.mayWriteInline(0, 1000), false);
  m.backOff();
  assert.equal(m.mayWriteInline(0, 4096), false);
  m.close();
});
