import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ReadSlabs } from "./read_slabs.js";

const SLAB = 1024 * 1024;

/** Simulates one socket read of `bytes` into the current target; returns the chunk. */
function read(slabs: ReadSlabs, bytes: Uint8Array): Uint8Array {
  const target = slabs.readTarget();
  assert.ok(target.length >= bytes.length, "the read target has room for the read");
  target.set(bytes);
  const chunk = target.subarray(0, bytes.length);
  slabs.received(bytes.length);
  return chunk;
}

describe("read slabs", () => {
  test("with nothing pinned, every read reuses the slab from its start", () => {
    const slabs = new ReadSlabs(SLAB);
    const a = read(slabs, new Uint8Array(1000).fill(1));
    const b = read(slabs, new Uint8Array(1000).fill(2));
    assert.equal(a.buffer, b.buffer);
    assert.equal(a.byteOffset, b.byteOffset);
  });

  test("a pinned payload is never overwritten, and its slab comes back after unpin", () => {
    const slabs = new ReadSlabs(SLAB);
    const chunk = read(slabs, new Uint8Array(200_000).fill(7));
    assert.ok(slabs.holds(chunk));
    const pinned = slabs.pin(chunk, 100, 100_000);
    // Reads go behind it until the tail is short, then to a new slab.
    for (let i = 0; i < 10; i++) read(slabs, new Uint8Array(200_000).fill(9));
    assert.ok(pinned.payload.every((b) => b === 7));
    assert.equal(slabs.retiredPinnedBytes, SLAB, "the retired pinned slab counts whole");
    slabs.unpin(pinned.slab);
    assert.equal(slabs.retiredPinnedBytes, 0);
  });

  test("a payload spanning reads stays contiguous, carried over to a new slab if needed", () => {
    const slabs = new ReadSlabs(SLAB);
    const blocker = slabs.pin(read(slabs, new Uint8Array(700_000).fill(1)), 0, 700_000);
    const payload = new Uint8Array(300_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    // The payload begins 50 000 bytes into a read that fills the slab's short tail.
    const head = read(slabs, new Uint8Array(100_000));
    head.set(payload.subarray(0, 50_000), 50_000);
    slabs.beginInPlace(head, 50_000, payload.length);
    read(slabs, payload.subarray(50_000, 200_000));
    read(slabs, payload.subarray(200_000));
    const done = slabs.completeInPlace();
    assert.ok(Buffer.from(done.payload).equals(Buffer.from(payload)));
    assert.notEqual(done.slab, blocker.slab, "moved to a new slab");
    assert.ok(blocker.payload.every((b) => b === 1));
    slabs.unpin(done.slab);
    slabs.unpin(blocker.slab);
    assert.equal(slabs.retiredPinnedBytes, 0);
  });
});
