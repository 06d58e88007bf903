//! Turns the bench's raw runs into what BENCH.md asks a run to publish: per workload and
//! configuration the median of each figure over the repeats, the ratios against the baseline
//! configuration (nbdkit), the machine, and the exact command lines, as markdown and as JSON.
//!
//! A ratio is null when either side has no successful run or a zero figure: a missing number
//! is shown as "—", never guessed.

import { formatSize } from "../stdx/units.js";
import type { FioFigures } from "./fio_json.js";
import type { Workload } from "./workloads.js";

/** One fio invocation and what came of it. */
export interface RunRecord {
  readonly workload: string;
  readonly config: string;
  /** 1-based repeat number. */
  readonly repeat: number;
  readonly randSeed: number;
  /** The exact command line, ready to paste into a shell. */
  readonly commandLine: string;
  /** Null when fio failed; `error` then says why. */
  readonly figures: FioFigures | null;
  readonly error: string | null;
}

/** The machine a run measured, so a reader can tell whose numbers these are. */
export interface MachineFacts {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly kernel: string;
  readonly node: string;
  readonly fio: string;
  readonly nbdkit: string;
}

/** Medians over the successful repeats of one workload on one configuration. */
export interface MedianFigures {
  readonly runs: number;
  readonly iops: number;
  readonly megabytesPerSecond: number;
  readonly clatMeanUs: number;
  readonly clatP99Us: number;
  readonly flushLatMeanUs: number;
  readonly flushLatP99Us: number;
}

export interface WorkloadSummary {
  readonly workload: string;
  readonly title: string;
  readonly latencyBound: boolean;
  /** Keyed by configuration name; absent when no run of that configuration succeeded. */
  readonly medians: Record<string, MedianFigures>;
  /** Keyed by configuration name (all but the baseline): that configuration / baseline. */
  readonly iopsRatio: Record<string, number | null>;
  /** Mean time per operation (completion plus flush) ratio; only for latency workloads. */
  readonly latencyRatio: Record<string, number | null>;
}

export interface BenchSettings {
  readonly durationSeconds: number;
  readonly sizeBytes: number;
  readonly repeat: number;
  readonly baseSeed: number;
  readonly workloads: readonly string[];
}

export interface ServerInfo {
  readonly name: string;
  readonly commandLine: string;
  readonly prefillCommandLine: string;
}

/** Everything a run produced; results.json is this object. */
export interface BenchReport {
  readonly format: "mirra-bench/1";
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly baseline: string;
  readonly settings: BenchSettings;
  readonly machine: MachineFacts;
  readonly servers: readonly ServerInfo[];
  readonly summary: readonly WorkloadSummary[];
  readonly runs: readonly RunRecord[];
}

/** The median of a non-empty list (mean of the middle two for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function medians(figures: readonly FioFigures[]): MedianFigures {
  const m = (f: (x: FioFigures) => number): number => median(figures.map(f));
  return {
    runs: figures.length,
    iops: m((x) => x.iops),
    megabytesPerSecond: m((x) => x.megabytesPerSecond),
    clatMeanUs: m((x) => x.clatMeanUs),
    clatP99Us: m((x) => x.clatP99Us),
    flushLatMeanUs: m((x) => x.flushLatMeanUs),
    flushLatP99Us: m((x) => x.flushLatP99Us),
  };
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || a <= 0 || b <= 0 ? null : a / b;
}

/** Summarises the runs of one workload over all configurations. */
export function summarise(
  workload: Workload,
  configs: readonly string[],
  baseline: string,
  runs: readonly RunRecord[],
): WorkloadSummary {
  const byConfig: Record<string, MedianFigures> = {};
  for (const config of configs) {
    const ok = runs
      .filter((r) => r.workload === workload.name && r.config === config)
      .flatMap((r) => (r.figures === null ? [] : [r.figures]));
    if (ok.length > 0) byConfig[config] = medians(ok);
  }
  const base = byConfig[baseline];
  const iopsRatio: Record<string, number | null> = {};
  const latencyRatio: Record<string, number | null> = {};
  for (const config of configs.filter((c) => c !== baseline)) {
    const mine = byConfig[config];
    iopsRatio[config] = ratio(mine?.iops, base?.iops);
    if (workload.latencyBound) latencyRatio[config] = ratio(opLatency(mine), opLatency(base));
  }
  return {
    workload: workload.name,
    title: workload.title,
    latencyBound: workload.latencyBound,
    medians: byConfig,
    iopsRatio,
    latencyRatio,
  };
}

/** Mean time a client waits per operation: completion plus, when it flushes, the flush. */
function opLatency(m: MedianFigures | undefined): number | undefined {
  return m === undefined ? undefined : m.clatMeanUs + m.flushLatMeanUs;
}

const dash = "—";

function fixed(value: number | undefined | null, digits: number): string {
  return value === undefined || value === null ? dash : value.toFixed(digits);
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** The results table: one row per workload and configuration, ratios on the non-baseline rows. */
export function resultsTable(report: BenchReport): string {
  const configs = report.servers.map((s) => s.name);
  const header = [
    "workload",
    "config",
    "IOPS",
    "MB/s",
    "avg clat (µs)",
    "p99 clat (µs)",
    "avg flush (µs)",
    `IOPS / ${report.baseline}`,
    `latency / ${report.baseline}`,
  ];
  const lines = [row(header), row(header.map(() => "---"))];
  for (const s of report.summary) {
    for (const config of configs) {
      const m = s.medians[config];
      const isBase = config === report.baseline;
      lines.push(
        row([
          s.title,
          config,
          fixed(m?.iops, 0),
          fixed(m?.megabytesPerSecond, 1),
          fixed(m?.clatMeanUs, 1),
          fixed(m?.clatP99Us, 1),
          m !== undefined && m.flushLatMeanUs > 0 ? m.flushLatMeanUs.toFixed(1) : dash,
          isBase ? dash : fixed(s.iopsRatio[config], 2),
          isBase || !s.latencyBound ? dash : fixed(s.latencyRatio[config], 2),
        ]),
      );
    }
  }
  return lines.join("\n");
}

/** The headline: each configuration against the baseline, one row per workload. */
export function ratiosTable(report: BenchReport): string {
  const others = report.servers.map((s) => s.name).filter((n) => n !== report.baseline);
  const header = ["workload"];
  for (const o of others)
    header.push(`IOPS ${o}/${report.baseline}`, `latency ${o}/${report.baseline}`);
  const lines = [row(header), row(header.map(() => "---"))];
  for (const s of report.summary) {
    const cells = [s.title];
    for (const o of others) {
      cells.push(fixed(s.iopsRatio[o], 2), s.latencyBound ? fixed(s.latencyRatio[o], 2) : dash);
    }
    lines.push(row(cells));
  }
  return lines.join("\n");
}

function machineSection(m: MachineFacts): string {
  return [
    `- CPUs: ${m.cpus} × ${m.cpuModel}`,
    `- memory: ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB`,
    `- kernel: ${m.kernel}`,
    `- node: ${m.node}`,
    `- fio: ${m.fio}`,
    `- nbdkit: ${m.nbdkit}`,
  ].join("\n");
}

function commandsSection(report: BenchReport): string {
  const lines: string[] = [
    "Servers (each over its own Unix socket, backing file in one directory):",
    "",
  ];
  for (const s of report.servers) lines.push(`    ${s.commandLine}`);
  lines.push("", "Prefill, once per server before any measurement:", "");
  for (const s of report.servers) lines.push(`    ${s.prefillCommandLine}`);
  lines.push(
    "",
    "Measured runs (first repeat; later repeats differ only in --randseed, listed in results.json):",
    "",
  );
  for (const r of report.runs.filter((x) => x.repeat === 1)) lines.push(`    ${r.commandLine}`);
  return lines.join("\n");
}

function failuresSection(report: BenchReport): string {
  const failed = report.runs.filter((r) => r.error !== null);
  if (failed.length === 0) return "";
  const lines = ["", "## Failed runs", ""];
  for (const r of failed) {
    lines.push(`- ${r.workload} on ${r.config}, repeat ${r.repeat}: ${r.error?.split("\n")[0]}`);
  }
  return lines.join("\n");
}

/** How the figures were obtained, including what they do not cover (the page cache). */
function methodParagraph(report: BenchReport): string {
  const s = report.settings;
  const seeds = Array.from({ length: s.repeat }, (_, i) => s.baseSeed + i).join(", ");
  // Both volumes together must fit, with room to spare, for the host to cache them whole.
  const cached = 2 * s.sizeBytes < report.machine.memoryBytes / 2;
  return (
    `${report.startedAt} → ${report.finishedAt}. Medians of ${s.repeat} run(s) of ` +
    `${s.durationSeconds} s per workload and configuration, on a ${formatSize(s.sizeBytes)} ` +
    `volume written whole once before measuring; configurations alternate within each ` +
    `workload (ABBA over repeats); --randseed ${seeds}. fio's nbd engine over Unix sockets ` +
    `has no client cache (--direct does not apply); both servers read and write through the ` +
    `host page cache, ` +
    (cached
      ? `and both volumes fit in memory, so reads are served from it, not from disk. `
      : `and the volumes are larger than half the memory, so some reads reach the disk. `) +
    `A mixed workload's IOPS and MB/s are sums, its avg clat is weighted by I/O count and its ` +
    `p99 is the worse direction's. Latency ratios compare the mean time per operation ` +
    `(completion plus flush).`
  );
}

/** The whole report.md. */
export function renderMarkdown(report: BenchReport): string {
  return [
    "# mirra bench",
    "",
    methodParagraph(report),
    "",
    "## Ratios",
    "",
    "Above 1 is better for IOPS, below 1 is better for latency.",
    "",
    ratiosTable(report),
    "",
    "## Medians",
    "",
    resultsTable(report),
    failuresSection(report),
    "",
    "## Machine",
    "",
    machineSection(report.machine),
    "",
    "## Command lines",
    "",
    commandsSection(report),
    "",
  ].join("\n");
}
