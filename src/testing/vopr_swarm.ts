//! The swarm run shared by the two VOPR test files: each runs half of the 2,000 seeds so that
//! node's test runner spreads them over two cores (about 80 s each on this machine).

import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { runSeed, voprLimitsDefault, type VoprLimits, type VoprResult } from "./vopr.js";

/**
 * Known engine bugs make some seeds fail today (src/testing/REQUESTS.md lists them with seeds
 * and traces). While this is true the swarm tests are reported as TODO: they still run every
 * seed and print every failure, but do not fail the suite. Set to false once the engine is
 * fixed, so that any failing seed fails the build.
 */
export const engineKnownBugs = false;

/** A shorter random phase than `npm run sim` (1,000 ticks, not 1,500) keeps 1,000 seeds
 *  near 80 s on one core; the liveness bound stays the same. */
const swarmLimits: VoprLimits = { ...voprLimitsDefault, ticksRandom: 1000 };

export function runSwarm(t: TestContext, from: number, count: number): void {
  const failures: VoprResult[] = [];
  let requests = 0;
  const started = performance.now();
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed(seed, swarmLimits);
    requests += r.requestsCompleted;
    if (!r.ok) failures.push(r);
  }
  const seconds = (performance.now() - started) / 1000;
  const byInvariant = new Map<string, number[]>();
  for (const f of failures)
    byInvariant.set(f.invariant!, [...(byInvariant.get(f.invariant!) ?? []), f.seed]);
  t.diagnostic(
    `seeds ${from}..${from + count - 1}: ${count - failures.length} passed, ${failures.length} failed, ` +
      `${requests} requests in ${seconds.toFixed(1)} s (${Math.round(requests / seconds)}/s)`,
  );
  for (const [invariant, seeds] of byInvariant) {
    t.diagnostic(`${invariant}: ${seeds.length} seeds, first ${seeds.slice(0, 10).join(" ")}`);
  }
  assert.equal(
    failures.length,
    0,
    failures
      .slice(0, 3)
      .map((f) => `seed ${f.seed} ${f.invariant}: ${(f.detail ?? "").slice(0, 160)}`)
      .join("\n"),
  );
}
