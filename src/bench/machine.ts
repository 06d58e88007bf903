//! Facts about the machine a bench ran on. A tool that is missing is reported as such rather
//! than failing the run: the facts describe the numbers, they are not a precondition.

import { availableParallelism, cpus, release, totalmem } from "node:os";

import { runCommand } from "./child.js";
import type { MachineFacts } from "./report.js";

async function firstLineOf(command: string, args: readonly string[]): Promise<string> {
  try {
    const r = await runCommand(command, args, { timeoutMs: 10_000 });
    const line = `${r.stdout}\n${r.stderr}`.split("\n").find((l) => l.trim() !== "");
    return line?.trim() ?? "unknown";
  } catch {
    return "not installed";
  }
}

export async function machineFacts(): Promise<MachineFacts> {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    fio: await firstLineOf("fio", ["--version"]),
    nbdkit: await firstLineOf("nbdkit", ["--version"]),
    qemuStorageDaemon: await firstLineOf("qemu-storage-daemon", ["--version"]),
  };
}
