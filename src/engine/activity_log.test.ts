import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ActivityLog } from "./activity_log.js";

test("activity log: a new extent needs a transaction, a hot one does not", () => {
  const al = new ActivityLog(2, 4, [], 0);
  const a = al.activate(0, 1);
  assert.deepEqual(a, { kind: "transaction", txSeq: 1 });
  const b = al.activate(1, 2);
  assert.deepEqual(b, { kind: "ready", txSeq: 1 });
  assert.deepEqual(al.list(), [0]);
});

test("activity log: a write spanning two extents logs both", () => {
  const al = new ActivityLog(4, 4, [], 0);
  assert.equal(al.activate(3, 2).kind, "transaction");
  assert.deepEqual(al.list(), [0, 1]);
});

test("activity log: busy extents are never evicted; full log blocks", () => {
  const al = new ActivityLog(1, 4, [], 0);
  al.activate(0, 1);
  assert.deepEqual(al.activate(4, 1), { kind: "blocked", needFlush: false });
  al.release(0, 1);
  // Released but not flushed: eviction needs a flush first.
  assert.deepEqual(al.activate(4, 1), { kind: "blocked", needFlush: true });
  const token = al.flushStart();
  al.flushDone(token);
  assert.equal(al.activate(4, 1).kind, "transaction");
  assert.deepEqual(al.list(), [1]);
});

test("activity log: evicts the least recently used clean extent", () => {
  const al = new ActivityLog(2, 1, [], 0);
  al.activate(0, 1);
  al.release(0, 1);
  al.activate(1, 1);
  al.release(1, 1);
  al.activate(0, 1); // 0 is now more recent than 1
  al.release(0, 1);
  al.flushDone(al.flushStart());
  al.activate(2, 1);
  assert.deepEqual(al.list(), [0, 2]);
});

test("activity log: capacity, refcounts and clean eviction hold for any sequence (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant("write" as const),
            block: fc.integer({ min: 0, max: 31 }),
          }),
          fc.record({ kind: fc.constant("finish" as const) }),
          fc.record({ kind: fc.constant("flush" as const) }),
        ),
        { maxLength: 60 },
      ),
      (capacity, ops) => {
        const al = new ActivityLog(capacity, 4, [], 0);
        const inflight: number[] = [];
        // Extents written since the last flush (may still be in a volatile cache).
        const dirty = new Set<number>();
        for (const op of ops) {
          if (op.kind === "write") {
            const before = new Set(al.list());
            const r = al.activate(op.block, 1);
            if (r.kind !== "blocked") {
              inflight.push(op.block);
              for (const e of before) {
                if (!al.has(e)) {
                  assert.ok(!dirty.has(e), `evicted dirty extent ${e}`);
                  assert.ok(!inflight.some((b) => Math.floor(b / 4) === e), "evicted busy extent");
                }
              }
            }
          } else if (op.kind === "finish" && inflight.length > 0) {
            const b = inflight.shift()!;
            al.release(b, 1);
            dirty.add(Math.floor(b / 4));
          } else if (op.kind === "flush") {
            al.flushDone(al.flushStart());
            dirty.clear();
          }
          assert.ok(al.size <= capacity);
          for (const b of inflight) assert.ok(al.has(Math.floor(b / 4)), "in-flight extent logged");
        }
      },
    ),
    { numRuns: 300 },
  );
});
