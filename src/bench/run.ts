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

import { describeResult, runCommand, shellQuote } from "./child.js";
import { parseFioFigures } from "./fio_json.js";
import { machineFacts } from "./machine.js";
import type { BenchOptions } from "./options.js";
import {
  renderMarkdown,
  summarise,
  type BenchReport,
  type RunRecord,
  type ServerInfo,
} from "./report.js";
import { defaultTargets, type BenchTarget, type TargetConfig } from "./targets.js";
import { fioArgs, prefillArgs } from "./workloads.js";

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
): Promise<string> {
  const r = await runCommand("fio", args, { timeoutMs, signal });
  if (r.code !== 0 || r.timedOut) throw new Error(`fio failed\n${describeResult(r)}`);
  return r.stdout;
}

async function startAll(
  configs: readonly TargetConfig[],
  dir: string,
  sizeBytes: number,
  started: BenchTarget[],
  log: Log,
  signal: AbortSignal | undefined,
): Promise<ServerInfo[]> {
  const servers: ServerInfo[] = [];
  for (const config of configs) {
    signal?.throwIfAborted();
    log(`starting ${config.name}`);
    const target = await config.start(dir, sizeBytes);
    started.push(target);
    const args = prefillArgs(target.uri, sizeBytes);
    log(`prefilling ${config.name} (${sizeBytes} bytes)`);
    await fio(args, fioMarginMs + (sizeBytes / prefillBytesPerSecondMin) * 1000, signal);
    servers.push({
      name: config.name,
      commandLine: target.commandLine,
      prefillCommandLine: shellQuote(["fio", ...args]),
    });
  }
  return servers;
}

async function measure(
  options: BenchOptions,
  targets: readonly BenchTarget[],
  log: Log,
  signal: AbortSignal | undefined,
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
          uri: target.uri,
          durationSeconds: options.durationSeconds,
          sizeBytes: options.sizeBytes,
          randSeed,
        });
        const base = { workload: workload.name, config: target.name, repeat, randSeed };
        const commandLine = shellQuote(["fio", ...args]);
        const label = `[${runs.length + 1}/${total}] ${workload.name} on ${target.name}, repeat ${repeat}`;
        try {
          const figures = parseFioFigures(
            await fio(args, options.durationSeconds * 1000 + fioMarginMs),
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
  let servers: ServerInfo[];
  let runs: RunRecord[];
  try {
    servers = await startAll(configs, dir, options.sizeBytes, started, log, signal);
    runs = await measure(options, started, log, signal);
  } finally {
    for (const target of started) await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const names = configs.map((c) => c.name);
  const baseline = names[0]!;
  const report: BenchReport = {
    format: "mirra-bench/1",
    startedAt,
    finishedAt: new Date().toISOString(),
    baseline,
    settings: {
      durationSeconds: options.durationSeconds,
      sizeBytes: options.sizeBytes,
      repeat: options.repeat,
      baseSeed: options.baseSeed,
      workloads: options.workloads.map((w) => w.name),
    },
    machine,
    servers,
    summary: options.workloads.map((w) => summarise(w, names, baseline, runs)),
    runs,
  };
  const markdown = renderMarkdown(report);
  if (options.outDir !== undefined) {
    await mkdir(options.outDir, { recursive: true });
    await writeFile(join(options.outDir, "report.md"), markdown);
    await writeFile(join(options.outDir, "results.json"), `${JSON.stringify(report, null, 2)}\n`);
  }
  return { report, markdown };
}
