//! Child processes for the bench and the integration tests: run a command to completion under a
//! deadline, or start a long-lived server and wait for the lines that say it is ready.
//!
//! Model: every child has a bounded lifetime. A command is killed (SIGKILL) at its deadline and
//! reported as timed out; a server that does not announce itself in time is killed and the
//! error carries its stderr; a running server is stopped by its owner with SIGTERM, then
//! SIGKILL after a grace period. Captured output is capped so a chatty child cannot exhaust
//! memory.

import { spawn, type ChildProcess } from "node:child_process";
import { access, constants } from "node:fs/promises";

/** Output kept per stream; beyond it the oldest bytes are dropped. */
const capturedBytesMax = 8 * 1024 * 1024;

/** How a finished command ended, with what it printed. */
export interface CommandResult {
  readonly command: string;
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the deadline passed and the process was killed. */
  readonly timedOut: boolean;
}

export interface RunOptions {
  /** Deadline for the whole command. @default 60000 */
  readonly timeoutMs?: number;
  /** Written to the child's stdin, which is then closed. */
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Aborting kills the child (SIGTERM) and rejects, as an interrupted bench needs. */
  readonly signal?: AbortSignal;
}

/** Quotes an argument list so it can be pasted into a POSIX shell to repeat the run. */
export function shellQuote(args: readonly string[]): string {
  return args
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(" ");
}

/** `shellQuote` with environment assignments in front, as a shell reads `VAR=value cmd`. */
export function shellQuoteWithEnv(
  env: Readonly<Record<string, string>>,
  args: readonly string[],
): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shellQuote([v])}`);
  return [...vars, shellQuote(args)].join(" ");
}

/** Keeps the last `capturedBytesMax` characters of a stream. */
class Capture {
  private text = "";
  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > capturedBytesMax) this.text = this.text.slice(-capturedBytesMax);
  }
  toString(): string {
    return this.text;
  }
}

/**
 * Runs `command args` to completion. Resolves with the exit status and output whatever the
 * status; rejects only when the program cannot be started at all (e.g. it is not installed).
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
      signal: options.signal,
    });
    const stdout = new Capture();
    const stderr = new Capture();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout?.on("data", (c: Buffer) => stdout.append(c));
    child.stderr?.on("data", (c: Buffer) => stderr.append(c));
    if (options.input !== undefined) child.stdin?.end(options.input);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        command: shellQuote([command, ...args]),
        code,
        signal,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        timedOut,
      });
    });
  });
}

/** Renders a result for an assertion message: enough to reproduce and diagnose a failure. */
export function describeResult(r: CommandResult): string {
  const status = r.timedOut ? "timed out" : r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  return `$ ${r.command}\n(${status})\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/** How a stopped server ended. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A long-lived child that announced `readyCount` ready lines on stdout. */
export interface RunningServer {
  /** The first capture group of each ready line, in order (e.g. the URIs). */
  readonly announced: readonly string[];
  readonly pid: number;
  readonly command: string;
  stdout(): string;
  stderr(): string;
  /** True until the process has exited. */
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

export interface StartOptions {
  /**
   * Matches one ready line; its first capture group is recorded in `announced`. Without it the
   * server is ready once `readyProbe` says so.
   */
  readonly readyPattern?: RegExp;
  /** Polled every `probeIntervalMs` for servers that print nothing when ready (nbdkit). */
  readonly readyProbe?: () => Promise<boolean>;
  /** How many ready lines to wait for (one per listener). @default 1 */
  readonly readyCount?: number;
  /** Deadline for all ready lines. @default 15000 */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Starts a server and resolves once it printed `readyCount` lines matching `readyPattern`.
 * Rejects, after killing it, when it exits or misses the deadline first; the error shows the
 * command and its stderr so a failed start explains itself.
 */
export function startServer(
  command: string,
  args: readonly string[],
  options: StartOptions,
): Promise<RunningServer> {
  const readyCount = options.readyCount ?? 1;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
  });
  const stdout = new Capture();
  const stderr = new Capture();
  const exited = exitPromise(child);
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const quoted = shellQuote([command, ...args]);
  child.stderr.on("data", (c: Buffer) => stderr.append(c));

  return new Promise((resolve, reject) => {
    const announced: string[] = [];
    let pending = "";
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      // Wait for the output to drain (bounded: a grandchild could hold the pipes open) so
      // the error shows everything the server managed to print.
      void Promise.race([closed, exited.then(() => delay(1000))]).then(() =>
        reject(
          new Error(`${why}\n$ ${quoted}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`),
        ),
      );
    };
    const succeed = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(makeRunningServer(child, exited, announced, quoted, stdout, stderr));
    };
    const timer = setTimeout(() => fail(`server not ready after ${timeoutMs} ms`), timeoutMs);
    if (options.readyProbe !== undefined) {
      void pollProbe(options.readyProbe, () => settled, succeed);
    }
    child.on("error", (err) => fail(`cannot start server: ${err.message}`));
    void exited.then((s) =>
      fail(`server exited before it was ready (code ${s.code}, signal ${s.signal})`),
    );
    child.stdout.on("data", (c: Buffer) => {
      stdout.append(c);
      if (settled) return;
      pending += c.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const m = options.readyPattern?.exec(line.trimEnd());
        if (m) announced.push(m[1] ?? m[0]);
      }
      if (options.readyPattern !== undefined && announced.length >= readyCount) succeed();
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Interval between two readiness probes. */
const probeIntervalMs = 50;

/** Polls `probe` until it answers true or `done()` (the start settled another way). */
async function pollProbe(
  probe: () => Promise<boolean>,
  done: () => boolean,
  succeed: () => void,
): Promise<void> {
  while (!done()) {
    if (await probe().catch(() => false)) {
      succeed();
      return;
    }
    await delay(probeIntervalMs);
  }
}

function exitPromise(child: ChildProcess): Promise<ExitStatus> {
  return new Promise((resolve) => {
    // "exit" rather than "close": a grandchild holding the pipes open must not delay stop().
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", () => resolve({ code: null, signal: null }));
  });
}

function makeRunningServer(
  child: ChildProcess,
  exited: Promise<ExitStatus>,
  announced: readonly string[],
  command: string,
  stdout: Capture,
  stderr: Capture,
): RunningServer {
  let running = true;
  void exited.then(() => (running = false));
  return {
    announced,
    pid: child.pid ?? -1,
    command,
    stdout: () => stdout.toString(),
    stderr: () => stderr.toString(),
    isRunning: () => running,
    async stop(graceMs = 10_000): Promise<ExitStatus> {
      if (running) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The path of `name` on $PATH, as `command -v` finds it, or null when it is not installed. */
export async function findExecutable(name: string): Promise<string | null> {
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir === "") continue;
    const path = `${dir}/${name}`;
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // Not in this directory: keep looking.
    }
  }
  return null;
}
