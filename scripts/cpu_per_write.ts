//! `node dist/scripts/cpu_per_write.js [--replicas N] [--depth D] [--seconds S] [--runs R]`:
//! where the CPU of a replicated 4 KiB random write goes on this machine. Starts an N-node
//! protocol C cluster on loopback (as `mirra bench` does: node 0 Primary with a replica, a
//! 256 MiB volume), fills it, then runs fio's nbd engine at depth D for S seconds and prints
//! the IOPS and the CPU time each daemon and fio spent per write (user + system, from
//! /proc/PID/stat and fio's own usr_cpu/sys_cpu), their sum, and the IOPS the machine's cores
//! could carry if that sum were all of them busy: the ceiling any tuning of the hot path
//! short of spending less CPU per write can reach. A tool that prints figures (BENCH.md), not
//! a test.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

import { BenchCluster } from "../src/bench/cluster_targets.js";
import { fio } from "../src/bench/run.js";
import { nbdEngineArgs, prefillArgs } from "../src/bench/workloads.js";
import { intOption } from "./int_option.js";

/** USER_HZ: /proc/PID/stat counts CPU time in these, 100 per second on Linux. */
const clockTicksPerSecond = 100;
const sizeBytes = 256 * 1024 * 1024;

/** User + system CPU seconds the process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which ends with ") " and may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

interface FioJob {
  readonly job_runtime: number;
  readonly usr_cpu: number;
  readonly sys_cpu: number;
  readonly write: { readonly iops: number; readonly total_ios: number };
}

async function main(): Promise<void> {
  const replicas = intOption("--replicas", 3);
  const depth = intOption("--depth", 64);
  const seconds = intOption("--seconds", 5);
  const runs = intOption("--runs", 2);
  const dir = mkdtempSync(join(tmpdir(), "mirra-cpu-"));
  const c = await BenchCluster.start(
    { name: "cpu", replicas, disklessPrimary: false, protocol: "C", options: {} },
    dir,
    sizeBytes,
  );
  try {
    await fio(prefillArgs(nbdEngineArgs(c.uri), sizeBytes), 600_000);
    const pids = c.daemons.map((d) => d.pid);
    const cores = availableParallelism();
    for (let run = 0; run < runs; run++) {
      const before = pids.map(cpuSeconds);
      const out = await fio(
        [
          "--name=cpu",
          ...nbdEngineArgs(c.uri),
          "--rw=randwrite",
          "--bs=4k",
          `--iodepth=${depth}`,
          `--size=${sizeBytes}`,
          "--time_based=1",
          `--runtime=${seconds}`,
          "--output-format=json",
        ],
        120_000,
      );
      const job = (JSON.parse(out.slice(out.indexOf("{"))) as { jobs: FioJob[] }).jobs[0]!;
      const writes = job.write.total_ios;
      const perWrite = (cpu: number): number => (cpu * 1e6) / writes;
      const daemons = pids.map((pid, i) => perWrite(cpuSeconds(pid) - before[i]!));
      const fioUs = perWrite((((job.usr_cpu + job.sys_cpu) / 100) * job.job_runtime) / 1000);
      const sum = daemons.reduce((a, b) => a + b, 0) + fioUs;
      console.log(
        `${replicas} replica(s), depth ${depth}: ${Math.round(job.write.iops)} IOPS; ` +
          `CPU µs per write: ${daemons.map((u, i) => `node ${i} ${u.toFixed(1)}`).join(", ")}, ` +
          `fio ${fioUs.toFixed(1)}; sum ${sum.toFixed(1)} ` +
          `(${cores} cores busy at that cost: ${Math.round((cores * 1e6) / sum)} IOPS)`,
      );
    }
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
