//! Turns the bench's raw runs into what BENCH.md asks a run to publish: per workload and
//! configuration the median of each figure over the repeats, the ratios against the baseline
//! configuration (nbdkit), the machine, and the exact command lines, as markdown and as JSON.
//!
//! A ratio is null when either side has no successful run or a zero figure: a missing number
//! is shown as "—", never guessed. Ratios are medians over medians; the spread (min–max over
//! the repeats) is shown next to each median so a reader can tell noise from a difference.

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
  readonly qemuStorageDaemon: string;
  /**
   * How an idle CPU waits (cpuidle driver, and the guest's halt-poll time under haltpoll):
   * on a VM, a halted vCPU costs every wake-up a trip through the hypervisor, which depth-1
   * latencies show.
   */
  readonly cpuIdle: string;
}

/** The smallest and largest value over the repeats. */
export interface Range {
  readonly min: number;
  readonly max: number;
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
  /** Min and max over the same repeats, for the figures the report shows. */
  readonly spread: {
    readonly iops: Range;
    readonly megabytesPerSecond: Range;
    readonly clatMeanUs: Range;
    readonly clatP99Us: Range;
  };
}

/** One configuration's figures relative to a reference configuration (nbdkit, 1r). */
export interface RatioSet {
  /** Keyed by configuration name: its median IOPS / the reference's. */
  readonly iops: Record<string, number | null>;
  /** Mean time per operation ratio; only for latency workloads. */
  readonly latency: Record<string, number | null>;
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
  /** Keyed by reference configuration (see `BenchReport.references`). */
  readonly ratios: Record<string, RatioSet>;
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
  /** One line: what runs and where the data lives. */
  readonly description: string;
  readonly commandLine: string;
  readonly prefillCommandLine: string;
}

/** A configuration that did not take part, and why; the report lists it. */
export interface NotRunRecord {
  readonly name: string;
  readonly description: string;
  /** "unavailable": this machine lacks what it needs; "failed": it should have run and broke. */
  readonly kind: "unavailable" | "failed";
  readonly reason: string;
}

/** Everything a run produced; results.json is this object. */
export interface BenchReport {
  readonly format: "mirra-bench/2";
  readonly startedAt: string;
  readonly finishedAt: string;
  /** The first configuration that ran; the per-workload `iopsRatio` is against it. */
  readonly baseline: string;
  /** Configurations ratios are taken against: nbdkit and 1r when they ran, else the baseline. */
  readonly references: readonly string[];
  readonly settings: BenchSettings;
  readonly machine: MachineFacts;
  /** The configurations that ran, in the order of the first repeat. */
  readonly servers: readonly ServerInfo[];
  readonly notRun: readonly NotRunRecord[];
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
    spread: {
      iops: range(figures.map((x) => x.iops)),
      megabytesPerSecond: range(figures.map((x) => x.megabytesPerSecond)),
      clatMeanUs: range(figures.map((x) => x.clatMeanUs)),
      clatP99Us: range(figures.map((x) => x.clatP99Us)),
    },
  };
}

function range(values: readonly number[]): Range {
  return { min: Math.min(...values), max: Math.max(...values) };
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
  references: readonly string[] = [baseline],
): WorkloadSummary {
  const byConfig: Record<string, MedianFigures> = {};
  for (const config of configs) {
    const ok = runs
      .filter((r) => r.workload === workload.name && r.config === config)
      .flatMap((r) => (r.figures === null ? [] : [r.figures]));
    if (ok.length > 0) byConfig[config] = medians(ok);
  }
  const against = (reference: string): RatioSet => {
    const base = byConfig[reference];
    const iops: Record<string, number | null> = {};
    const latency: Record<string, number | null> = {};
    for (const config of configs.filter((c) => c !== reference)) {
      const mine = byConfig[config];
      iops[config] = ratio(mine?.iops, base?.iops);
      if (workload.latencyBound) latency[config] = ratio(opLatency(mine), opLatency(base));
    }
    return { iops, latency };
  };
  const { iops: iopsRatio, latency: latencyRatio } = against(baseline);
  const ratios: Record<string, RatioSet> = {};
  for (const reference of references) ratios[reference] = against(reference);
  return {
    workload: workload.name,
    title: workload.title,
    latencyBound: workload.latencyBound,
    medians: byConfig,
    iopsRatio,
    latencyRatio,
    ratios,
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

/** "median (min–max)" when the repeats differ, else just the median. */
function withSpread(m: number, r: Range, digits: number): string {
  if (r.min.toFixed(digits) === r.max.toFixed(digits)) return m.toFixed(digits);
  return `${m.toFixed(digits)} (${r.min.toFixed(digits)}–${r.max.toFixed(digits)})`;
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** The results table: one row per workload and configuration, medians with their spread. */
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
  ];
  const lines = [row(header), row(header.map(() => "---"))];
  for (const s of report.summary) {
    for (const config of configs) {
      const m = s.medians[config];
      lines.push(
        row([
          s.title,
          config,
          m === undefined ? dash : withSpread(m.iops, m.spread.iops, 0),
          m === undefined ? dash : withSpread(m.megabytesPerSecond, m.spread.megabytesPerSecond, 1),
          m === undefined ? dash : withSpread(m.clatMeanUs, m.spread.clatMeanUs, 1),
          m === undefined ? dash : withSpread(m.clatP99Us, m.spread.clatP99Us, 1),
          m !== undefined && m.flushLatMeanUs > 0 ? m.flushLatMeanUs.toFixed(1) : dash,
        ]),
      );
    }
  }
  return lines.join("\n");
}

/**
 * The headline: one row per workload and configuration, and for each reference configuration
 * (nbdkit, 1r) the IOPS ratio and, for the latency workloads, the time-per-operation ratio.
 */
export function ratiosTable(report: BenchReport): string {
  const configs = report.servers.map((s) => s.name);
  const header = ["workload", "config"];
  for (const r of report.references) header.push(`IOPS / ${r}`, `latency / ${r}`);
  const lines = [row(header), row(header.map(() => "---"))];
  for (const s of report.summary) {
    for (const config of configs) {
      const cells = [s.title, config];
      for (const r of report.references) {
        const set = s.ratios[r];
        const self = config === r;
        cells.push(self ? "1.00" : fixed(set?.iops[config], 2));
        cells.push(!s.latencyBound ? dash : self ? "1.00" : fixed(set?.latency[config], 2));
      }
      lines.push(row(cells));
    }
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
    `- qemu-storage-daemon: ${m.qemuStorageDaemon}`,
    `- cpuidle: ${m.cpuIdle}`,
  ].join("\n");
}

/** Which configurations ran and how, and which did not, with the reason. */
function configurationsSection(report: BenchReport): string {
  const lines: string[] = [];
  for (const s of report.servers) lines.push(`- **${s.name}**: ${s.description}`);
  for (const n of report.notRun) {
    const why = n.reason.split("\n")[0];
    const label = n.kind === "failed" ? "FAILED to start" : "not run";
    lines.push(`- **${n.name}** (${label}): ${n.description}. Reason: ${why}`);
  }
  return lines.join("\n");
}

function commandsSection(report: BenchReport): string {
  const lines: string[] = [
    "Servers (each started in the bench's work directory; backing files side by side):",
    "",
  ];
  // A configuration of several processes has one command per line, all kept in the code block.
  for (const s of report.servers)
    lines.push(`    # ${s.name}`, ...s.commandLine.split("\n").map((l) => `    ${l}`));
  lines.push("", "Prefill, once per configuration before any measurement:", "");
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
  const broken = report.notRun.filter((n) => n.kind === "failed");
  if (failed.length === 0 && broken.length === 0) return "";
  const lines = ["", "## Failures", ""];
  for (const n of broken) lines.push(`- ${n.name} did not start:`, "", indent(n.reason), "");
  for (const r of failed) {
    lines.push(`- ${r.workload} on ${r.config}, repeat ${r.repeat}: ${r.error?.split("\n")[0]}`);
  }
  return lines.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .slice(0, 40)
    .map((l) => `    ${l}`)
    .join("\n");
}

/** How the figures were obtained, including what they do not cover (the page cache). */
function methodParagraph(report: BenchReport): string {
  const s = report.settings;
  const seeds = Array.from({ length: s.repeat }, (_, i) => s.baseSeed + i).join(", ");
  // All volumes together must fit, with room to spare, for the host to cache them whole.
  const copies = report.servers.length;
  const cached = copies * s.sizeBytes < report.machine.memoryBytes / 2;
  const raw = report.servers.some((x) => x.name === "raw")
    ? `The raw configuration is fio on a prefilled file of the same size with its own engine ` +
      `and --direct=0, so it too goes through the page cache (BENCH.md's raw row uses ` +
      `--direct=1; buffered is the fair limit for servers that are themselves buffered). ` +
      `Its --fsync=1 is fsync(2) on the file, where over NBD it is a FLUSH command (nbdkit ` +
      `answers it with fdatasync), so raw's durable writes also pay for the file's metadata. `
    : "";
  return (
    `${report.startedAt} → ${report.finishedAt}. Medians of ${s.repeat} run(s) of ` +
    `${s.durationSeconds} s per workload and configuration, with the spread (min–max over the ` +
    `repeats) in brackets where the repeats differ, on a ${formatSize(s.sizeBytes)} ` +
    `volume written whole once before measuring; configurations alternate within each ` +
    `workload (ABBA over repeats); --randseed ${seeds}. fio's nbd engine over Unix sockets ` +
    `has no client cache (--direct does not apply); every server reads and writes through the ` +
    `host page cache, ` +
    (cached
      ? `and all the volumes fit in memory, so reads are served from it, not from disk. `
      : `and the volumes are larger than half the memory, so some reads reach the disk. `) +
    raw +
    `A mixed workload's IOPS and MB/s are sums, its avg clat is weighted by I/O count and its ` +
    `p99 is the worse direction's. Latency ratios compare the mean time per operation ` +
    `(completion plus flush).`
  );
}

/** Chart files `--out` holds next to report.md, linked from it. */
export const chartFiles = { iops: "iops.png", latency: "latency.png" } as const;

/** The whole report.md. */
export function renderMarkdown(
  report: BenchReport,
  charts?: { readonly error: string | null },
): string {
  return [
    "# mirra bench",
    "",
    methodParagraph(report),
    "",
    "## Configurations",
    "",
    configurationsSection(report),
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
    ...(charts === undefined
      ? []
      : charts.error !== null
        ? ["", "## Charts", "", `Not written: ${charts.error}`]
        : [
            "",
            "## Charts",
            "",
            `![IOPS per configuration and workload](${chartFiles.iops})`,
            "",
            `![Latency at depth 1](${chartFiles.latency})`,
          ]),
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
