//! `mirra satellite`: the node agent. It holds the newest desired state the controller pushed,
//! runs reconcile → execute → observe on every push and periodically (which also restarts a
//! daemon that died), and reports pools, resources and volume states. On a port of its own
//! (9942) it serves its daemons' Prometheus metrics, asked from them at scrape time.
//!
//! Until a first desired state arrives the satellite changes nothing: an empty state from
//! nowhere must not stop (let alone delete) what a previous run of the satellite left.

import * as http from "node:http";
import type * as net from "node:net";
import * as path from "node:path";
import Fastify from "fastify";
import type { ResourceStatus } from "../daemon/admin_protocol.js";
import type { Logger } from "../io/log.js";
import { AssertionError } from "../stdx/assert.js";
import { ConfigError } from "../stdx/errors.js";
import { execute, observe, type ExecutorConfig } from "./executor.js";
import { satelliteMetrics } from "./metrics.js";
import {
  parseDesiredPush,
  type DesiredPush,
  type PoolReport,
  type PushRefusal,
  type ResourceReport,
  type SatelliteReport,
  type VolumeReport,
} from "./protocol.js";
import {
  plan,
  type DesiredState,
  type ObservedDaemon,
  type ObservedState,
  type Problem,
} from "./reconcile.js";
import { ProcessRunner } from "./runner.js";

export interface SatelliteOptions {
  /** This node's name; pushes for another node are refused. */
  readonly node: string;
  /** State directory: resource files, pid files, admin sockets, daemon logs. */
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** Reconcile this often even without a push. @default 2000 */
  readonly intervalMs?: number;
  /** Where to serve Prometheus metrics (GET /metrics); undefined: not served. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** How long a scrape waits for each node daemon's status. @default 500 */
  readonly metricsDaemonTimeoutMs?: number;
}

export interface RunningSatellite {
  readonly url: string;
  readonly port: number;
  /** `http://HOST:PORT/metrics`, when metrics are served. */
  readonly metricsUrl: string | undefined;
  /** Stops listening and the periodic pass; `stopDaemons` also stops every node daemon. */
  close(stopDaemons: boolean): Promise<void>;
}

/** The reconcile loop and the report; the HTTP shell is `startSatellite`. */
export class Satellite {
  private push: DesiredPush | null = null;
  private applied = 0;
  private report: SatelliteReport;
  private passing: Promise<void> | null = null;
  private again = false;
  private readonly waiters: { generation: number; resolve: () => void }[] = [];
  private scrape: Promise<string> | null = null;
  readonly runner: ProcessRunner;
  private readonly config: ExecutorConfig;
  private readonly log: Logger;

  constructor(private readonly options: Pick<SatelliteOptions, "node" | "dataDir" | "logger">) {
    this.log = options.logger;
    this.runner = new ProcessRunner({
      runDirectory: path.join(options.dataDir, "run"),
      nodeIdOf: (resource) => this.push?.state.resources.find((r) => r.name === resource)?.nodeId,
      logger: this.log,
    });
    this.config = {
      resourceDirectory: path.join(options.dataDir, "resources"),
      runner: this.runner,
    };
    this.report = {
      node: options.node,
      generation: 0,
      appliedGeneration: 0,
      pools: [],
      resources: [],
      errors: [],
    };
  }

  get node(): string {
    return this.options.node;
  }

  current(): SatelliteReport {
    return this.report;
  }

  /**
   * The metrics of every node daemon this satellite runs or should run (satellite/metrics.ts),
   * asked from their admin sockets now, in parallel, each within `daemonTimeoutMs`. Reads
   * only the held push and the runner's table, so it never waits for a reconcile pass; scrapes
   * that arrive while one is gathering share its answer.
   */
  metricsText(daemonTimeoutMs: number): Promise<string> {
    this.scrape ??= this.gatherMetrics(daemonTimeoutMs).finally(() => {
      this.scrape = null;
    });
    return this.scrape;
  }

  private async gatherMetrics(daemonTimeoutMs: number): Promise<string> {
    const desired = this.push?.state.resources ?? [];
    const names = new Set(desired.map((r) => r.name));
    for (const r of this.runner.running()) names.add(r.resource);
    const answers = new Map<string, ResourceStatus | null>();
    await Promise.all(
      [...names].map(async (name) => {
        answers.set(name, null); // keeps the order of `names`
        const s = await this.runner.status(name, daemonTimeoutMs);
        if (typeof s !== "string") answers.set(name, s);
      }),
    );
    return satelliteMetrics(answers, (resource) => {
      // The daemon's status does not say whether a Diskless volume was meant to be: the
      // desired state does. Before the first push, not known.
      return desired.find((r) => r.name === resource)?.diskless;
    });
  }

  /**
   * Takes a pushed desired state and resolves once a pass has applied it (or a newer one).
   * An older generation than the one held is refused; the same generation is a no-op.
   */
  async receive(push: DesiredPush): Promise<SatelliteReport | PushRefusal> {
    // Node names are case-insensitive, as in the controller.
    if (push.node.toLowerCase() !== this.options.node.toLowerCase())
      return {
        error: `this satellite is node '${this.options.node}', not '${push.node}'`,
        generation: this.push?.generation ?? 0,
      };
    const held = this.push?.generation ?? 0;
    if (push.generation < held)
      return { error: `generation ${push.generation} is older than ${held}`, generation: held };
    if (push.generation > held) this.push = push;
    await new Promise<void>((resolve) => {
      if (this.applied >= push.generation) resolve();
      else {
        this.waiters.push({ generation: push.generation, resolve });
        this.requestPass();
      }
    });
    return this.report;
  }

  /** Runs a pass now, or right after the one running. */
  requestPass(): void {
    if (this.passing !== null) {
      this.again = true;
      return;
    }
    this.passing = this.runPasses().finally(() => {
      this.passing = null;
    });
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    while (this.passing !== null) await this.passing;
  }

  private async runPasses(): Promise<void> {
    do {
      this.again = false;
      await this.pass();
    } while (this.again);
  }

  private async pass(): Promise<void> {
    const push = this.push;
    const desired: DesiredState = push?.state ?? { pools: [], resources: [] };
    const errors: string[] = [];
    let problems: readonly Problem[] = [];
    const dirs = desired.pools.map((p) => p.directory);
    if (push !== null) {
      try {
        const before = observe(dirs, this.config);
        const p = plan(desired, { ...before, daemons: await this.daemons(before) });
        problems = p.problems;
        if (p.actions.length > 0)
          this.log.info("reconciling", { actions: p.actions.map((a) => a.type).join(",") });
        await execute(p.actions, this.config);
      } catch (err) {
        // Reported, and the next pass resumes; a broken assertion is a bug and stops us.
        if (err instanceof AssertionError) throw err;
        this.log.error("reconcile failed", { error: (err as Error).message });
        errors.push((err as Error).message);
      }
    }
    let observed: ObservedState | undefined;
    try {
      observed = observe(dirs, this.config);
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      errors.push((err as Error).message);
    }
    this.report = await this.buildReport(push, desired, observed, problems, errors);
    this.applied = push?.generation ?? 0;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.generation <= this.applied) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** The status of every running daemon that answers (the online resize depends on it). */
  private async daemons(observed: ObservedState): Promise<ObservedDaemon[]> {
    const out: ObservedDaemon[] = [];
    for (const run of observed.running) {
      const s = await this.runner.status(run.resource);
      if (typeof s === "string" || !s.up) continue;
      out.push({
        resource: run.resource,
        role: s.role,
        volumes: s.volumes.map((v) => ({
          volume: v.volume,
          disk: v.disk,
          sizeKib: v.sizeBytes / 1024,
        })),
        peers: s.connections.map((c) => ({
          nodeId: c.nodeId,
          role: c.role,
          volumes: c.volumes.map((pv) => ({
            volume: pv.volume,
            replication: pv.replication,
            peerDisk: pv.peerDisk,
          })),
        })),
      });
    }
    return out;
  }

  private async buildReport(
    push: DesiredPush | null,
    desired: DesiredState,
    observed: ObservedState | undefined,
    problems: readonly Problem[],
    errors: string[],
  ): Promise<SatelliteReport> {
    const pools: PoolReport[] = desired.pools.map((p) => {
      const o = observed?.pools.find((x) => x.directory === p.directory);
      return { ...p, freeKib: o?.freeKib ?? null, totalKib: o?.totalKib ?? null };
    });
    const resources: ResourceReport[] = [];
    for (const r of desired.resources) {
      const own = problems.filter((p) => p.resource === r.name).map((p) => p.message);
      // An action that failed names its resource in the error text; keep it with the resource.
      own.push(...errors.filter((e) => e.includes(r.name)));
      const status = await this.runner.status(r.name);
      if (typeof status === "string") {
        resources.push({
          name: r.name,
          running: false,
          role: "Unknown",
          volumes: [],
          problems: [...own, status],
        });
        continue;
      }
      resources.push({
        name: r.name,
        running: status.up,
        role: status.role,
        volumes: volumesOf(status),
        problems: status.up ? own : [...own, "the resource is down"],
      });
    }
    return {
      node: this.options.node,
      generation: this.push?.generation ?? 0,
      appliedGeneration: push?.generation ?? 0,
      pools,
      resources,
      errors: errors.filter((e) => !desired.resources.some((r) => e.includes(r.name))),
    };
  }
}

function volumesOf(s: ResourceStatus): VolumeReport[] {
  return s.volumes.map((v) => ({
    volume: v.volume,
    sizeKib: v.sizeBytes / 1024,
    diskState: v.disk,
    ...(v.nbd !== undefined ? { nbd: v.nbd } : {}),
    peers: s.connections.map((c) => {
      const pv = c.volumes.find((x) => x.volume === v.volume);
      return {
        node: c.name,
        nodeId: c.nodeId,
        connection: c.connection,
        replication: pv?.replication ?? "Off",
        peerDisk: pv?.peerDisk ?? "DUnknown",
        ...(pv?.donePercent !== undefined ? { donePercent: pv.donePercent } : {}),
        outOfSyncKib: pv?.outOfSyncKiB ?? 0,
      };
    }),
  }));
}

/** Longest push body accepted: a node's desired state with many resources. */
const pushBytesMax = 16 * 1024 * 1024;

/** Starts the satellite's HTTP API and its periodic pass. */
export async function startSatellite(options: SatelliteOptions): Promise<RunningSatellite> {
  const satellite = new Satellite(options);
  const app = Fastify({ logger: false, bodyLimit: pushBytesMax });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));
  app.get("/v1/report", async (_req, reply) => reply.code(200).send(satellite.current()));
  app.put("/v1/desired", async (req, reply) => {
    let value: unknown;
    try {
      value = JSON.parse(typeof req.body === "string" ? req.body : "");
    } catch (err) {
      return reply.code(400).send({ error: `the body is not JSON: ${(err as Error).message}` });
    }
    const push = parseDesiredPush(value);
    if (typeof push === "string") return reply.code(400).send({ error: push });
    const answer = await satellite.receive(push);
    return reply.code("error" in answer ? 409 : 200).send(answer);
  });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  let metrics: { server: http.Server; url: string } | undefined;
  if (options.metrics !== undefined) {
    try {
      metrics = await serveMetrics(satellite, options.metrics, options);
    } catch (err) {
      await app.close();
      throw err;
    }
  }
  const timer = setInterval(() => satellite.requestPass(), options.intervalMs ?? 2_000);
  const url = `http://${urlHost(options.host)}:${port}`;
  options.logger.info("satellite listening", {
    url,
    node: options.node,
    ...(metrics ? { metrics: metrics.url } : {}),
  });
  return {
    url,
    port,
    metricsUrl: metrics?.url,
    close: async (stopDaemons) => {
      clearInterval(timer);
      metrics?.server.closeAllConnections();
      await new Promise<void>((resolve) =>
        metrics ? metrics.server.close(() => resolve()) : resolve(),
      );
      await app.close();
      await satellite.idle();
      if (stopDaemons) await satellite.runner.stopAll();
    },
  };
}

const urlHost = (host: string): string => (host.includes(":") ? `[${host}]` : host);

/**
 * GET /metrics on its own port, outside Fastify: a scrape is one small text, and a port of
 * its own lets Prometheus reach metrics where the satellite API is firewalled.
 */
async function serveMetrics(
  satellite: Satellite,
  at: { readonly host: string; readonly port: number },
  options: Pick<SatelliteOptions, "logger" | "metricsDaemonTimeoutMs">,
): Promise<{ server: http.Server; url: string }> {
  const timeoutMs = options.metricsDaemonTimeoutMs ?? 500;
  const server = http.createServer((req, res) => {
    req.resume();
    const pathname = (req.url ?? "/").split("?")[0];
    if (pathname !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("metrics are on /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "Content-Type": "text/plain", Allow: "GET, HEAD" }).end();
      return;
    }
    satellite.metricsText(timeoutMs).then(
      (body) =>
        res
          .writeHead(200, {
            "Content-Type": "text/plain; version=0.0.4",
            "Content-Length": Buffer.byteLength(body),
          })
          .end(req.method === "HEAD" ? undefined : body),
      (err: unknown) => {
        options.logger.error("metrics failed", { error: (err as Error).message });
        res.writeHead(500, { "Content-Type": "text/plain" }).end("metrics failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          `cannot serve metrics on ${at.host}:${at.port}: ${err.code ?? err.message} ` +
            "(choose another address with --metrics HOST:PORT, or --metrics off)",
          { cause: err },
        ),
      ),
    );
    server.listen(at.port, at.host, () => resolve());
  });
  const a = server.address() as net.AddressInfo;
  return { server, url: `http://${urlHost(at.host)}:${a.port}/metrics` };
}
