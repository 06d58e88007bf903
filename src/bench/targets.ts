//! The servers a bench compares, each serving a file of the same size over a Unix socket, so
//! that the transport and the backing storage are equal and only the server differs.
//!
//! Both backing files start sparse and are written whole once through their own server before
//! anything is measured (see `prefillArgs`); both live in the same directory, so on the same
//! file system and under the same page cache.

import { truncate, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { startServer, type RunningServer } from "./child.js";
import { nbdEngineArgs } from "./workloads.js";

/** A started configuration, ready for fio. */
export interface BenchTarget {
  /** Configuration name, a column in the report ("nbdkit", "mirra"). */
  readonly name: string;
  /** How fio reaches it: `--ioengine=nbd --uri=...`, or for `raw` the file and its engine. */
  readonly engineArgs: readonly string[];
  /** Environment fio needs besides its arguments (CEPH_CONF for the rbd engine). */
  readonly env?: Readonly<Record<string, string>>;
  /** The exact command line that started the server. */
  readonly commandLine: string;
  readonly backingFile: string;
  stop(): Promise<void>;
}

/** A configuration the bench can start. */
export interface TargetConfig {
  readonly name: string;
  /** One line for the report: what runs and where the data lives. */
  readonly description: string;
  /**
   * Why this configuration cannot run on this machine (a missing tool or engine), or null when
   * it can. Checked at run time, before anything starts, so the report can say "not run".
   */
  unavailable?(): Promise<string | null>;
  start(dir: string, sizeBytes: number): Promise<BenchTarget>;
}

/**
 * Thrown by `TargetConfig.start` when the configuration cannot run on this machine for a reason
 * found only by trying (a cluster that never becomes healthy here): the report says "not run"
 * with this message, as for a missing tool, rather than "FAILED to start".
 */
export class TargetUnavailableError extends Error {
  override name = "TargetUnavailableError";
}

/** Deadline for a server to come up; generous because CI machines are shared. */
const startTimeoutMs = 30_000;

/** The `mirra` executable (bin/mirra.cjs), found relative to this compiled module in dist/src/bench. */
export function mirraMainPath(): string {
  return fileURLToPath(new URL("../../../bin/mirra.cjs", import.meta.url));
}

/** Resolves true when something accepts connections on the Unix socket at `path`. */
export function canConnectUnix(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function wrap(name: string, server: RunningServer, uri: string, backingFile: string): BenchTarget {
  return {
    name,
    engineArgs: nbdEngineArgs(uri),
    commandLine: server.command,
    backingFile,
    async stop(): Promise<void> {
      await server.stop();
    },
  };
}

/** mirra's export, as `mirra serve` exposes it: one export named "disk" on a Unix socket. */
export const mirraTarget: TargetConfig = {
  name: "mirra",
  description: "`mirra serve`: the NBD export and file backend, no replication engine",
  async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
    const file = join(dir, "mirra.img");
    const socket = join(dir, "mirra.sock");
    const args = [mirraMainPath(), "serve", file, "--size", String(sizeBytes)];
    args.push("--socket", socket, "--name", "disk");
    const server = await startServer(process.execPath, args, {
      readyPattern: /^listening (\S+)$/,
      timeoutMs: startTimeoutMs,
    });
    return wrap("mirra", server, server.announced[0]!, file);
  },
};

/**
 * nbdkit's file plugin with its defaults (page-cache I/O, as mirra's file backend), in the
 * foreground and tied to our lifetime with --exit-with-parent so a crashed bench leaves no
 * server behind. It prints nothing when ready, so readiness is a successful connect.
 */
export const nbdkitTarget: TargetConfig = {
  name: "nbdkit",
  description: "`nbdkit file`: an unreplicated NBD server in C over the same kind of file",
  async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
    const file = join(dir, "nbdkit.img");
    const socket = join(dir, "nbdkit.sock");
    await writeFile(file, "");
    await truncate(file, sizeBytes);
    const args = ["-U", socket, "-f", "--exit-with-parent", "file", file];
    const server = await startServer("nbdkit", args, {
      readyProbe: () => canConnectUnix(socket),
      timeoutMs: startTimeoutMs,
    });
    return wrap("nbdkit", server, `nbd+unix:///?socket=${socket}`, file);
  },
};

/** The configurations compared by default, in the order of the first repeat. */
export const defaultTargets: readonly TargetConfig[] = [nbdkitTarget, mirraTarget];
