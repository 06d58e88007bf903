//! The bench's options, resolved from what a command line gave: explicit values win over
//! `--quick`, which wins over the defaults BENCH.md calls stable enough on this machine.

import { randomInt } from "node:crypto";

import type { Command } from "commander";

import { ConfigError } from "../stdx/errors.js";
import { parseSize } from "../stdx/units.js";
import { selectWorkloads, type Workload } from "./workloads.js";

/** Options as a command line gives them: strings, every one optional. */
export interface RawBenchOptions {
  readonly duration?: string;
  readonly size?: string;
  readonly repeat?: string;
  readonly workloads?: string;
  readonly quick?: boolean;
  readonly out?: string;
  readonly dir?: string;
  readonly seed?: string;
  readonly configs?: string;
  readonly resync?: boolean;
}

export interface BenchOptions {
  /** Measured seconds per fio run. @default 10 (2 with --quick) */
  readonly durationSeconds: number;
  /** Volume size, identical for every configuration. @default 1 GiB (256 MiB with --quick) */
  readonly sizeBytes: number;
  /** Runs per workload and configuration. @default 3 (1 with --quick) */
  readonly repeat: number;
  readonly workloads: readonly Workload[];
  /** Where report.md and results.json go, if anywhere. */
  readonly outDir: string | undefined;
  /** Parent of the temporary work directory (backing files, sockets). @default os.tmpdir() */
  readonly workDirParent: string | undefined;
  /** --randseed of the first repeat; repeat i uses baseSeed + i - 1. @default random */
  readonly baseSeed: number;
  /** Configurations to compare, baseline first. @default configNames (all of them) */
  readonly configs: readonly string[];
  /** Also measure resync against the raw sequential write rate. */
  readonly resync: boolean;
}

/** Every configuration name `--configs` accepts, in the default order (baseline first). */
export const configNames: readonly string[] = [
  "nbdkit",
  "raw",
  "mirra",
  "1r",
  "2r",
  "3r",
  "3r-diskless",
  "2r-A",
  "qemu-quorum",
  "ceph-rbd",
];

/**
 * Declares the bench's options on `command`: `mirra bench` and scripts/bench.ts (npm run
 * bench) share this, so the two can never drift apart.
 */
export function addBenchOptions(command: Command): Command {
  return command
    .option("--duration <seconds>", "measured seconds per fio run (default 10)")
    .option("--size <size>", "volume size, e.g. 256M, 1G (default 1G)")
    .option("--repeat <n>", "runs per workload and configuration (default 3)")
    .option("--workloads <names>", "comma-separated subset, e.g. randread,write-latency")
    .option("--quick", "2 s runs on 256M, repeated once (explicit options still win)")
    .option("--out <dir>", "also write report.md, results.json and PNG charts there")
    .option("--dir <dir>", "parent of the temporary work directory (default: the OS temp dir)")
    .option("--seed <n>", "--randseed of the first repeat (default: random)")
    .option(
      "--configs <names>",
      "configurations, baseline first: nbdkit, raw (fio on the file), mirra (the local " +
        "export), 1r, 2r, 3r (replicated, protocol C, node 0 Primary), 3r-diskless, 2r-A, " +
        `qemu-quorum, ceph-rbd (default: all, ${configNames.join(",")})`,
    )
    .option("--resync", "also measure an unthrottled resync against the raw write rate");
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ConfigError(`--${name} must be a positive integer, not "${text}"`);
  return n;
}

export function resolveBenchOptions(raw: RawBenchOptions): BenchOptions {
  const quick = raw.quick === true;
  const sizeBytes = parseSize(raw.size ?? (quick ? "256M" : "1G"));
  if (sizeBytes < 1024 * 1024 || sizeBytes % 4096 !== 0) {
    throw new ConfigError(`--size must be at least 1 MiB and a multiple of 4 KiB`);
  }
  const names = raw.workloads?.split(",").map((s) => s.trim());
  const workloads = selectWorkloads(names?.filter((s) => s !== ""));
  const configs = (raw.configs ?? configNames.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const unknown = configs.filter((c) => !configNames.includes(c));
  if (unknown.length > 0 || configs.length === 0)
    throw new ConfigError(
      `unknown configuration(s) ${unknown.join(", ") || "(none given)"}; known: ${configNames.join(", ")}`,
    );
  return {
    durationSeconds: positiveInt("duration", raw.duration ?? (quick ? "2" : "10")),
    sizeBytes,
    repeat: positiveInt("repeat", raw.repeat ?? (quick ? "1" : "3")),
    workloads,
    outDir: raw.out,
    workDirParent: raw.dir,
    // fio keeps a 32-bit seed in its job file; stay well inside it.
    baseSeed: raw.seed === undefined ? randomInt(1, 2 ** 30) : positiveInt("seed", raw.seed),
    configs,
    resync: raw.resync === true,
  };
}
