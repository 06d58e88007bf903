//! The satellite's `ResourceRunner`: one `mirra node run --config FILE --node-id N` process
//! per resource, with its own admin socket, from which the satellite reads volume state.
//!
//! Daemons outlive a satellite that is killed (they run in their own process group, log to a
//! file and hold nothing of the satellite's): replication and NBD clients carry on, as DRBD
//! does when a LINSTOR satellite dies. A pid file per resource (`RESOURCE.pid`: pid, hash of
//! the resource file, its path) lets the next satellite adopt them: a live process whose
//! command line still names that resource file is taken over as running from that hash, and
//! reconcile restarts it if the desired file changed meanwhile. A stale pid file (process gone,
//! or the pid reused by another program) is removed. A clean satellite stop (`stopAll`) stops
//! its daemons.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { adminCall } from "../daemon/admin_client.js";
import type { ResourceStatus } from "../daemon/admin_protocol.js";
import type { Logger } from "../io/log.js";
import { MirraError } from "../stdx/errors.js";
import type { ResourceRunner } from "./executor.js";
import type { ObservedRunning } from "./reconcile.js";

/** The `mirra` executable of this installation. */
export const mirraExecutable = fileURLToPath(new URL("../../../bin/mirra.cjs", import.meta.url));

export interface ProcessRunnerOptions {
  /** Pid files, admin sockets and daemon logs live here. */
  readonly runDirectory: string;
  /** This node's node-id in `resource` (from the desired state); undefined: not desired. */
  readonly nodeIdOf: (resource: string) => number | undefined;
  readonly logger: Logger;
  /** How long a daemon may take from start to "ready". @default 60000 */
  readonly startTimeoutMs?: number;
  /** How long a daemon may take to stop after SIGTERM before it gets SIGKILL. @default 30000 */
  readonly stopTimeoutMs?: number;
}

interface Daemon {
  readonly pid: number;
  readonly hash: string;
  readonly file: string;
  /** Set while this satellite is the daemon's parent; adopted daemons have none. */
  readonly child: ChildProcess | null;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

interface PidFile {
  pid: number;
  hash: string;
  file: string;
}

/** Polling is the only way to learn that a process that is not our child has exited. */
const adoptedExitPollMs = 100;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `pid` is a `mirra node run` of `file` (and not a reused pid). */
function runsFile(pid: number, file: string): boolean {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return args.includes("run") && args.includes(file);
  } catch {
    return false; // gone, or no /proc: not ours to adopt
  }
}

function exitOfAdopted(pid: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (alive(pid)) return;
      clearInterval(timer);
      resolve();
    }, adoptedExitPollMs);
    // Watching must not keep a stopping satellite alive.
    timer.unref();
  });
}

export class ProcessRunner implements ResourceRunner {
  private readonly daemons = new Map<string, Daemon>();
  private readonly log: Logger;

  constructor(private readonly options: ProcessRunnerOptions) {
    this.log = options.logger;
    fs.mkdirSync(options.runDirectory, { recursive: true });
    this.adopt();
  }

  adminSocket(resource: string): string {
    return path.join(this.options.runDirectory, `${resource}.sock`);
  }

  private pidFile(resource: string): string {
    return path.join(this.options.runDirectory, `${resource}.pid`);
  }

  private adopt(): void {
    for (const name of fs.readdirSync(this.options.runDirectory)) {
      if (!name.endsWith(".pid")) continue;
      const resource = name.slice(0, -".pid".length);
      let p: PidFile | undefined;
      try {
        p = JSON.parse(fs.readFileSync(this.pidFile(resource), "utf8")) as PidFile;
      } catch {
        p = undefined; // torn by a crash while writing: the daemon is treated as gone
      }
      if (p !== undefined && alive(p.pid) && runsFile(p.pid, p.file)) {
        this.watch(resource, { ...p, child: null, exited: exitOfAdopted(p.pid) });
        this.log.info("adopted node daemon", { resource, pid: p.pid });
      } else fs.rmSync(this.pidFile(resource), { force: true });
    }
  }

  running(): readonly ObservedRunning[] {
    return [...this.daemons.entries()].map(([resource, d]) => ({ resource, hash: d.hash }));
  }

  async start(resource: string, filePath: string, hash: string): Promise<void> {
    if (this.daemons.has(resource)) await this.stop(resource);
    const nodeId = this.options.nodeIdOf(resource);
    if (nodeId === undefined)
      throw new MirraError("MIRRA_E_NOT_FOUND", `resource ${resource} is not desired here`);
    const socket = this.adminSocket(resource);
    const logFile = path.join(this.options.runDirectory, `${resource}.log`);
    const logFd = fs.openSync(logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(
        process.execPath,
        [
          mirraExecutable,
          "node",
          "run",
          "--config",
          filePath,
          "--node-id",
          String(nodeId),
          "--admin-socket",
          socket,
        ],
        { detached: true, stdio: ["ignore", "pipe", logFd] },
      );
    } finally {
      fs.closeSync(logFd);
    }
    const pid = child.pid;
    if (pid === undefined)
      throw new MirraError("MIRRA_E_CONFLICT", `cannot start the node daemon of ${resource}`);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    fs.writeFileSync(this.pidFile(resource), JSON.stringify({ pid, hash, file: filePath }));
    this.watch(resource, { pid, hash, file: filePath, child, exited });
    await this.waitReady(resource, child, logFile);
  }

  /** Tracks `daemon` as running `resource` until it exits. */
  private watch(resource: string, daemon: Daemon): void {
    this.daemons.set(resource, daemon);
    void daemon.exited.then(() => {
      // A daemon that dies is no longer running: the next reconcile pass starts it again.
      if (this.daemons.get(resource) !== daemon) return;
      this.daemons.delete(resource);
      fs.rmSync(this.pidFile(resource), { force: true });
      this.log.warn("node daemon exited", { resource, pid: daemon.pid });
    });
  }

  /** Resolves once the daemon prints "ready"; rejects if it exits or takes too long. */
  private waitReady(resource: string, child: ChildProcess, logFile: string): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      let out = "";
      const done = (err?: Error): void => {
        clearTimeout(timer);
        child.stdout?.removeAllListeners("data");
        child.removeListener("exit", onExit);
        // The daemon writes nothing more to stdout; keep reading so it never blocks on it.
        child.stdout?.resume();
        if (err) reject(err);
        else resolve();
      };
      const tail = (): string => {
        try {
          return fs.readFileSync(logFile, "utf8").trim().split("\n").slice(-3).join("\n");
        } catch {
          return "";
        }
      };
      const onExit = (code: number | null, signal: string | null): void =>
        done(
          new MirraError(
            "MIRRA_E_CONFLICT",
            `the node daemon of ${resource} exited (${signal ?? `status ${code}`}) before it was ` +
              `ready; its log is ${logFile}: ${tail()}`,
          ),
        );
      const timer = setTimeout(
        () =>
          done(
            new MirraError(
              "MIRRA_E_CONFLICT",
              `the node daemon of ${resource} is not ready after ${timeoutMs} ms; see ${logFile}`,
            ),
          ),
        timeoutMs,
      );
      child.once("exit", onExit);
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
        if (/^ready$/m.test(out)) done();
      });
    });
  }

  async stop(resource: string): Promise<void> {
    const d = this.daemons.get(resource);
    if (d === undefined) return;
    const timeoutMs = this.options.stopTimeoutMs ?? 30_000;
    try {
      process.kill(d.pid, "SIGTERM");
    } catch {
      // already gone
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn("node daemon did not stop; killing it", { resource, pid: d.pid });
        try {
          process.kill(d.pid, "SIGKILL");
        } catch {
          // already gone
        }
        resolve();
      }, timeoutMs);
    });
    await Promise.race([d.exited, killed.then(() => d.exited)]);
    clearTimeout(timer);
    if (this.daemons.get(resource) === d) this.daemons.delete(resource);
    fs.rmSync(this.pidFile(resource), { force: true });
  }

  /** Stops every daemon (a clean satellite stop). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.daemons.keys()].map((r) => this.stop(r)));
  }

  /**
   * `mirra adm resize` without `--size`: the daemon grows every volume to the smallest size
   * its diskful nodes' backing files hold now (docs/daemon.md, "Online resize").
   */
  async resize(resource: string): Promise<void> {
    if (!this.daemons.has(resource))
      throw new MirraError("MIRRA_E_NOT_FOUND", `resize of ${resource}: its daemon is not running`);
    // The metadata move and its resync start within the call; allow for a slow disk.
    const r = await adminCall(this.adminSocket(resource), { command: "resize", resource }, 60_000);
    if (!r.ok)
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `online resize of ${resource} refused: ${r.error ?? "no reason given"} (retried on the next pass)`,
      );
    this.log.info("online resize ran", { resource });
  }

  /** The daemon's status of `resource`, or why it cannot be had. */
  async status(resource: string, timeoutMs = 5_000): Promise<ResourceStatus | string> {
    if (!this.daemons.has(resource)) return "its node daemon is not running";
    try {
      const r = await adminCall(
        this.adminSocket(resource),
        { command: "status", resource },
        timeoutMs,
      );
      if (!r.ok || r.status?.[0] === undefined) return r.error ?? "no status";
      return r.status[0];
    } catch (err) {
      return (err as Error).message;
    }
  }
}
