//! Unit tests of the disk simulator (disk_sim.ts): its fault model case by case (crash
//! outcomes, flush and FUA, errors, disk full, metadata ordering) and a crash property.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Prng } from "../stdx/prng.js";
import {
  DiskSim,
  blockSizeBytes,
  diskSimOptionsQuiet,
  type DiskResult,
  type DiskSimOptions,
} from "./disk_sim.js";

function make(
  options: Partial<DiskSimOptions> = {},
  seed = 1,
): { disk: DiskSim<number, string>; done: Map<number, DiskResult> } {
  const done = new Map<number, DiskResult>();
  const disk = new DiskSim<number, string>(
    { ...diskSimOptionsQuiet(64 * blockSizeBytes), ...options },
    new Prng(seed),
    {
      diskCompleted: (token, result) => done.set(token, result),
    },
  );
  return { disk, done };
}

function blocks(count: number, fill: number): Uint8Array {
  return new Uint8Array(count * blockSizeBytes).fill(fill);
}

function settle(disk: DiskSim<number, string>): void {
  for (let i = 0; i < 1000 && disk.pendingCount() > 0; i++) disk.tick();
}

function firstByte(disk: DiskSim<number, string>, block: number): number {
  return disk.peekBlock(block)?.[0] ?? 0;
}

test("disk sim: a write is visible on completion and survives a crash only once flushed", () => {
  const { disk, done } = make();
  disk.submitWrite(1, 0, blocks(2, 7));
  settle(disk);
  assert.deepEqual(done.get(1), { ok: true });
  assert.equal(firstByte(disk, 1), 7);
  assert.equal(disk.peekBlockDurable(0), undefined, "volatile until flushed");
  disk.submitFlush(2);
  settle(disk);
  assert.equal(disk.peekBlockDurable(1)?.[0], 7);
  disk.crashOutcomeForced = "lost";
  disk.crash();
  assert.equal(firstByte(disk, 0), 7);
});

test("disk sim: crash outcomes lost, applied, torn on a volatile 4-block write", () => {
  for (const outcome of ["lost", "applied", "torn"] as const) {
    const { disk } = make({}, 3);
    disk.writeDirect(0, blocks(4, 1));
    disk.submitWrite(1, 0, blocks(4, 2));
    settle(disk);
    disk.crashOutcomeForced = outcome;
    disk.crash();
    const now = [0, 1, 2, 3].map((b) => firstByte(disk, b));
    if (outcome === "lost") assert.deepEqual(now, [1, 1, 1, 1]);
    if (outcome === "applied") assert.deepEqual(now, [2, 2, 2, 2]);
    if (outcome === "torn") {
      const k = now.indexOf(1);
      assert.ok(k >= 1 && k <= 3, `a strict non-empty prefix: ${now.join(",")}`);
      assert.ok(now.slice(0, k).every((x) => x === 2) && now.slice(k).every((x) => x === 1));
    }
  }
});

test("disk sim: pending writes and their completions vanish or land on a crash", () => {
  const { disk, done } = make({ writeLatencyTicksMin: 50 });
  disk.submitWrite(1, 0, blocks(1, 9));
  disk.crashOutcomeForced = "applied";
  disk.crash();
  settle(disk);
  assert.equal(done.size, 0, "no completion after a crash");
  assert.equal(firstByte(disk, 0), 9);
});

test("disk sim: FUA writes are durable on completion; a flush does not cover later writes", () => {
  const { disk } = make({ writeLatencyTicksMin: 1, writeLatencyTicksMean: 0 });
  disk.submitWrite(1, 0, blocks(1, 3), true);
  settle(disk);
  disk.submitFlush(2);
  disk.submitWrite(3, 4096, blocks(1, 4));
  settle(disk);
  disk.crashOutcomeForced = "lost";
  disk.crash();
  assert.equal(firstByte(disk, 0), 3);
  assert.equal(firstByte(disk, 1), 0, "issued after the flush: not covered");
});

test("disk sim: an old volatile write never overwrites a newer durable one on a crash", () => {
  const { disk } = make({ writeLatencyTicksMin: 1, writeLatencyTicksMean: 0 });
  disk.submitWrite(1, 0, blocks(1, 1));
  settle(disk);
  disk.submitWrite(2, 0, blocks(1, 2), true);
  settle(disk);
  disk.crashOutcomeForced = "applied";
  disk.crash();
  assert.equal(firstByte(disk, 0), 2);
});

test("disk sim: read and write errors, disk full", () => {
  const errors = make({ readErrorProbability: 1, writeErrorProbability: 1 });
  errors.disk.submitRead(1, 0, 4096);
  errors.disk.submitWrite(2, 0, blocks(1, 1));
  settle(errors.disk);
  assert.deepEqual(errors.done.get(1), { ok: false, error: "EIO" });
  assert.deepEqual(errors.done.get(2), { ok: false, error: "EIO" });
  const full = make({ capacityBlocksMax: 2 });
  full.disk.submitWrite(1, 0, blocks(2, 1));
  settle(full.disk);
  full.disk.submitWrite(2, 2 * 4096, blocks(1, 1));
  full.disk.submitWrite(3, 0, blocks(1, 5));
  settle(full.disk);
  assert.deepEqual(full.done.get(2), { ok: false, error: "ENOSPC" });
  assert.deepEqual(full.done.get(3), { ok: true }, "overwriting allocated blocks still works");
});

test("disk sim: metadata writes complete in order; a crash keeps a prefix, torn = dropped", () => {
  const { disk, done } = make({ writeLatencyTicksMin: 1, writeLatencyTicksMean: 20 }, 5);
  const order: number[] = [];
  const d2 = new DiskSim<number, string>(disk.options, new Prng(5), {
    diskCompleted: (token) => order.push(token),
  });
  for (let i = 0; i < 20; i++) d2.submitMetadataWrite(i, `r${i}`);
  settle(d2);
  assert.deepEqual(
    order,
    Array.from({ length: 20 }, (_, i) => i),
  );
  void done;
  disk.submitMetadataWrite(1, "t1");
  settle(disk);
  disk.submitMetadataWrite(2, "t2");
  disk.submitMetadataWrite(3, "t3");
  disk.crashOutcomeForced = "torn";
  disk.crash();
  assert.deepEqual(disk.metadataRecords(), ["t1"], "the torn record and all after it are gone");
  assert.equal(disk.stats.metadataTorn, 1);
  disk.crashOutcomeForced = null;
  disk.submitMetadataWrite(4, "t4");
  settle(disk);
  assert.deepEqual(disk.metadataRecords(), ["t1", "t4"]);
});

test("disk sim: after any crash, each block holds the newest durable or a later write (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1 << 30 }), (seed) => {
      const prng = new Prng(seed);
      const { disk } = make({ writeLatencyTicksMean: 3 }, seed);
      // Values written per block in submission order; flushed[b] = newest value made durable.
      const history = new Map<number, number[]>();
      let value = 1;
      for (let step = 0; step < 60; step++) {
        const block = prng.int(8);
        const v = value++ % 250;
        disk.submitWrite(step, block * 4096, blocks(1, v));
        history.set(block, [...(history.get(block) ?? []), v]);
        if (prng.chance(0.2)) settle(disk);
        disk.tick();
      }
      disk.crash();
      for (const [block, values] of history) {
        const got = firstByte(disk, block);
        assert.ok(got === 0 || values.includes(got), `block ${block} holds a value written to it`);
      }
    }),
    { numRuns: 100 },
  );
});
