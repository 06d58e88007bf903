import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";

import { BulkBufferPool } from "./bulk_buffer_pool.js";

test("bulk buffer pool: a buffer given back is taken again, whole and of the pool's size", () => {
  const pool = new BulkBufferPool(4096, 4);
  const a = pool.take();
  assert.equal(a.length, 4096);
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, 4096);
  pool.give(a);
  assert.equal(pool.idleCount, 1);
  assert.equal(pool.take(), a);
  assert.equal(pool.idleCount, 0);
});

test("bulk buffer pool: foreign buffers and second returns are ignored", () => {
  const pool = new BulkBufferPool(4096, 4);
  pool.give(Buffer.alloc(4096));
  pool.give(new Uint8Array(4096));
  assert.equal(pool.idleCount, 0);
  const a = pool.take();
  assert.ok(pool.owns(a));
  assert.ok(!pool.owns(Buffer.alloc(4096)));
  pool.give(a);
  pool.give(a);
  assert.equal(pool.idleCount, 1);
  assert.equal(pool.take(), a);
  assert.notEqual(pool.take(), a);
});

test("bulk buffer pool: a view of a pool buffer gives back the whole buffer", () => {
  const pool = new BulkBufferPool(8192, 4);
  const a = pool.take();
  const view = a.subarray(4096, 8192);
  assert.ok(pool.owns(view));
  pool.give(view);
  pool.give(a.subarray(0, 10));
  assert.equal(pool.idleCount, 1);
  assert.equal(pool.take(), a);
});

test("bulk buffer pool: uses the given allocator, and refuses one that hands out shared memory", () => {
  const slab = Buffer.allocUnsafeSlow(4096);
  const pool = new BulkBufferPool(4096, 2, () => slab);
  assert.equal(pool.take(), slab);
  assert.throws(() => pool.take(), /own whole memory/);
  const sliced = new BulkBufferPool(1024, 2, () => Buffer.allocUnsafeSlow(2048).subarray(0, 1024));
  assert.throws(() => sliced.take(), /own whole memory/);
});

test("bulk buffer pool: keeps at most idleMax buffers", () => {
  const pool = new BulkBufferPool(512, 2);
  const bufs = [pool.take(), pool.take(), pool.take()];
  for (const b of bufs) pool.give(b);
  assert.equal(pool.idleCount, 2);
});

test("bulk buffer pool: no buffer is ever held by two takers at once", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.nat(7), fc.boolean()), { maxLength: 200 }),
      (steps) => {
        const pool = new BulkBufferPool(64, 3);
        const held: Buffer[] = [];
        for (const [take, which, twice] of steps) {
          if (take || held.length === 0) {
            const b = pool.take();
            assert.ok(!held.includes(b), "a held buffer was handed out again");
            held.push(b);
          } else {
            const [b] = held.splice(which % held.length, 1);
            pool.give(b!);
            if (twice) pool.give(b!);
          }
        }
      },
    ),
  );
});
