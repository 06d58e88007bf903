//! `mirra node run`: start the node daemon for one or more resource files (see
//! src/daemon/node_daemon.ts, docs/daemon.md).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { createLogger } from "../io/log.js";
import { parseResourceFile } from "../config/resource_file.js";
import { NodeDaemon } from "../daemon/node_daemon.js";
import { adminSocketDefault } from "../daemon/admin_protocol.js";

import { parseHostPort } from "./host_port.js";

export interface NodeRunOptions {
  config: string[];
  nodeId?: string;
  adminSocket?: string;
  metrics?: string;
}

export async function nodeRun(options: NodeRunOptions): Promise<void> {
  const log = createLogger();
  let nodeId: number | undefined;
  if (options.nodeId !== undefined) {
    if (!/^\d+$/.test(options.nodeId) || Number(options.nodeId) > 31)
      throw new ConfigError(`bad --node-id "${options.nodeId}": use a whole number in 0..31`);
    nodeId = Number(options.nodeId);
  }
  const files = options.config.map((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read resource file ${file}: ${(err as Error).message}`);
    }
    return parseResourceFile(text, file);
  });
  const adminSocket = path.resolve(
    options.adminSocket ?? process.env["MIRRA_ADMIN_SOCKET"] ?? adminSocketDefault,
  );
  const daemon = new NodeDaemon({
    files,
    nodeId,
    hostname: os.hostname(),
    adminSocket,
    ...(options.metrics !== undefined
      ? { metrics: parseHostPort(options.metrics, "--metrics") }
      : {}),
    logger: log,
  });
  const failures = await daemon.start();
  for (const f of failures)
    process.stderr.write(`mirra: resource ${f.resource} is down: ${f.error.message}\n`);
  if (failures.length === daemon.resourceCount) {
    await daemon.stop();
    throw new MirraError(failures[0]!.error.code, failures[0]!.error.message);
  }
  process.stdout.write(`admin socket ${adminSocket}\nready\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    void daemon.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
