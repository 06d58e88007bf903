//! Helpers for integration tests that drive `mirra serve` with NBD clients nobody here wrote
//! (libnbd's nbdinfo/nbdcopy/nbdsh, qemu-img, fio).
//!
//! Lifetime model: every server and temporary directory a test file creates is registered here,
//! and `cleanupAll()` (call it from `after()`) stops the servers (SIGTERM, then SIGKILL) and
//! removes the directories, so a failing test leaves nothing running. Every external command
//! runs under a deadline.

import { createCipheriv, createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import {
  describeResult,
  runCommand,
  startServer,
  type CommandResult,
  type ExitStatus,
  type RunOptions,
} from "../../src/bench/child.js";

export { describeResult, type CommandResult };

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** The `mirra` executable (bin/mirra.cjs), relative to this compiled file in dist/test/integration. */
export const mirraMain = fileURLToPath(new URL("../../../bin/mirra.cjs", import.meta.url));

/** A running `mirra serve`. */
export interface MirraServer {
  /** One URI per listener, in the order the server announced them. */
  readonly uris: readonly string[];
  /** The first listener's URI (the default export). */
  readonly uri: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<ExitStatus>;
}

const servers = new Set<MirraServer>();
const tempDirs = new Set<string>();

/**
 * Starts `mirra serve ARGS` and waits for one `listening URI` line per listener.
 * @param listeners how many `--listen`/`--socket` listeners ARGS asks for. @default 1
 */
export async function startMirra(args: readonly string[], listeners = 1): Promise<MirraServer> {
  if (!existsSync(mirraMain))
    throw new Error(`${mirraMain} is missing: run \`npx tsc -p .\` first`);
  const child = await startServer(process.execPath, [mirraMain, "serve", ...args], {
    readyPattern: /^listening (\S+)$/,
    readyCount: listeners,
    timeoutMs: 20_000,
  });
  const server: MirraServer = {
    uris: child.announced,
    uri: child.announced[0]!,
    stdout: () => child.stdout(),
    stderr: () => child.stderr(),
    stop: async () => {
      servers.delete(server);
      return child.stop();
    },
  };
  servers.add(server);
  return server;
}

/** A fresh directory under the OS temp dir, removed by `cleanupAll()`. */
export async function makeTempDir(prefix = "mirra-it-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Stops every server still running, then removes every temp dir. Idempotent. */
export async function cleanupAll(): Promise<void> {
  for (const server of [...servers]) await server.stop();
  for (const dir of [...tempDirs]) {
    tempDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs an external command under a deadline (60 s unless told). */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return runCommand(command, args, { timeoutMs: 60_000, ...options });
}

/**
 * Runs a Python script in nbdsh (libnbd's shell) against `uri`; `h` is the connected handle.
 * Debian's `nbd` module lives under /usr/bin/python3, which a pyenv python3 earlier in PATH
 * would hide from the `nbdsh` wrapper, so that interpreter is used directly when present.
 */
export function nbdsh(uri: string, script: string, timeoutMs = 60_000): Promise<CommandResult> {
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  return run(python, ["-m", "nbd", "-u", uri, "-c", script], { timeoutMs });
}

/** The same server's URI for another export name (works for nbd:// and nbd+unix://). */
export function exportUri(uri: string, name: string): string {
  const m = /^(nbds?(?:\+unix)?:\/\/[^/]*\/)([^?]*)(\?.*)?$/.exec(uri);
  if (!m) throw new Error(`not an NBD URI: ${uri}`);
  return `${m[1]}${encodeURIComponent(name)}${m[3] ?? ""}`;
}

/**
 * Writes `sizeBytes` of deterministic pseudo-random data: AES-256-CTR over zeros, keyed by
 * `seed`. Fast (no JS loop per byte), incompressible, without zero blocks that a copy tool
 * could turn into holes, and the same bytes on every run.
 */
export async function writePseudoRandomFile(
  path: string,
  sizeBytes: number,
  seed: string,
): Promise<void> {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const file = await open(path, "w");
  try {
    for (let offset = 0; offset < sizeBytes; offset += zeros.length) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(zeros.length, sizeBytes - offset)));
      await file.write(chunk, 0, chunk.length, offset);
    }
  } finally {
    await file.close();
  }
}

/** The sha256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await open(path, "r");
  try {
    for await (const chunk of file.createReadStream({ highWaterMark: MiB }))
      hash.update(chunk as Buffer);
  } finally {
    await file.close();
  }
  return hash.digest("hex");
}

/** Bytes a file occupies on disk (st_blocks × 512): what TRIM on a sparse file should reduce. */
export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** `length` bytes of a file from `offset`. */
export async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const file = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** Parses the JSON an nbdsh script printed as its last line. */
export function lastJsonLine<T>(r: CommandResult): T {
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`expected a JSON line on stdout\n${describeResult(r)}`);
  }
}
