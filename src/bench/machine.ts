//! Facts about the machine a bench ran on. A tool that is missing is reported as such rather
//! than failing the run: the facts describe the numbers, they are not a precondition.

import { readFileSync } from "node:fs";
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

function firstLineOfFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").split("\n")[0]?.trim();
  } catch {
    return undefined;
  }
}

/** The cpuidle driver, with the guest halt-poll time when it is haltpoll (a KVM guest's). */
export function cpuIdleFacts(read: (path: string) => string | undefined = firstLineOfFile): string {
  const driver = read("/sys/devices/system/cpu/cpuidle/current_driver");
  if (driver === undefined) return "unknown";
  if (driver !== "haltpoll") return driver;
  const ns = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
  if (ns === undefined) return driver;
  return ns === "0"
    ? "haltpoll, guest_halt_poll_ns 0 (an idle vCPU halts at once; waking it goes through the host)"
    : `haltpoll, guest_halt_poll_ns ${ns}`;
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
    cpuIdle: cpuIdleFacts(),
  };
}
