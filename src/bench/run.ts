//! Runs the bench: starts every configuration on an equal, prefilled volume, then measures each
//! workload on each configuration `repeat` times, alternating the order (ABBA over repeats) so
//! that drift in a noisy shared machine falls on both sides alike.
//!
//! Lifetime model: every server is stopped and the work directory removed in a `finally`,
//! whatever failed; every fio run has a deadline of its duration plus a margin. A failed run is
//! recorded with its error and the bench goes on: it is a tool that reports, not a test.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ChartError, writeCharts } from "./chart.js";
import { describeResult, runCommand, shellQuoteWithEnv } from "./child.js";
import { parseFioFigures } from "./fio_json.js";
import { machineFacts } from "./machine.js";
import type { BenchOptions } from "./options.js";
import {
  renderMarkdown,
  summarise,
  type BenchReport,
  type NotRunRecord,
  type RunRecord,
  type ServerInfo,
} from "./report.js";
import {
  defaultTargets,
  TargetUnavailableError,
  type BenchTarget,
  type TargetConfig,
} from "./targets.js";
import { fioArgs, prefillArgs } from "./workloads.js";
import { formatSize } from "../stdx/units.js";

/** The configurations ratios are taken against, when they ran (BENCH.md "Reporting"). */
const referenceNames: readonly string[] = ["nbdkit", "1r"];

/** Slack on top of a run's duration before it counts as hung (connect, ramp, teardown). */
const fioMarginMs = 60_000;
/** A prefill writes the whole volume; allow a slow 8 MB/s before calling it hung. */
const prefillBytesPerSecondMin = 8e6;

export type Log = (line: string) => void;

export interface BenchOutcome {
  readonly report: BenchReport;
  readonly markdown: string;
}

/** Runs fio, returning its stdout; throws with the command and output when it fails. */
export async function fio(
  args: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
  env: Readonly<Record<string, string>> = {},
): Promise<string> {
  // setpriv (util-linux) kills fio if the bench dies first: fio blocked on a vanished Ceph
  // cluster would otherwise wait forever. The recorded command lines are fio's alone.
  const r = await runCommand("setpriv", ["--pdeathsig", "KILL", "fio", ...args], {
    timeoutMs,
    signal,
    env: { ...process.env, ...env },
  });
  if (r.code !== 0 || r.timedOut) throw new Error(`fio failed\n${describeResult(r)}`);
  return r.stdout;
}

/** Where a bench stands, for a progress display. */
export interface BenchStep {
  readonly phase: "setup" | "measure";
  /** Measured runs finished so far, out of `total` (the setup phase has done = 0). */
  readonly done: number;
  readonly total: number;
  /** What is running now, e.g. "randread on 3r, repeat 2". */
  readonly label: string;
  /** Seconds of measuring left if every remaining run takes its duration. */
  readonly secondsLeftMin: number;
}

interface Started {
  readonly servers: ServerInfo[];
  readonly notRun: NotRunRecord[];
}

/**
 * Starts and prefills each configuration in turn. A configuration this machine cannot run is
 * recorded as unavailable; one that fails to start or prefill is stopped and recorded as
 * failed, and the bench goes on with the others.
 */
async function startAll(
  configs: readonly TargetConfig[],
  dir: string,
  sizeBytes: number,
  started: BenchTarget[],
  hooks: Hooks,
): Promise<Started> {
  const servers: ServerInfo[] = [];
  const notRun: NotRunRecord[] = [];
  for (const config of configs) {
    hooks.signal?.throwIfAborted();
    const { name, description } = config;
    const reason = (await config.unavailable?.()) ?? null;
    if (reason !== null) {
      hooks.log(`${name}: not run: ${reason}`);
      notRun.push({ name, description, kind: "unavailable", reason });
      continue;
    }
    hooks.step({ phase: "setup", label: `starting ${name}` });
    let target: BenchTarget | undefined;
    try {
      target = await config.start(dir, sizeBytes);
      const args = prefillArgs(target.engineArgs, sizeBytes);
      hooks.step({ phase: "setup", label: `prefilling ${name} (${formatSize(sizeBytes)})` });
      const timeoutMs = fioMarginMs + (sizeBytes / prefillBytesPerSecondMin) * 1000;
      await fio(args, timeoutMs, hooks.signal, target.env);
      started.push(target);
      servers.push({
        name,
        description,
        commandLine: target.commandLine,
        prefillCommandLine: shellQuoteWithEnv(target.env ?? {}, ["fio", ...args]),
      });
    } catch (err) {
      if (hooks.signal?.aborted) {
        await target?.stop();
        throw err;
      }
      await target?.stop();
      const why = err instanceof Error ? err.message : String(err);
      if (err instanceof TargetUnavailableError) {
        hooks.log(`${name}: not run: ${why}`);
        notRun.push({ name, description, kind: "unavailable", reason: why });
        continue;
      }
      hooks.log(`${name}: FAILED to start or prefill\n${why}`);
      notRun.push({ name, description, kind: "failed", reason: why });
    }
  }
  return { servers, notRun };
}

interface Hooks {
  readonly log: Log;
  readonly signal: AbortSignal | undefined;
  step(s: Omit<BenchStep, "done" | "total" | "secondsLeftMin">): void;
}

async function measure(
  options: BenchOptions,
  targets: readonly BenchTarget[],
  log: Log,
  signal: AbortSignal | undefined,
  onStep: (s: BenchStep) => void,
): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  const total = options.workloads.length * options.repeat * targets.length;
  for (const workload of options.workloads) {
    for (let repeat = 1; repeat <= options.repeat; repeat++) {
      const randSeed = options.baseSeed + repeat - 1;
      const order = repeat % 2 === 1 ? targets : [...targets].reverse();
      for (const target of order) {
        signal?.throwIfAborted();
        const args = fioArgs({
          workload,
          engineArgs: target.engineArgs,
          durationSeconds: options.durationSeconds,
          sizeBytes: options.sizeBytes,
          randSeed,
        });
        const base = { workload: workload.name, config: target.name, repeat, randSeed };
        const commandLine = shellQuoteWithEnv(target.env ?? {}, ["fio", ...args]);
        const what = `${workload.name} on ${target.name}, repeat ${repeat}`;
        const label = `[${runs.length + 1}/${total}] ${what}`;
        onStep({
          phase: "measure",
          done: runs.length,
          total,
          label: what,
          secondsLeftMin: (total - runs.length) * options.durationSeconds,
        });
        try {
          const figures = parseFioFigures(
            await fio(args, options.durationSeconds * 1000 + fioMarginMs, signal, target.env),
          );
          runs.push({ ...base, commandLine, figures, error: null });
          log(
            `${label}: ${figures.iops.toFixed(0)} IOPS, ${figures.clatMeanUs.toFixed(1)} µs avg clat`,
          );
        } catch (err) {
          // An interrupted run is not a failed measurement: stop the whole bench.
          if (signal?.aborted) throw err;
          const error = err instanceof Error ? err.message : String(err);
          runs.push({ ...base, commandLine, figures: null, error });
          log(`${label}: FAILED\n${error}`);
        }
      }
    }
  }
  return runs;
}

export interface RunBenchExtras {
  /** The configurations to compare, baseline first. @default defaultTargets */
  readonly configs?: readonly TargetConfig[];
  /** Aborting stops the bench between or during runs; `runBench` then rejects. */
  readonly signal?: AbortSignal;
  /** Called as each setup step or measured run begins, for a progress display. */
  readonly onStep?: (step: BenchStep) => void;
}

/**
 * Runs the whole bench and renders its report; writes it to `options.outDir` if given.
 * Servers are stopped and the work directory removed however it ends.
 */
export async function runBench(
  options: BenchOptions,
  log: Log,
  extras: RunBenchExtras = {},
): Promise<BenchOutcome> {
  const configs = extras.configs ?? defaultTargets;
  const signal = extras.signal;
  const startedAt = new Date().toISOString();
  const machine = await machineFacts();
  const parent = options.workDirParent ?? tmpdir();
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, "mirra-bench-"));
  const started: BenchTarget[] = [];
  const onStep = extras.onStep ?? ((): void => {});
  const total = options.workloads.length * options.repeat * configs.length;
  const hooks: Hooks = {
    log,
    signal,
    step: (s) => onStep({ ...s, done: 0, total, secondsLeftMin: total * options.durationSeconds }),
  };
  let servers: ServerInfo[];
  let notRun: NotRunRecord[];
  let runs: RunRecord[];
  try {
    ({ servers, notRun } = await startAll(configs, dir, options.sizeBytes, started, hooks));
    runs = await measure(options, started, log, signal, onStep);
  } finally {
    for (const target of started) await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
  // Ratios are taken against the configurations that ran, never against a missing one.
  const names = servers.map((c) => c.name);
  const baseline = names[0] ?? configs[0]!.name;
  const references = referenceNames.filter((r) => names.includes(r));
  if (references.length === 0 && names[0] !== undefined) references.push(names[0]);
  const report: BenchReport = {
    format: "mirra-bench/2",
    startedAt,
    finishedAt: new Date().toISOString(),
    baseline,
    references,
    settings: {
      durationSeconds: options.durationSeconds,
      sizeBytes: options.sizeBytes,
      repeat: options.repeat,
      baseSeed: options.baseSeed,
      workloads: options.workloads.map((w) => w.name),
    },
    machine,
    servers,
    notRun,
    summary: options.workloads.map((w) => summarise(w, names, baseline, runs, references)),
    runs,
  };
  if (options.outDir === undefined) return { report, markdown: renderMarkdown(report) };
  await mkdir(options.outDir, { recursive: true });
  let chartError: string | null = null;
  try {
    await writeCharts(report, options.outDir);
  } catch (err) {
    // Charts illustrate the report; without them the tables and JSON still stand.
    if (!(err instanceof ChartError)) throw err;
    chartError = err.message;
    log(`charts not written: ${err.message}`);
  }
  const markdown = renderMarkdown(report, { error: chartError });
  await writeFile(join(options.outDir, "report.md"), markdown);
  await writeFile(join(options.outDir, "results.json"), `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdown };
}
