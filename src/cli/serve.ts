//! `mirra serve`: export local files or block devices over NBD. The first job mirra does on
//! a fresh machine, and the export path every later layer reuses.

import * as path from "node:path";
import { parseHostPort } from "./host_port.js";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { parseSize } from "../stdx/units.js";
import { createLogger } from "../io/log.js";
import { LocalVolume } from "../storage/local_volume.js";
import { NbdServer, type ListenAddress, type NbdExport } from "../nbd/server.js";

export interface ServeOptions {
  size?: string;
  listen?: string;
  socket?: string;
  name?: string;
  readOnly?: boolean;
  export?: string[];
}

interface ExportSpec {
  name: string;
  path: string;
  readOnly: boolean;
  sizeBytes?: number;
}

/** Parses `--export NAME=PATH[,ro][,size=SIZE]`. */
export function parseExportSpec(text: string): ExportSpec {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ConfigError(`bad --export "${text}": use NAME=PATH[,ro][,size=SIZE]`);
  const name = text.slice(0, eq);
  const [file, ...opts] = text.slice(eq + 1).split(",");
  if (!file) throw new ConfigError(`bad --export "${text}": no path`);
  const spec: ExportSpec = { name, path: file, readOnly: false };
  for (const opt of opts) {
    if (opt === "ro") spec.readOnly = true;
    else if (opt.startsWith("size=")) spec.sizeBytes = parseSize(opt.slice(5));
    else throw new ConfigError(`bad --export option "${opt}": known are ro and size=SIZE`);
  }
  return spec;
}

export async function serve(file: string | undefined, options: ServeOptions): Promise<void> {
  const log = createLogger();
  const specs: ExportSpec[] = [];
  if (file) {
    specs.push({
      name: options.name ?? path.basename(file).replace(/\.[^.]*$/, ""),
      path: file,
      readOnly: options.readOnly ?? false,
      ...(options.size ? { sizeBytes: parseSize(options.size) } : {}),
    });
  }
  for (const text of options.export ?? []) specs.push(parseExportSpec(text));
  if (specs.length === 0)
    throw new ConfigError("nothing to serve: give a FILE or --export NAME=PATH");
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new ConfigError(`two exports are named "${s.name}"`);
    names.add(s.name);
  }
  const exports: NbdExport[] = specs.map((s) => {
    const device = LocalVolume.open({
      path: s.path,
      readOnly: s.readOnly,
      ...(s.sizeBytes !== undefined ? { createSizeBytes: s.sizeBytes } : {}),
    });
    return { name: s.name, description: `${s.path}${s.readOnly ? " (read-only)" : ""}`, device };
  });
  const server = new NbdServer({ exports, logger: log, busyPollMicros: busyPollMicros() });
  const addresses: ListenAddress[] = [];
  if (options.socket) {
    const socketPath = path.resolve(options.socket);
    addresses.push(await listenOrExplain(() => server.listenUnix(socketPath), socketPath));
  }
  if (options.listen || !options.socket) {
    const { host, port } = parseHostPort(options.listen ?? "127.0.0.1:10809");
    addresses.push(await listenOrExplain(() => server.listenTcp(host, port), `${host}:${port}`));
  }
  for (const a of addresses) process.stdout.write(`listening ${a.uri}\n`);
  printHowTo(addresses, exports);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    void server
      .close()
      .then(() => Promise.all(exports.map((e) => e.device.close())))
      .then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Turns a failed listen into an error that says what to do about it. */
async function listenOrExplain(
  listen: () => Promise<ListenAddress>,
  where: string,
): Promise<ListenAddress> {
  try {
    return await listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === "EADDRINUSE"
        ? "something else listens there (another NBD server?): choose another with --listen HOST:PORT or --socket PATH"
        : code === "EACCES"
          ? "permission denied"
          : String((err as Error).message);
    throw new MirraError("MIRRA_E_CONFLICT", `cannot listen on ${where}: ${hint}`, { cause: err });
  }
}

function printHowTo(addresses: readonly ListenAddress[], exports: readonly NbdExport[]): void {
  const a = addresses[0]!;
  const lines = [
    "",
    `exports: ${exports.map((e) => `${e.name} (${e.device.sizeBytes} bytes${e.device.readOnly ? ", read-only" : ""})`).join(", ")}`,
    "reach it with:",
    `  nbdinfo '${a.uri}'`,
    `  qemu-img info '${a.uri}'`,
    `  fio --name=try --ioengine=nbd --uri='${a.uri}' --rw=randrw --bs=4k --iodepth=64 --size=64M --runtime=10 --time_based`,
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

/**
 * `mirra serve` polls for depth-1 clients by default (50 µs, MIRRA_BUSY_POLL_US=0 turns it
 * off): a lone export server trades some CPU for latency. The node daemon does not, since its
 * event loop shares the CPUs with the peers' replication.
 */
function busyPollMicros(): number {
  const v = Number(process.env["MIRRA_BUSY_POLL_US"] ?? 50);
  return Number.isInteger(v) && v >= 0 && v <= 1000 ? v : 50;
}
