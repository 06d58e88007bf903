//! `npm run bench`: measures mirra's NBD export against `nbdkit file` with fio, as BENCH.md
//! describes, and prints a markdown report on stdout (progress goes to stderr).
//!
//! Exit status: 0 when every run produced figures, whatever they are; 1 when a run failed
//! (a server crashed or fio errored: that is a bug to look at, not a slow number); 2 for a bad
//! command line.

import { Command } from "commander";

import { resolveBenchOptions, runBench, type RawBenchOptions } from "../src/bench/mod.js";
import { MirraError } from "../src/stdx/errors.js";

const program = new Command("bench")
  .description("fio over NBD: mirra's export against nbdkit file, side by side in one run")
  .option("--duration <seconds>", "measured seconds per fio run (default 10)")
  .option("--size <size>", "volume size, e.g. 256M, 1G (default 1G)")
  .option("--repeat <n>", "runs per workload and configuration (default 3)")
  .option("--workloads <names>", "comma-separated subset, e.g. randread,write-latency")
  .option("--quick", "2 s runs on 256M, repeated once (explicit options still win)")
  .option("--out <dir>", "also write report.md and results.json there")
  .option("--dir <dir>", "parent of the temporary work directory (default: the OS temp dir)")
  .option("--seed <n>", "--randseed of the first repeat (default: random)")
  .showHelpAfterError();

async function main(): Promise<number> {
  program.parse(process.argv);
  let options;
  try {
    options = resolveBenchOptions(program.opts<RawBenchOptions>());
  } catch (err) {
    if (!(err instanceof MirraError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return 2;
  }
  // Ctrl-C or SIGTERM: stop fio and both servers, remove the work directory, then exit.
  const interrupt = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => interrupt.abort(new Error(`interrupted by ${signal}`)));
  }
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  let outcome;
  try {
    outcome = await runBench(options, log, { signal: interrupt.signal });
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    log(`${(interrupt.signal.reason as Error).message}; servers stopped, no report`);
    return 130;
  }
  const { report, markdown } = outcome;
  process.stdout.write(markdown);
  return report.runs.some((r) => r.error !== null) ? 1 : 0;
}

process.exitCode = await main();
