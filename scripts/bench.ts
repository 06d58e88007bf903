//! `npm run bench`: measures mirra's NBD export against `nbdkit file` with fio, as BENCH.md
//! describes, and prints a markdown report on stdout (progress goes to stderr).
//!
//! Exit status: 0 when every run produced figures, whatever they are; 1 when a run failed
//! (a server crashed or fio errored: that is a bug to look at, not a slow number); 2 for a bad
//! command line.

import { mkdir, mkdtemp, rm, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Command } from "commander";

import {
  clusterSpecByName,
  clusterTarget,
  measureResync,
  mirraTarget,
  nbdkitTarget,
  renderResync,
  resolveBenchOptions,
  runBench,
  type BenchReport,
  type RawBenchOptions,
  type TargetConfig,
} from "../src/bench/mod.js";
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
  .option(
    "--configs <names>",
    "configurations, baseline first: nbdkit, mirra (the local export), 1r, 2r, 3r " +
      "(replicated, protocol C, node 0 Primary), 3r-diskless, 2r-A (default nbdkit,mirra)",
  )
  .option("--resync", "also measure an unthrottled resync against the raw write rate")
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
  const configs: TargetConfig[] = options.configs.map((name) => {
    if (name === "nbdkit") return nbdkitTarget;
    if (name === "mirra") return mirraTarget;
    return clusterTarget(clusterSpecByName(name)!);
  });
  let outcome;
  try {
    outcome = await runBench(options, log, { signal: interrupt.signal, configs });
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    log(`${(interrupt.signal.reason as Error).message}; servers stopped, no report`);
    return 130;
  }
  const { report, markdown } = outcome;
  process.stdout.write(markdown);
  let extra = replicationTargets(report);
  if (options.resync) {
    const parent = options.workDirParent ?? tmpdir();
    await mkdir(parent, { recursive: true });
    const dir = await mkdtemp(join(parent, "mirra-resync-"));
    try {
      extra += renderResync(await measureResync(dir, options.sizeBytes, log));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (extra !== "") {
    process.stdout.write(`\n${extra}`);
    if (options.outDir !== undefined)
      await appendFile(join(options.outDir, "report.md"), `\n${extra}`);
  }
  return report.runs.some((r) => r.error !== null) ? 1 : 0;
}

/** The replicated-volume targets of the issue, from whichever configurations ran. */
function replicationTargets(report: BenchReport): string {
  const lines: string[] = [];
  const randwrite = report.summary.find((s) => s.workload === "randwrite");
  const one = randwrite?.medians["1r"];
  const three = randwrite?.medians["3r"];
  if (one !== undefined && three !== undefined)
    lines.push(
      `- 3 replicas / 1 replica, random write 4k qd64: ${(three.iops / one.iops).toFixed(2)} (target >= 0.6)`,
    );
  const lat = report.summary.find((s) => s.workload === "write-latency");
  const base = lat?.medians[report.baseline];
  for (const name of ["2r", "3r", "3r-diskless", "2r-A"]) {
    const m = lat?.medians[name];
    if (base === undefined || m === undefined) continue;
    lines.push(
      `- ${name} write latency 4k qd1 / ${report.baseline}: ${(m.clatMeanUs / base.clatMeanUs).toFixed(2)} (target <= 2.0)`,
    );
  }
  return lines.length === 0 ? "" : `## Replication targets\n\n${lines.join("\n")}\n`;
}

process.exitCode = await main();
