import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Bitmap } from "./bitmap.js";

type Op =
  | { kind: "set"; block: number }
  | { kind: "clear"; block: number }
  | { kind: "setRange"; first: number; count: number }
  | { kind: "clearRange"; first: number; count: number }
  | { kind: "orRanges"; ranges: number[] };

function opArb(size: number): fc.Arbitrary<Op> {
  const block = fc.integer({ min: 0, max: size - 1 });
  const range = block.chain((first) =>
    fc.integer({ min: 0, max: size - first }).map((count) => ({ first, count })),
  );
  return fc.oneof(
    block.map((b) => ({ kind: "set" as const, block: b })),
    block.map((b) => ({ kind: "clear" as const, block: b })),
    range.map((r) => ({ kind: "setRange" as const, ...r })),
    range.map((r) => ({ kind: "clearRange" as const, ...r })),
    fc.array(range, { maxLength: 4 }).map((rs) => ({
      kind: "orRanges" as const,
      ranges: rs.flatMap((r) => [r.first, r.count]),
    })),
  );
}

test("bitmap: matches a naive boolean-array model (property)", () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 70 })
        .chain((size) => fc.tuple(fc.constant(size), fc.array(opArb(size), { maxLength: 40 }))),
      ([size, ops]) => {
        const bm = new Bitmap(size);
        const model = new Array<boolean>(size).fill(false);
        for (const op of ops) {
          switch (op.kind) {
            case "set":
              assert.equal(bm.set(op.block), !model[op.block]);
              model[op.block] = true;
              break;
            case "clear":
              assert.equal(bm.clear(op.block), model[op.block]);
              model[op.block] = false;
              break;
            case "setRange":
              bm.setRange(op.first, op.count);
              for (let b = op.first; b < op.first + op.count; b++) model[b] = true;
              break;
            case "clearRange":
              bm.clearRange(op.first, op.count);
              for (let b = op.first; b < op.first + op.count; b++) model[b] = false;
              break;
            case "orRanges":
              bm.orRanges(op.ranges);
              for (let i = 0; i < op.ranges.length; i += 2) {
                for (let b = op.ranges[i]!; b < op.ranges[i]! + op.ranges[i + 1]!; b++)
                  model[b] = true;
              }
              break;
          }
          assert.equal(bm.count(), model.filter((x) => x).length);
        }
        for (let b = 0; b < size; b++) assert.equal(bm.isSet(b), model[b]);
        // findNextSet agrees with the model from every start.
        for (let from = 0; from < size; from++) {
          const expected = model.indexOf(true, from);
          assert.equal(bm.findNextSet(from), expected);
        }
        // Ranges round-trip, and bytes reload with the same count.
        const copy = new Bitmap(size);
        copy.orRanges(bm.toRanges());
        for (let b = 0; b < size; b++) assert.equal(copy.isSet(b), model[b]);
        const reloaded = new Bitmap(size, bm.toBytes());
        assert.equal(reloaded.count(), bm.count());
      },
    ),
    { numRuns: 300 },
  );
});

test("bitmap: bits past the end in loaded bytes are dropped", () => {
  const bm = new Bitmap(5, new Uint8Array([0xff]));
  assert.equal(bm.count(), 5);
  assert.throws(() => bm.isSet(5));
});
