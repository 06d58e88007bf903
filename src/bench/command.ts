//! The bench as a command: `mirra bench` and `npm run bench` (scripts/bench.ts) both call
//! `runBenchCommand` with the options `addBenchOptions` declared. It prints the markdown report
//! on stdout and progress on stderr (see progress.ts).
//!
//! Exit status: 0 when every configuration that could run produced figures, whatever they are
//! (a peer this machine lacks is reported "not run", not an error); 1 when a run or a start
//! failed (a server crashed or fio errored: a bug to look at, not a slow number); 2 for a bad
//! command line; 130 when interrupted.

import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { MirraError } from "../stdx/errors.js";
import { clusterSpecByName, clusterTarget } from "./cluster_targets.js";
import { resolveBenchOptions, type RawBenchOptions } from "./options.js";
import { cephRbdTarget, qemuQuorumTarget } from "./peer_targets.js";
import { runCommand } from "./child.js";
import { Progress } from "./progress.js";
import { rawTarget } from "./raw_target.js";
import type { BenchReport } from "./report.js";
import { measureResync, renderResync } from "./resync.js";
import { runBench } from "./run.js";
import { mirraTarget, nbdkitTarget, type TargetConfig } from "./targets.js";

/** The configuration called `name`; names were validated by `resolveBenchOptions`. */
export function targetConfigByName(name: string): TargetConfig {
  const fixed: Record<string, TargetConfig> = {
    nbdkit: nbdkitTarget,
    raw: rawTarget,
    mirra: mirraTarget,
    "qemu-quorum": qemuQuorumTarget,
    "ceph-rbd": cephRbdTarget,
  };
  const spec = clusterSpecByName(name);
  const config = fixed[name] ?? (spec === undefined ? undefined : clusterTarget(spec));
  if (config === undefined) throw new Error(`no bench configuration named ${name}`);
  return config;
}

/** Runs the bench the command line asked for; resolves with the exit status. */
export async function runBenchCommand(raw: RawBenchOptions): Promise<number> {
  let options;
  try {
    options = resolveBenchOptions(raw);
  } catch (err) {
    if (!(err instanceof MirraError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return 2;
  }
  // Ctrl-C or SIGTERM: stop fio and every server, remove the work directory, then exit.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void =>
    interrupt.abort(new Error(`interrupted by ${signal}`));
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, onSignal);
  const progress = Progress.forProcess();
  const log = (line: string): void => progress.log(line);
  const configs = options.configs.map(targetConfigByName);
  let outcome;
  try {
    outcome = await runBench(options, log, {
      signal: interrupt.signal,
      configs,
      onStep: (step) => progress.onStep(step),
    });
  } catch (err) {
    progress.done();
    if (!interrupt.signal.aborted) throw err;
    log(`${(interrupt.signal.reason as Error).message}; servers stopped, no report`);
    return 130;
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.off(signal, onSignal);
  }
  progress.done();
  const { report, markdown } = outcome;
  process.stdout.write(markdown);
  let extra = replicationTargets(report, await latencyFloor(report, log));
  if (options.resync) {
    const parent = options.workDirParent ?? tmpdir();
    await mkdir(parent, { recursive: true });
    const dir = await mkdtemp(join(parent, "mirra-resync-"));
    try {
      extra += renderResync(await measureResync(dir, options.sizeBytes, log, options.repeat));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (extra !== "") {
    process.stdout.write(`\n${extra}`);
    if (options.outDir !== undefined)
      await appendFile(join(options.outDir, "report.md"), `\n${extra}`);
  }
  const failed =
    report.runs.some((r) => r.error !== null) || report.notRun.some((n) => n.kind === "failed");
  return failed ? 1 : 0;
}

/** Mean loopback round trip between two Node.js processes (scripts/rtt_floor.ts), in µs. */
interface RoundTrip {
  readonly meanUs: number;
  readonly p50Us: number;
}

/**
 * When the depth-1 write latency of 1r and a replicated configuration ran: what protocol C
 * adds at the least on this machine (one user-space round trip), so that the report says how
 * far the target is from what a Node.js peer can reach here. Undefined when not measured.
 */
async function latencyFloor(
  report: BenchReport,
  log: (line: string) => void,
): Promise<RoundTrip | undefined> {
  const lat = report.summary.find((s) => s.workload === "write-latency");
  if (lat?.medians["1r"] === undefined) return undefined;
  const script = fileURLToPath(new URL("../../scripts/rtt_floor.js", import.meta.url));
  const r = await runCommand(process.execPath, [script, "--json"], { timeoutMs: 60_000 });
  if (r.code !== 0) {
    log(`round-trip floor not measured: ${r.stderr.trim() || `exit ${r.code}`}`);
    return undefined;
  }
  return JSON.parse(r.stdout) as RoundTrip;
}

/** The replicated-volume targets of the issue, from whichever configurations ran. */
function replicationTargets(report: BenchReport, roundTrip: RoundTrip | undefined): string {
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
  const local = lat?.medians["1r"];
  if (base !== undefined && local !== undefined && roundTrip !== undefined) {
    const floor = local.clatMeanUs + roundTrip.meanUs;
    lines.push(
      `- reference for a protocol C write at depth 1 here: 1r's ${local.clatMeanUs.toFixed(1)} µs + one ` +
        `loopback round trip between two otherwise idle Node.js processes (mean ${roundTrip.meanUs.toFixed(1)} µs, ` +
        `p50 ${roundTrip.p50Us.toFixed(1)} µs; scripts/rtt_floor.ts) = ${floor.toFixed(1)} µs, ` +
        `${(floor / base.clatMeanUs).toFixed(2)} × ${report.baseline}. Not a hard floor: the round ` +
        `trip includes waking idle CPUs, which on a virtual machine costs most of it, and a ` +
        `replicated write finds some of them awake`,
    );
  }
  return lines.length === 0 ? "" : `## Replication targets\n\n${lines.join("\n")}\n`;
}
