//! "Prove the checkers can fail": each test turns on one of the engine's fault-injection knobs
//! (src/engine/types.ts FaultInjection), searches a bounded range of seeds in order, and
//! demands that some seed makes the simulator report the invariant that knob breaks, while the
//! same seed without the knob does not report it. The search is deterministic: same range,
//! same seeds, same answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { FaultInjection } from "../engine/mod.js";
import { runSeed, type VoprConfig, type VoprLimits } from "./vopr.js";
import { engineMissing, engineReady } from "./scenario_helpers.js";

const skip = engineReady() ? false : engineMissing;

const limits: VoprLimits = {
  ticksRandom: 800,
  ticksLiveness: 2000,
  sizeBlocksMax: 96,
  nodeCountMax: 4,
};

interface KnobCase {
  knob: keyof FaultInjection;
  /** Invariants that count as catching this knob. */
  expect: readonly string[];
  /** Makes the seeds likelier to exercise the broken rule. */
  tune: (c: VoprConfig) => void;
  seedsMax: number;
}

const cases: KnobCase[] = [
  {
    knob: "completeBeforePeerAck",
    expect: ["a:acked-write-lost"],
    tune: (c) => {
      c.cluster.protocol = "C";
    },
    seedsMax: 40,
  },
  {
    knob: "skipActivityLog",
    expect: ["c:unmarked-difference", "d:diverged", "a:acked-write-lost"],
    tune: (c) => {
      c.cluster.protocol = "C";
      c.cluster.disk = { ...c.cluster.disk, writeLatencyTicksMin: 2, writeLatencyTicksMean: 4 };
      c.workload.crashProbability = 0.004;
      c.workload.restartDelayTicksMean = 30;
    },
    seedsMax: 600,
  },
  {
    knob: "skipBitmapMarking",
    expect: ["c:unmarked-difference", "d:diverged"],
    tune: (c) => {
      c.cluster.protocol = "C";
      c.cluster.network = { ...c.cluster.network, connectionResetProbability: 0.003 };
    },
    seedsMax: 80,
  },
  {
    knob: "flushWithoutBarrier",
    // A flush acked before the peers persisted: once a Secondary crashes (losing its cache)
    // and the Primary crashes after it, a write the client flushed is gone.
    expect: ["a:acked-write-lost", "c:unmarked-difference", "d:diverged"],
    tune: (c) => {
      c.cluster.protocol = "C";
      c.cluster.disk = { ...c.cluster.disk, writeLatencyTicksMin: 2, writeLatencyTicksMean: 6 };
      c.workload.flushShare = 0.3;
      c.workload.crashProbability = 0.006;
      c.workload.restartDelayTicksMean = 40;
    },
    seedsMax: 600,
  },
  {
    knob: "ignoreSinglePrimary",
    expect: ["b:two-writers"],
    tune: (c) => {
      c.workload.roguePromoteProbability = 0.01;
    },
    seedsMax: 80,
  },
  {
    knob: "mergeSplitBrain",
    // A silent merge shows as mixed sides (f), as replicas that differ unmarked (c, d), or
    // as a client reading the other side's data over its own acked write (a).
    expect: ["f:split-brain-merged", "d:diverged", "c:unmarked-difference", "a:acked-write-lost"],
    tune: (c) => {
      c.cluster.engine = { ...c.cluster.engine, quorum: "off" };
      c.cluster.network = {
        ...c.cluster.network,
        partitionMode: "isolateSingle",
        partitionProbability: 0.01,
        unpartitionProbability: 0.01,
      };
      c.workload.roguePromoteProbability = 0.02;
    },
    seedsMax: 600,
  },
];

for (const k of cases) {
  test(`checkers catch the ${k.knob} fault (expect ${k.expect.join(" or ")})`, { skip }, (t) => {
    const seen: string[] = [];
    for (let seed = 1; seed <= k.seedsMax; seed++) {
      const broken = runSeed(seed, limits, undefined, (c) => {
        k.tune(c);
        c.cluster.faultInjection = { [k.knob]: true };
      });
      if (broken.ok || !k.expect.includes(broken.invariant!)) {
        seen.push(`${seed}:${broken.invariant ?? "pass"}`);
        continue;
      }
      const baseline = runSeed(seed, limits, undefined, k.tune);
      if (baseline.invariant === broken.invariant) {
        seen.push(`${seed}:${broken.invariant}(also without the knob)`);
        continue;
      }
      // Found: the knob, and only the knob, makes this seed report the matching invariant.
      assert.ok(broken.detail !== null && broken.detail.length > 0);
      t.diagnostic(
        `seed ${seed}: ${broken.invariant}: ${broken.detail} (without the knob: ${baseline.invariant ?? "pass"})`,
      );
      return;
    }
    assert.fail(`no seed in 1..${k.seedsMax} caught ${k.knob}; results: ${seen.join(" ")}`);
  });
}
