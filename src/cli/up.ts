//! `mirra up` and `mirra down`: a whole local cluster on the embedded defaults. `up` starts a
//! controller and three satellites on 127.0.0.1, .2 and .3 (one loopback address per node,
//! because every replica of a resource listens on the resource definition's one port), gives
//! each a FILE_THIN pool in the data directory, spawns a replicated volume from a resource
//! group with place-count 2, waits until both replicas are UpToDate and connected, and prints
//! the NBD URIs and the Prometheus scrape targets (each satellite's metrics on its own address,
//! port 9942; the controller's on /metrics of its REST port). In the foreground, SIGINT or SIGTERM stops everything; `--detach` leaves it
//! running and `mirra down` stops it (the pids are in `DATA/mirra-up.pid`).
//!
//! Every process runs in its own process group (so a terminal's Ctrl-C reaches only `up`,
//! which stops satellites before the controller) and logs to `DATA/logs/`. Re-running `up` on
//! the same data directory reuses its nodes, pools and volume: the objects that exist are
//! left as they are.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { isIP } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { satelliteMetricsPortDefault } from "../satellite/metrics.js";
import { mirraExecutable } from "../satellite/runner.js";
import { RestClient } from "./linstor/client.js";
import { asArray, asObjects, asString, isObject, type Json } from "./linstor/json.js";
import { parseSizeKib } from "./linstor/sizes.js";

export interface UpOptions {
  data?: string;
  size?: string;
  detach?: boolean;
  addresses?: string;
  port?: string;
  satellitePort?: string;
  metricsPort?: string;
  nbdPort?: string;
  resource?: string;
  timeout?: string;
}

export interface DownOptions {
  data?: string;
}

const pidFileName = "mirra-up.pid";
const groupName = "mirra-up";
const poolName = "pool";
/** Two replicas: data survives one node, and the third node is free for a re-placement. */
const placeCount = 2;

interface PidFile {
  controller: number;
  satellites: number[];
}

/** `/var/lib/mirra` as root, else `~/.local/state/mirra`: both survive reboots. */
export function upDataDirDefault(): string {
  if (process.getuid?.() === 0) return "/var/lib/mirra";
  return path.join(
    process.env["XDG_STATE_HOME"] ?? path.join(os.homedir(), ".local/state"),
    "mirra",
  );
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readPidFile(dataDir: string): PidFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, pidFileName), "utf8")) as PidFile;
  } catch {
    return undefined;
  }
}

function port(text: string | undefined, fallback: number, option: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    throw new ConfigError(`bad ${option} "${text}": use a port in 1..65535`);
  return n;
}

/** Polls `probe` until it returns a value (`up` has no event to wait on for other processes). */
async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  gone?: () => string | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    const why = gone?.();
    if (why !== undefined) throw new MirraError("MIRRA_E_CONFLICT", why);
    if (Date.now() > deadline)
      throw new MirraError(
        "MIRRA_E_CONFLICT",
        `timed out after ${timeoutMs / 1000} s waiting for ${what}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

function startProcess(name: string, args: string[], logDir: string) {
  const log = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(log, "a");
  // The log keeps earlier runs: this run's output starts here.
  const start = fs.fstatSync(fd).size;
  const output = (): string => {
    const text = fs.readFileSync(log);
    return text.subarray(Math.min(start, text.length)).toString("utf8");
  };
  try {
    const child = spawn(process.execPath, [mirraExecutable, ...args], {
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    let exit: string | undefined;
    child.once("exit", (code, signal) => {
      exit = `${name} exited (${signal ?? `status ${code}`}); see ${log}: ${lastLines(log)}`;
    });
    return { child, log, output, exited: () => exit };
  } finally {
    fs.closeSync(fd);
  }
}

function lastLines(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-3).join("\n");
  } catch {
    return "";
  }
}

/** Whether `pid` is a mirra process (a pid file may outlive its processes, and pids are reused). */
function isMirra(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(mirraExecutable);
  } catch {
    return false;
  }
}

/** SIGTERM, then waits (SIGKILL after `timeoutMs`). */
async function stopPid(pid: number, timeoutMs: number): Promise<void> {
  if (!isMirra(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Satellites first (each stops its node daemons), then the controller. */
async function stopAll(p: PidFile): Promise<void> {
  await Promise.all(p.satellites.map((pid) => stopPid(pid, 60_000)));
  await stopPid(p.controller, 30_000);
}

async function ensure(
  client: RestClient,
  getPath: string,
  postPath: string,
  body: Json,
): Promise<void> {
  const got = await client.request("GET", getPath);
  if (got.status === 200) return;
  const r = await client.request("POST", postPath, body);
  const errors = asObjects(r.body).filter((rc) => /^-/.test(asString(rc["ret_code"])));
  if (r.status >= 400 || errors.length > 0)
    throw new MirraError(
      "MIRRA_E_CONFLICT",
      `POST ${postPath} failed: ${asObjects(r.body)
        .map((rc) => asString(rc["message"]))
        .join("; ")}`,
    );
}

/**
 * The NBD URIs of the resource's diskful replicas once every replica is connected to every
 * other and every disk is UpToDate (Diskless for the tie-breaker placement adds).
 */
async function healthy(client: RestClient, resource: string): Promise<string[] | undefined> {
  const r = await client.request("GET", `/v1/view/resources?resources=${resource}`);
  const replicas = asObjects(r.body);
  const uris: string[] = [];
  for (const rsc of replicas) {
    const diskless = asArray(rsc["flags"]).map(asString).includes("DISKLESS");
    for (const v of asObjects(rsc["volumes"])) {
      const state = isObject(v["state"]) ? v["state"] : {};
      if (asString(state["disk_state"]) !== (diskless ? "Diskless" : "UpToDate")) return undefined;
      const peers = isObject(state["replication_states"]) ? state["replication_states"] : {};
      const established = Object.values(peers).filter(
        (p) => isObject(p) && asString(p["replication_state"]) === "Established",
      );
      if (established.length !== replicas.length - 1) return undefined;
      const uri = asString(v["device_path"]);
      if (!diskless && uri !== "") uris.push(`${uri}  (node ${asString(rsc["node_name"])})`);
    }
  }
  return uris.length >= placeCount ? uris : undefined;
}

export async function up(options: UpOptions): Promise<void> {
  const dataDir = path.resolve(options.data ?? upDataDirDefault());
  const addresses = (options.addresses ?? "127.0.0.1,127.0.0.2,127.0.0.3")
    .split(",")
    .map((s) => s.trim());
  if (addresses.length < placeCount || addresses.some((a) => isIP(a) === 0))
    throw new ConfigError(`bad --addresses: give at least ${placeCount} IP addresses`);
  const controllerPort = port(options.port, 3370, "--port");
  const satellitePort = port(options.satellitePort, 3366, "--satellite-port");
  const metricsPort = port(options.metricsPort, satelliteMetricsPortDefault, "--metrics-port");
  const nbdPort = port(options.nbdPort, 10809, "--nbd-port");
  const sizeKib = parseSizeKib(options.size ?? "1G");
  const resource = options.resource ?? "r0";
  const timeoutMs = 1000 * Number(options.timeout ?? 120);
  if (!(timeoutMs > 0)) throw new ConfigError(`bad --timeout "${options.timeout}": use seconds`);

  const running = readPidFile(dataDir);
  if (running !== undefined && [running.controller, ...running.satellites].some(isMirra))
    throw new MirraError(
      "MIRRA_E_CONFLICT",
      `a cluster already runs from ${dataDir}: stop it with \`mirra down --data ${dataDir}\``,
    );
  const logDir = path.join(dataDir, "logs");
  fs.mkdirSync(logDir, { recursive: true });

  const controller = startProcess(
    "controller",
    ["controller", "--data", path.join(dataDir, "controller"), "--port", String(controllerPort)],
    logDir,
  );
  const names = addresses.map((_, i) => `node${i + 1}`);
  const at = (address: string, p: number): string =>
    address.includes(":") ? `[${address}]:${p}` : `${address}:${p}`;
  // Every node on its own address, so each can have drbd-reactor's port.
  const metricsTargets = addresses.map((a) => at(a, metricsPort));
  const satellites = addresses.map((address, i) =>
    startProcess(
      `satellite-${names[i]}`,
      [
        "satellite",
        "--listen",
        at(address, satellitePort),
        "--metrics",
        metricsTargets[i]!,
        "--node",
        names[i]!,
        "--data",
        path.join(dataDir, "satellites", names[i]!),
      ],
      logDir,
    ),
  );
  const pids: PidFile = {
    controller: controller.child.pid ?? 0,
    satellites: satellites.map((s) => s.child.pid ?? 0),
  };
  fs.writeFileSync(path.join(dataDir, pidFileName), JSON.stringify(pids) + "\n");
  let stopping = false;
  const stopAndExit = (code: number): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write("stopping the cluster...\n");
    void stopAll(pids).then(() => {
      fs.rmSync(path.join(dataDir, pidFileName), { force: true });
      process.exit(code);
    });
  };
  process.on("SIGINT", () => stopAndExit(0));
  process.on("SIGTERM", () => stopAndExit(0));

  try {
    const url = `http://127.0.0.1:${controllerPort}`;
    const client = new RestClient([url], 300_000);
    // Ready when it says so on its own output: another controller or satellite that already
    // listens there would answer an HTTP probe while ours fails to start.
    await waitUntil(
      `the controller at ${url}`,
      30_000,
      async () => (/^controller listening on /m.test(controller.output()) ? true : undefined),
      controller.exited,
    );
    for (const [i, s] of satellites.entries())
      await waitUntil(
        `the satellite of ${names[i]}`,
        30_000,
        async () => (/^satellite \S+ listening on /m.test(s.output()) ? true : undefined),
        s.exited,
      );
    await client.request("POST", "/v1/controller/properties", {
      override_props: { "Mirra/NbdPortBase": String(nbdPort) },
    });
    for (const [i, name] of names.entries()) {
      await ensure(client, `/v1/nodes/${name}`, "/v1/nodes", {
        name,
        type: "SATELLITE",
        net_interfaces: [
          { name: "default", address: addresses[i]!, satellite_port: satellitePort },
        ],
      });
      await ensure(
        client,
        `/v1/nodes/${name}/storage-pools/${poolName}`,
        `/v1/nodes/${name}/storage-pools`,
        {
          storage_pool_name: poolName,
          provider_kind: "FILE_THIN",
          props: { "StorDriver/FileDir": path.join(dataDir, "pools", name) },
        },
      );
    }
    await ensure(client, `/v1/resource-groups/${groupName}`, "/v1/resource-groups", {
      name: groupName,
      select_filter: { place_count: placeCount, storage_pool: poolName },
    });
    const existing = await client.request("GET", `/v1/resource-definitions/${resource}`);
    if (existing.status !== 200)
      await ensure(
        client,
        `/v1/resource-definitions/${resource}`,
        `/v1/resource-groups/${groupName}/spawn`,
        { resource_definition_name: resource, volume_sizes: [sizeKib] },
      );
    process.stdout.write(`waiting for ${resource} to be UpToDate on ${placeCount} nodes...\n`);
    const uris = await waitUntil(`${resource} to be UpToDate and connected`, timeoutMs, () =>
      healthy(client, resource),
    );
    printHowTo(url, dataDir, resource, uris, metricsTargets, options.detach === true);
  } catch (err) {
    process.stderr.write(`mirra: ${(err as Error).message}\n`);
    stopAndExit(1);
    return;
  }
  if (options.detach) {
    for (const c of [controller, ...satellites]) c.child.unref();
    process.exit(0);
  }
}

function printHowTo(
  controller: string,
  dataDir: string,
  resource: string,
  uris: readonly string[],
  metricsTargets: readonly string[],
  detached: boolean,
): void {
  const first = uris[0]!.split(" ")[0]!;
  const lines = [
    "",
    `cluster up: controller ${controller}, data ${dataDir}`,
    `volume ${resource}, ${placeCount} replicas, exported over NBD at:`,
    ...uris.map((u) => `  ${u}`),
    "reach it with (one node at a time: the node a client writes through becomes Primary):",
    `  nbdinfo '${first}'`,
    `  qemu-img info '${first}'`,
    `  fio --name=try --ioengine=nbd --uri='${first}' --rw=randrw --bs=4k --iodepth=64 --size=64M --runtime=10 --time_based`,
    `see it with: ./bin/mirra.cjs resource list --controllers ${controller}`,
    "Prometheus scrape targets (metrics_path /metrics):",
    `  satellites (drbd-reactor's metrics): ${metricsTargets.join(" ")}`,
    `  controller (linstor_* metrics): ${controller.replace(/^http:\/\//, "")}`,
    detached ? `stop it with: ./bin/mirra.cjs down --data ${dataDir}` : "stop it with Ctrl-C",
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

export async function down(options: DownOptions): Promise<void> {
  const dataDir = path.resolve(options.data ?? upDataDirDefault());
  const pids = readPidFile(dataDir);
  if (pids === undefined) {
    process.stdout.write(`no cluster runs from ${dataDir}\n`);
    return;
  }
  await stopAll(pids);
  fs.rmSync(path.join(dataDir, pidFileName), { force: true });
  process.stdout.write(`cluster in ${dataDir} stopped\n`);
}
