//! The reference workload matrix of docs BENCH.md, as fio arguments for its nbd engine.
//!
//! Invariant: every configuration runs the same argument list for a workload and repeat; only
//! the engine arguments differ (the NBD URI, or for `raw` the file and its engine). The nbd
//! engine has no page cache of its own to bypass (`--direct` does not apply to it); what the
//! server's host caches is the server's business and is reported.

import { ConfigError } from "../stdx/errors.js";

/** One row of the reference matrix. */
export interface Workload {
  /** Stable name used by `--workloads` and in results.json. */
  readonly name: string;
  readonly title: string;
  /** fio's --rw value. */
  readonly rw: "randread" | "randrw" | "randwrite" | "read" | "write";
  readonly blockSize: string;
  readonly ioDepth: number;
  /** Extra fio arguments that define the workload (mix, flushes). */
  readonly extraArgs: readonly string[];
  /** Latency workloads report a latency ratio next to the IOPS ratio. */
  readonly latencyBound: boolean;
}

/** The seven workloads in its order, then BENCH.md's durable write latency. */
export const workloads: readonly Workload[] = [
  wl("randread", "random read 4k qd64", "randread", "4k", 64),
  wl("randrw", "random read/write 70/30 4k qd64", "randrw", "4k", 64, ["--rwmixread=70"]),
  wl("randwrite", "random write 4k qd64", "randwrite", "4k", 64),
  wl("seqread", "sequential read 128k qd16", "read", "128k", 16),
  wl("seqwrite", "sequential write 128k qd16", "write", "128k", 16),
  wl("read-latency", "read latency 4k qd1", "randread", "4k", 1, [], true),
  wl("write-latency", "write latency 4k qd1", "randwrite", "4k", 1, [], true),
  // A flush after every write: the only workload where the servers' durability costs show,
  // since fio's nbd engine otherwise never flushes.
  wl(
    "durable-write-latency",
    "durable write latency 4k qd1 fsync=1",
    "randwrite",
    "4k",
    1,
    ["--fsync=1"],
    true,
  ),
];

function wl(
  name: string,
  title: string,
  rw: Workload["rw"],
  blockSize: string,
  ioDepth: number,
  extraArgs: readonly string[] = [],
  latencyBound = false,
): Workload {
  return { name, title, rw, blockSize, ioDepth, extraArgs, latencyBound };
}

/** Looks workloads up by name, keeping the matrix order; throws on an unknown name. */
export function selectWorkloads(names: readonly string[] | undefined): Workload[] {
  if (names === undefined || names.length === 0) return [...workloads];
  const known = new Set(workloads.map((w) => w.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown workload(s) ${unknown.join(", ")}; known: ${workloads.map((w) => w.name).join(", ")}`,
    );
  }
  return workloads.filter((w) => names.includes(w.name));
}

/** fio's engine arguments for an NBD export at `uri`. */
export function nbdEngineArgs(uri: string): string[] {
  return ["--ioengine=nbd", `--uri=${uri}`];
}

export interface FioRunSpec {
  readonly workload: Workload;
  /** How fio reaches the target: `nbdEngineArgs(uri)`, or a file with its own engine. */
  readonly engineArgs: readonly string[];
  readonly durationSeconds: number;
  readonly sizeBytes: number;
  readonly randSeed: number;
}

/** The exact fio arguments of one measured run (without the `fio` itself). */
export function fioArgs(spec: FioRunSpec): string[] {
  const w = spec.workload;
  return [
    `--name=${w.name}`,
    ...spec.engineArgs,
    `--rw=${w.rw}`,
    ...w.extraArgs,
    `--bs=${w.blockSize}`,
    `--iodepth=${w.ioDepth}`,
    "--numjobs=1",
    `--size=${spec.sizeBytes}`,
    "--time_based=1",
    `--runtime=${spec.durationSeconds}`,
    `--randseed=${spec.randSeed}`,
    "--output-format=json",
  ];
}

/**
 * Writes the whole volume once with fio's random buffers, so no measured read hits an
 * unallocated block and both servers start from equally allocated files; the final flush puts
 * the data on disk before anything is measured.
 */
export function prefillArgs(engineArgs: readonly string[], sizeBytes: number): string[] {
  return [
    "--name=prefill",
    ...engineArgs,
    "--rw=write",
    "--bs=1M",
    "--iodepth=16",
    "--numjobs=1",
    `--size=${sizeBytes}`,
    "--end_fsync=1",
    "--output-format=json",
  ];
}
