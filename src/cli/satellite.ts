//! `mirra satellite`: runs the node agent (src/satellite/satellite.ts) until SIGINT or
//! SIGTERM, which stop its node daemons too. With `--controller` it registers its node there
//! (LINSTOR's `node create`) if the controller does not know it yet. Prometheus metrics of all
//! its daemons are on `--metrics` (default: the listen host, port 9942, as drbd-reactor).

import * as os from "node:os";
import * as path from "node:path";
import { createLogger } from "../io/log.js";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { satelliteMetricsPortDefault } from "../satellite/metrics.js";
import { satellitePortDefault } from "../satellite/protocol.js";
import { parseControllers, RestClient } from "./linstor/client.js";

export const satelliteDataDirDefault = "/var/lib/mirra/satellite";

export interface SatelliteCommandOptions {
  listen?: string;
  data?: string;
  node?: string;
  controller?: string;
  metrics?: string;
}

/** `[HOST:]PORT`, `HOST` or `[IPv6]:PORT`; the port defaults to 3366. */
export function parseListen(text: string | undefined): { host: string; port: number } {
  if (text === undefined) return { host: "127.0.0.1", port: satellitePortDefault };
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text);
  const bare = /^\d+$/.test(text);
  const host = bare ? "127.0.0.1" : (m?.[1] ?? m?.[2] ?? "");
  const port = Number(bare ? text : (m?.[3] ?? satellitePortDefault));
  if (m === null || host === "" || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(`bad --listen "${text}": use [HOST:]PORT, e.g. 127.0.0.2:3366`);
  return { host, port };
}

/**
 * `--metrics`: `[HOST:]PORT`, `[IPv6]:PORT`, or `off`; the host defaults to the satellite's
 * listen host (metrics are as private as the satellite API), the port to 9942.
 */
export function parseMetrics(
  text: string | undefined,
  listenHost: string,
): { host: string; port: number } | null {
  if (text === undefined) return { host: listenHost, port: satelliteMetricsPortDefault };
  if (text.toLowerCase() === "off") return null;
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]+)):)?(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(
      `bad --metrics "${text}": use [HOST:]PORT (e.g. ${satelliteMetricsPortDefault} or ` +
        `127.0.0.2:${satelliteMetricsPortDefault}) or off`,
    );
  return { host: m[1] ?? m[2] ?? listenHost, port };
}

async function register(controller: string, node: string, host: string, port: number) {
  const client = new RestClient(parseControllers(controller), 30_000);
  const known = await client.request("GET", `/v1/nodes/${encodeURIComponent(node)}`);
  if (known.status === 200) return;
  const reply = await client.request("POST", "/v1/nodes", {
    name: node,
    type: "SATELLITE",
    net_interfaces: [
      { name: "default", address: host, satellite_port: port, satellite_encryption_type: "PLAIN" },
    ],
  });
  if (reply.status >= 400)
    throw new MirraError(
      "MIRRA_E_CONFLICT",
      `the controller refused to register node ${node}: ${JSON.stringify(reply.body)}`,
    );
}

export async function satelliteCommand(options: SatelliteCommandOptions): Promise<void> {
  const { host, port } = parseListen(options.listen);
  const metrics = parseMetrics(options.metrics, host);
  const node = options.node ?? os.hostname();
  const dataDir = path.resolve(options.data ?? satelliteDataDirDefault);
  const log = createLogger({}, { component: "satellite", node });
  const { startSatellite } = await import("../satellite/satellite.js");
  let satellite: Awaited<ReturnType<typeof startSatellite>>;
  try {
    satellite = await startSatellite({
      node,
      dataDir,
      host,
      port,
      logger: log,
      ...(metrics === null ? {} : { metrics }),
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "EADDRINUSE")
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `port ${port} on ${host} is in use (another satellite?): choose one with --listen`,
        { cause: err },
      );
    if (code === "EADDRNOTAVAIL")
      throw new ConfigError(`cannot listen on ${host}: no such local address`, { cause: err });
    throw err;
  }
  process.stdout.write(`satellite ${node} listening on ${satellite.url} (data ${dataDir})\n`);
  if (satellite.metricsUrl !== undefined)
    process.stdout.write(`satellite ${node} serves metrics on ${satellite.metricsUrl}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    void satellite.close(true).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`mirra: satellite did not stop cleanly: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (options.controller !== undefined) {
    // Registered after listening, so the controller's first push finds the satellite.
    if (host === "0.0.0.0" || host === "::")
      throw new ConfigError(
        "--controller needs --listen with this node's own address, not " + host,
      );
    await register(options.controller, node, host, satellite.port);
    process.stdout.write(`registered node ${node} with ${options.controller}\n`);
  }
}
