//! The `raw` configuration: fio on a file of the volume's size with its own engine, no server
//! in between, the limit the NBD configurations are measured against.
//!
//! It goes through the page cache (`--direct=0`), because every server here (nbdkit file,
//! mirra, qemu-storage-daemon over nbdkit) does too: O_DIRECT would compare a cached path with
//! an uncached one. The engine is io_uring when the kernel allows it (a container may forbid
//! it by seccomp), else libaio; the report's command lines say which.

import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { runCommand } from "./child.js";
import type { BenchTarget, TargetConfig } from "./targets.js";

/** True when a tiny buffered io_uring read of `file` succeeds. */
async function ioUringWorks(file: string): Promise<boolean> {
  const r = await runCommand(
    "fio",
    [
      "--name=probe",
      "--ioengine=io_uring",
      `--filename=${file}`,
      "--size=4k",
      "--rw=read",
      "--bs=4k",
      "--direct=0",
      "--output-format=json",
    ],
    { timeoutMs: 30_000 },
  );
  return r.code === 0 && !r.timedOut;
}

export const rawTarget: TargetConfig = {
  name: "raw",
  description:
    "fio on the prefilled file itself (io_uring, or libaio where io_uring is refused; " +
    "--direct=0, through the page cache like the servers): the limit",
  async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
    const file = join(dir, "raw.img");
    await writeFile(file, "");
    await truncate(file, sizeBytes);
    const engine = (await ioUringWorks(file)) ? "io_uring" : "libaio";
    return {
      name: "raw",
      engineArgs: [`--ioengine=${engine}`, `--filename=${file}`, "--direct=0"],
      commandLine: `(no server: fio opens ${file} itself with --ioengine=${engine} --direct=0)`,
      backingFile: file,
      stop: async (): Promise<void> => {},
    };
  },
};
