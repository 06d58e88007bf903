//! Resync speed against the disk's own sequential write rate, as issue "Replicated volumes on
//! real disks and sockets" asks ("unthrottled resync >= 80% of the raw sequential write rate").
//!
//! raw: fio writes a file of the volume's size sequentially (1 MiB blocks, depth 16,
//! io_uring, O_DIRECT, a final fsync), the limit of this disk.
//! resync: a two-node protocol C cluster with the rate controller off (c-plan-ahead 0), the
//! fixed rate at its maximum, no throttling for application IO (c-min-rate 0: the fill
//! that just ended would otherwise hold the first tick to 250 KiB/s) and max-buffers (the
//! resync window) at 8192 pages, as DRBD's tuning advice raises it for fast links; node 1
//! goes down cleanly, the whole volume is written through node 0, node 1 comes up, and the
//! time from `up` until both are UpToDate is measured. The rate is node 0's out-of-sync amount
//! before `up` over that time (it includes node 1's attach and handshake, a few ms). Both
//! nodes share this machine's disk and two cores.
//! The two take turns `--repeat` times and the medians are compared: on this kind of VM the
//! disk's rate moves by a third or more from one run to the next.

import { rm } from "node:fs/promises";
import { join } from "node:path";

import { shellQuote } from "./child.js";
import { BenchCluster } from "./cluster_targets.js";
import { parseFioFigures } from "./fio_json.js";
import { median } from "./report.js";
import { fio } from "./run.js";
import { nbdEngineArgs, prefillArgs } from "./workloads.js";

/** One raw run and the resync measured right after it. */
export interface ResyncPair {
  readonly rawMegabytesPerSecond: number;
  readonly resyncBytes: number;
  readonly resyncSeconds: number;
  readonly resyncMegabytesPerSecond: number;
}

export interface ResyncFigures {
  readonly rawCommandLine: string;
  /** In the order measured: raw, resync, raw, resync, ... */
  readonly pairs: readonly ResyncPair[];
  readonly rawMegabytesPerSecond: number;
  readonly resyncMegabytesPerSecond: number;
  /** Median resync over median raw. */
  readonly ratio: number;
}

const fioTimeoutMs = 600_000;

/**
 * Unthrottled: no rate controller, the fixed rate at its maximum, no throttling for
 * application IO, a 32 MiB window.
 */
const resyncOptions = {
  "c-plan-ahead": 0,
  "resync-rate": 4194304,
  "c-max-rate": 4194304,
  "c-min-rate": 0,
  "max-buffers": 8192,
} as const;
const resyncOptionsText = Object.entries(resyncOptions)
  .map(([name, value]) => `${name} ${value}`)
  .join(", ");

/**
 * Alternates `repeats` raw runs with `repeats` resyncs (this disk's rate moves between runs
 * by a third or more on this kind of VM, so one pair proves little) and reports the medians.
 */
export async function measureResync(
  dir: string,
  sizeBytes: number,
  log: (line: string) => void,
  repeats = 1,
): Promise<ResyncFigures> {
  const rawPath = join(dir, "raw.img");
  const rawArgs = [
    "--name=raw-seqwrite",
    `--filename=${rawPath}`,
    `--size=${sizeBytes}`,
    "--rw=write",
    "--bs=1M",
    "--iodepth=16",
    "--ioengine=io_uring",
    "--direct=1",
    "--end_fsync=1",
    "--output-format=json",
  ];
  const c = await BenchCluster.start(
    {
      name: "resync",
      replicas: 2,
      disklessPrimary: false,
      protocol: "C",
      options: resyncOptions,
    },
    dir,
    sizeBytes,
  );
  const pairs: ResyncPair[] = [];
  try {
    for (let i = 1; i <= repeats; i++) {
      log(`resync ${i}/${repeats}: raw sequential write`);
      const raw = parseFioFigures(await fio(rawArgs, fioTimeoutMs));
      // Each turn writes a new file, and the volumes need the room.
      await rm(rawPath, { force: true });
      let r = await c.call(1, { command: "down" });
      if (!r.ok) throw new Error(`adm down on node 1: ${r.error ?? "refused"}`);
      log(`resync ${i}/${repeats}: writing the whole volume while node 1 is down`);
      await fio(prefillArgs(nbdEngineArgs(c.uri), sizeBytes), fioTimeoutMs);
      const s0 = await c.status(0);
      const kib = s0.connections[0]?.volumes[0]?.outOfSyncKiB ?? 0;
      log(`resync ${i}/${repeats}: ${kib} KiB out of sync for node 1; bringing it up`);
      const start = performance.now();
      r = await c.call(1, { command: "up" });
      if (!r.ok) throw new Error(`adm up on node 1: ${r.error ?? "refused"}`);
      await c.waitHealthy(600_000);
      const seconds = (performance.now() - start) / 1000;
      pairs.push({
        rawMegabytesPerSecond: raw.megabytesPerSecond,
        resyncBytes: kib * 1024,
        resyncSeconds: seconds,
        resyncMegabytesPerSecond: (kib * 1024) / seconds / 1e6,
      });
    }
  } finally {
    await c.stop();
  }
  const rawMedian = median(pairs.map((p) => p.rawMegabytesPerSecond));
  const resyncMedian = median(pairs.map((p) => p.resyncMegabytesPerSecond));
  return {
    rawCommandLine: shellQuote(["fio", ...rawArgs]),
    pairs,
    rawMegabytesPerSecond: rawMedian,
    resyncMegabytesPerSecond: resyncMedian,
    ratio: resyncMedian / rawMedian,
  };
}

export function renderResync(f: ResyncFigures): string {
  const spread = (values: readonly number[]): string => {
    const min = Math.min(...values);
    const max = Math.max(...values);
    return values.length > 1 && min !== max ? ` (${min.toFixed(0)}–${max.toFixed(0)})` : "";
  };
  const raws = f.pairs.map((p) => p.rawMegabytesPerSecond);
  const resyncs = f.pairs.map((p) => p.resyncMegabytesPerSecond);
  const each = f.pairs
    .map(
      (p, i) =>
        `${i + 1}: raw ${p.rawMegabytesPerSecond.toFixed(0)}, resync ` +
        `${p.resyncMegabytesPerSecond.toFixed(0)} (${(p.resyncBytes / 1024 / 1024).toFixed(0)} MiB ` +
        `in ${p.resyncSeconds.toFixed(2)} s), ` +
        `${(p.resyncMegabytesPerSecond / p.rawMegabytesPerSecond).toFixed(2)}`,
    )
    .join("; ");
  return [
    "## Resync",
    "",
    `Medians of ${f.pairs.length} raw run(s) and ${f.pairs.length} resync(s), taking turns ` +
      "(spread in brackets).",
    "",
    "| measure | MB/s | |",
    "| --- | ---: | --- |",
    `| raw sequential write (fio, 1 MiB, depth 16, O_DIRECT) | ${f.rawMegabytesPerSecond.toFixed(0)}${spread(raws)} | \`${f.rawCommandLine}\` |`,
    `| resync, 2 nodes, ${resyncOptionsText} | ${f.resyncMegabytesPerSecond.toFixed(0)}${spread(resyncs)} | whole volume out of sync on node 1 |`,
    "",
    `resync / raw: **${f.ratio.toFixed(2)}** (medians; both nodes on this machine's one disk). ` +
      `Each turn: ${each}.`,
    "",
  ].join("\n");
}
