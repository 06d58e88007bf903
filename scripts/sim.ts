//! `npm run sim -- --seeds N [--from S]`: runs seeds S..S+N-1 (default 1..N) through the VOPR
//! and prints a summary with the simulated requests per second.
//! `npm run sim -- --seed S`: replays one seed with a readable trace of every event and effect
//! (one line each, prefixed by the tick; the bare timer "tick" events are left out, not what
//! they cause), ending with the failed invariant if any.
//! Exit status 1 when any seed fails; each failure prints its seed and the failed invariant.

import {
  runSeed,
  voprLimitsDefault,
  type VoprLimits,
  type VoprResult,
} from "../src/testing/vopr.js";

interface Args {
  seed: number | null;
  seeds: number;
  from: number;
  limits: VoprLimits;
  quiet: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seed: null,
    seeds: 100,
    from: 1,
    limits: { ...voprLimitsDefault },
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0)
        throw new Error(`${flag} needs a non-negative integer`);
      return v;
    };
    switch (flag) {
      case "--seed":
        args.seed = value();
        break;
      case "--seeds":
        args.seeds = value();
        break;
      case "--from":
        args.from = value();
        break;
      case "--ticks":
        args.limits.ticksRandom = value();
        break;
      case "--liveness-ticks":
        args.limits.ticksLiveness = value();
        break;
      case "--quiet":
        args.quiet = true;
        break;
      case "--help":
        console.log(
          "usage: sim [--seeds N] [--from S] | [--seed S] [--ticks T] [--liveness-ticks T] [--quiet]",
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag} (try --help)`);
    }
  }
  return args;
}

function printFailure(r: VoprResult): void {
  console.log(`FAIL seed=${r.seed} invariant=${r.invariant} tick=${r.tick}`);
  console.log(`  config: ${r.summary}`);
  console.log(`  ${r.detail}`);
  console.log(`  replay: npm run sim -- --seed ${r.seed}`);
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== null) {
    const r = runSeed(args.seed, args.limits, args.quiet ? undefined : (line) => console.log(line));
    console.log(`config: ${r.summary}`);
    if (r.ok) console.log(`PASS seed=${r.seed} ticks=${r.ticks} requests=${r.requestsCompleted}`);
    else printFailure(r);
    process.exit(r.ok ? 0 : 1);
  }
  const started = performance.now();
  let requests = 0;
  let ticks = 0;
  const failures: VoprResult[] = [];
  const byInvariant = new Map<string, number>();
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    const r = runSeed(seed, args.limits);
    requests += r.requestsCompleted;
    ticks += r.ticks;
    if (!r.ok) {
      failures.push(r);
      byInvariant.set(r.invariant!, (byInvariant.get(r.invariant!) ?? 0) + 1);
      if (!args.quiet || failures.length <= 5) printFailure(r);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `seeds ${args.from}..${args.from + args.seeds - 1}: ${args.seeds - failures.length} passed, ${failures.length} failed ` +
      `in ${seconds.toFixed(1)} s; ${requests} simulated requests (${Math.round(requests / seconds)}/s), ` +
      `${ticks} ticks (${Math.round(ticks / seconds)}/s)`,
  );
  for (const [invariant, count] of byInvariant) console.log(`  ${invariant}: ${count}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

main();
