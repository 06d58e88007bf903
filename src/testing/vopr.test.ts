//! VOPR determinism and swarm-option tests: a seed replays exactly, tracing changes nothing,
//! and the swarm draws varied, bounded configurations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { runSeed, voprConfigSwarm, type VoprLimits } from "./vopr.js";
import { engineMissing, engineReady } from "./scenario_helpers.js";

const skip = engineReady() ? false : engineMissing;
const limits: VoprLimits = {
  ticksRandom: 400,
  ticksLiveness: 1500,
  sizeBlocksMax: 64,
  nodeCountMax: 5,
};

function traceDigest(seed: number): { digest: string; lines: number; result: string } {
  const hash = createHash("sha256");
  let lines = 0;
  const r = runSeed(seed, limits, (line) => {
    hash.update(line);
    lines++;
  });
  return { digest: hash.digest("hex"), lines, result: `${r.ok} ${r.invariant} ${r.tick}` };
}

test("vopr: a seed replays exactly (same trace, twice, in one process)", { skip }, () => {
  for (const seed of [3, 7, 11]) {
    const a = traceDigest(seed);
    const b = traceDigest(seed);
    assert.ok(a.lines > 100, "the trace is not trivial");
    assert.deepEqual(a, b, `seed ${seed} is not deterministic`);
  }
});

test("vopr: tracing does not change the outcome", { skip }, () => {
  for (const seed of [5, 9]) {
    const quiet = runSeed(seed, limits);
    const traced = runSeed(seed, limits, () => {});
    assert.deepEqual(
      [traced.ok, traced.invariant, traced.tick],
      [quiet.ok, quiet.invariant, quiet.tick],
    );
  }
});

test("vopr: swarm options differ between seeds and stay in bounds", () => {
  const configs = Array.from({ length: 50 }, (_, i) => voprConfigSwarm(i + 1, limits));
  const sizes = new Set(configs.map((c) => c.cluster.nodes.length));
  assert.ok(sizes.size >= 3, "several node counts");
  assert.ok(new Set(configs.map((c) => c.cluster.protocol)).size === 3, "all protocols");
  for (const c of configs) {
    assert.ok(c.cluster.nodes.length >= 2 && c.cluster.nodes.length <= limits.nodeCountMax);
    assert.ok(c.cluster.nodes.filter((n) => n.disk === "diskful").length >= 2);
    assert.ok(c.cluster.sizeBlocks >= 16 && c.cluster.sizeBlocks <= limits.sizeBlocksMax);
    const q = c.cluster.engine.quorum ?? "off";
    if (q !== "off") assert.ok(c.cluster.nodes.length >= 3);
    if (typeof q === "number") assert.ok(q > c.cluster.nodes.length / 2, "N quorum is a majority");
  }
});
