//! `mirra controller`: runs the controller (REST API over the SQLite store) until SIGINT or
//! SIGTERM, then stops listening, lets requests in flight finish and closes the store.

import * as path from "node:path";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { parseCount } from "./linstor/common.js";

export const controllerDataDirDefault = "/var/lib/mirra/controller";

export interface ControllerCommandOptions {
  data?: string;
  port?: string;
  listen?: string;
}

/** SQLite reports another holder of the exclusive lock as SQLITE_BUSY ("database is locked"). */
function isLocked(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || /locked/i.test(e.message))
      return true;
  }
  return false;
}

export async function controllerCommand(options: ControllerCommandOptions): Promise<void> {
  const port = options.port === undefined ? undefined : parseCount("--port", options.port);
  if (port !== undefined && port > 65535)
    throw new ConfigError(`bad --port "${options.port}": use 0..65535`);
  const dataDir = path.resolve(options.data ?? controllerDataDirDefault);
  const host = options.listen ?? "127.0.0.1";
  // Loaded here so that the other commands do not pay for fastify and SQLite at start.
  const { startController, StoreError } = await import("../controller/mod.js");
  let controller: Awaited<ReturnType<typeof startController>>;
  try {
    controller = await startController({
      dataDir,
      host,
      ...(port === undefined ? {} : { port }),
      satellites: {},
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "EADDRINUSE")
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `port ${port ?? 3370} on ${host} is in use (another controller?): choose one with --port`,
        { cause: err },
      );
    if (code === "EADDRNOTAVAIL")
      throw new ConfigError(`cannot listen on ${host}: no such local address`, { cause: err });
    if (err instanceof StoreError && isLocked(err))
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `the data directory ${dataDir} is in use by another controller: stop it, or use --data`,
        { cause: err },
      );
    if (err instanceof StoreError)
      throw new MirraError("MIRRA_E_CONFIG", err.message, { cause: err });
    throw err;
  }
  process.stdout.write(`controller listening on ${controller.url} (data ${dataDir})\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`controller stopping (${signal})\n`);
    void controller.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`mirra: controller did not stop cleanly: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
