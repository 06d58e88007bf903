import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { IoCallback } from "./block_device.js";
import { FlushCoalescer } from "./flush_coalescer.js";

/** A sync that finishes when the test says so; answers are delivered synchronously. */
function harness(flushAhead = true) {
  const pending: IoCallback[] = [];
  let started = 0;
  const c = new FlushCoalescer({
    sync: (cb) => {
      started++;
      pending.push(cb);
    },
    flushAhead,
    defer: (cb, err) => cb(err),
    later: (fn) => fn(),
  });
  return {
    c,
    pending,
    started: () => started,
    finishOldest: (err: NodeJS.ErrnoException | null = null) => pending.shift()!(err),
  };
}

function flush(c: FlushCoalescer): { done: boolean; err: NodeJS.ErrnoException | null } {
  const r = { done: false, err: null as NodeJS.ErrnoException | null };
  c.flush((err) => {
    r.done = true;
    r.err = err;
  });
  return r;
}

test("the first flush always syncs: data from before the process may still be dirty", () => {
  const h = harness();
  const f = flush(h.c);
  assert.equal(h.started(), 1);
  assert.equal(f.done, false);
  h.finishOldest();
  assert.equal(f.done, true);
});

test("a flush after a write syncs; a flush with nothing new written answers at once", () => {
  const h = harness();
  flush(h.c);
  h.finishOldest();
  h.c.written();
  const f = flush(h.c);
  assert.equal(h.started(), 2);
  h.finishOldest();
  assert.equal(f.done, true);
  const again = flush(h.c);
  assert.equal(again.done, true);
  assert.equal(h.started(), 2);
});

test("concurrent flushes with no write between them share one sync", () => {
  const h = harness();
  h.c.written();
  const a = flush(h.c);
  const b = flush(h.c);
  assert.equal(h.started(), 1);
  h.finishOldest();
  assert.ok(a.done && b.done);
});

test("a flush never joins a sync started before a write that completed since", () => {
  const h = harness();
  h.c.written();
  const a = flush(h.c);
  h.c.written(); // completed while the first sync runs: that sync may not cover it
  const b = flush(h.c);
  assert.equal(h.started(), 2);
  h.finishOldest();
  assert.equal(a.done, true);
  assert.equal(b.done, false);
  h.finishOldest();
  assert.equal(b.done, true);
});

test("flush-ahead: after a streak of write-then-flush, the write starts the sync", () => {
  const h = harness();
  for (let i = 0; i < 3; i++) {
    h.c.written();
    flush(h.c);
    h.finishOldest();
  }
  assert.equal(h.started(), 3);
  h.c.written();
  assert.equal(h.started(), 4, "the write started a sync ahead of its flush");
  const f = flush(h.c);
  assert.equal(h.started(), 4, "the flush joined it");
  h.finishOldest();
  assert.equal(f.done, true);
  // Two writes before the next flush end the streak: no sync ahead of the write after it.
  h.c.written();
  h.c.written();
  flush(h.c);
  h.finishOldest();
  h.finishOldest();
  const before = h.started();
  h.c.written();
  assert.equal(h.started(), before);
});

test("whenIdle waits for every running sync, flush-aheads included", () => {
  const h = harness();
  let idle = 0;
  h.c.whenIdle(() => idle++);
  assert.equal(idle, 1, "nothing running: at once");
  h.c.written();
  flush(h.c);
  h.c.written();
  flush(h.c);
  h.c.whenIdle(() => idle++);
  h.finishOldest();
  assert.equal(idle, 1, "one sync still runs");
  h.finishOldest();
  assert.equal(idle, 2);
});

test("flush-ahead off: a write never starts a sync", () => {
  const h = harness(false);
  for (let i = 0; i < 10; i++) {
    h.c.written();
    flush(h.c);
    h.finishOldest();
  }
  h.c.written();
  assert.equal(h.started(), 10);
});

test("the error of a sync nobody waited for goes to the next flush", () => {
  const h = harness();
  for (let i = 0; i < 3; i++) {
    h.c.written();
    flush(h.c);
    h.finishOldest();
  }
  h.c.written(); // starts a sync ahead
  const eio = Object.assign(new Error("EIO"), { code: "EIO" }) as NodeJS.ErrnoException;
  h.finishOldest(eio); // fails before its flush arrives
  const f = flush(h.c);
  assert.equal(f.done, true);
  assert.equal(f.err, eio);
  // The error is reported once; the next flush syncs again (the write is not covered).
  const g = flush(h.c);
  assert.equal(g.done, false);
  h.finishOldest();
  assert.equal(g.done, true);
  assert.equal(g.err, null);
});

test("property: a flush succeeds only after a sync that started after every earlier write, and every flush is answered", () => {
  // Ops: w = a write completes, f = a flush arrives, s = the oldest running sync finishes.
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("w", "f", "s", "s", "i"), { maxLength: 60 }),
      fc.boolean(),
      (ops, ahead) => {
        let writes = 0;
        const immediates: Array<() => void> = [];
        const running: Array<{ start: number; cb: IoCallback }> = [];
        const c = new FlushCoalescer({
          sync: (cb) => {
            running.push({ start: writes, cb });
          },
          flushAhead: ahead,
          defer: (cb, err) => cb(err),
          later: (fn) => immediates.push(fn),
        });
        let lastFinishedStart = -1;
        let flushes = 0;
        let answered = 0;
        for (const op of ops) {
          if (op === "w") {
            writes++;
            c.written();
          } else if (op === "f") {
            const needed = writes;
            flushes++;
            c.flush((err) => {
              answered++;
              assert.equal(err, null);
              // Answered by a sync that finished having started once `needed` writes were
              // done, or at once because the newest finished sync already covered them.
              assert.ok(lastFinishedStart >= needed, `flush answered early (needs ${needed})`);
            });
          } else if (op === "i") {
            for (const fn of immediates.splice(0)) fn();
          } else if (running.length > 0) {
            const s = running.shift()!;
            lastFinishedStart = Math.max(lastFinishedStart, s.start);
            s.cb(null);
          }
        }
        while (running.length > 0) {
          const s = running.shift()!;
          lastFinishedStart = Math.max(lastFinishedStart, s.start);
          s.cb(null);
        }
        assert.equal(answered, flushes, "every flush is answered once the syncs finish");
      },
    ),
  );
});
