import { test } from "node:test";
import assert from "node:assert/strict";
import { formatSize, GiB, MiB, parseSize } from "./units.js";
import { Prng } from "./prng.js";
import { ConfigError } from "./errors.js";

test("units: sizes as operators write them", () => {
  assert.equal(parseSize("1G"), GiB);
  assert.equal(parseSize("512MiB"), 512 * MiB);
  assert.equal(parseSize("4k"), 4096);
  assert.equal(parseSize("1048576"), MiB);
  assert.equal(parseSize("8s"), 4096);
  for (const bad of ["", "G", "1X", "-1M", "1.0001k"])
    assert.throws(() => parseSize(bad), ConfigError, bad);
  assert.equal(formatSize(GiB), "1 GiB");
  assert.equal(formatSize(1536), "1.5 KiB");
});

test("prng: a seed replays exactly and ranges hold", () => {
  const a = new Prng(42);
  const b = new Prng(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.nextU32(), b.nextU32());
  const p = new Prng(7);
  for (let i = 0; i < 10_000; i++) {
    const v = p.range(3, 9);
    assert.ok(v >= 3 && v <= 9 && Number.isInteger(v));
    const f = p.float();
    assert.ok(f >= 0 && f < 1);
  }
  assert.notEqual(new Prng(1).nextU32(), new Prng(2).nextU32());
});
