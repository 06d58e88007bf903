//! `mirra node run`: the node daemon. It runs every resource of its resource files (each
//! brought up at start), and answers `mirra adm` on a Unix socket (admin_protocol.ts).
//!
//! Restart safety: everything the engine needs to recover is in the metadata areas, written
//! by the engine's own metadataWrite effects before it relies on them; the daemon keeps no
//! state of its own. Killing it at any point and starting it again re-reads the areas, and
//! the engine's restore path (crashed-primary flag, activity log) does the rest.

import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import type { Logger } from "../io/log.js";
import { ConfigError, MirraError } from "../stdx/errors.js";
import { localNode, type NodeSpec, type ResourceFile } from "../config/resource_file.js";
import { ResourceHost } from "./resource_host.js";
import { nodeMetrics } from "../metrics/node_metrics.js";
import {
  parseAdminRequest,
  type AdminRequest,
  type AdminResponse,
  type ResourceStatus,
} from "./admin_protocol.js";

export interface NodeDaemonOptions {
  readonly files: readonly ResourceFile[];
  /** This node's id (else found by host name in each file). */
  readonly nodeId: number | undefined;
  readonly hostname: string;
  readonly adminSocket: string;
  /** Where to serve Prometheus metrics (drbd-reactor's names); undefined: not served. */
  readonly metrics?: { readonly host: string; readonly port: number };
  readonly logger: Logger;
}

/** Longest request line accepted on the admin socket. */
const requestBytesMax = 64 * 1024;

export class NodeDaemon {
  private readonly resources = new Map<string, ResourceHost>();
  /** This node's part of each resource file: which volumes are diskless (DRBD clients). */
  private readonly selves = new Map<string, NodeSpec>();
  private server: net.Server | null = null;
  private metricsServer: http.Server | null = null;
  /** Admin connections that asked for `events`: every state change goes to each. */
  private readonly subscribers = new Set<net.Socket>();
  private readonly clients = new Set<net.Socket>();
  private readonly log: Logger;

  constructor(private readonly options: NodeDaemonOptions) {
    this.log = options.logger;
    for (const file of options.files) {
      if (this.resources.has(file.resource))
        throw new ConfigError(`resource ${file.resource} is defined by two resource files`);
      const self = localNode(file, options.nodeId, options.hostname);
      this.selves.set(file.resource, self);
      this.resources.set(
        file.resource,
        new ResourceHost(file, self, this.log, (resource, change) =>
          this.publish({ event: "change", resource, ...change }),
        ),
      );
    }
  }

  /**
   * Listens on the admin socket, then brings every resource up. A resource that cannot come
   * up (say, corrupt metadata) stays down, so the others still run and the operator can fix
   * it and `adm up` it; its error is returned, one per resource that failed.
   */
  async start(): Promise<{ resource: string; error: MirraError }[]> {
    await this.listenAdmin();
    if (this.options.metrics) await this.listenMetrics(this.options.metrics);
    const failures: { resource: string; error: MirraError }[] = [];
    for (const r of this.resources.values()) {
      try {
        await r.up();
      } catch (err) {
        if (!(err instanceof MirraError)) throw err;
        this.log.error("resource not up", { resource: r.name, error: err.message });
        failures.push({ resource: r.name, error: err });
      }
    }
    return failures;
  }

  get resourceCount(): number {
    return this.resources.size;
  }

  /** Takes every resource down and closes the admin socket. */
  async stop(): Promise<void> {
    for (const r of this.resources.values()) {
      try {
        await r.down();
      } catch (err) {
        this.log.error("resource down failed", { resource: r.name, error: (err as Error).message });
      }
    }
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.metricsServer?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve(),
    );
    fs.rmSync(this.options.adminSocket, { force: true });
  }

  /** The metrics text for every resource: drbd-reactor's families, then mirra's own. */
  metricsText(): string {
    const status = [...this.resources.values()].map((r) => r.status());
    return nodeMetrics(status, {
      isClient: (resource, volume) =>
        this.selves.get(resource)?.volumes.find((v) => v.volume === volume)?.disk === undefined,
    });
  }

  /** Like drbd-reactor: any path and method get the current metrics. */
  private async listenMetrics(at: { host: string; port: number }): Promise<void> {
    const server = http.createServer((req, res) => {
      req.resume();
      let body: string;
      try {
        body = this.metricsText();
      } catch (err) {
        this.log.error("metrics failed", { error: (err as Error).message });
        res.writeHead(500, { "Content-Type": "text/plain" }).end("metrics failed\n");
        return;
      }
      res
        .writeHead(200, {
          "Content-Type": "text/plain; version=0.0.4",
          "Content-Length": Buffer.byteLength(body),
        })
        .end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(
            `cannot serve metrics on ${at.host}:${at.port}: ${err.code ?? err.message}`,
          ),
        ),
      );
      server.listen(at.port, at.host, () => resolve());
    });
    this.metricsServer = server;
    const a = server.address() as net.AddressInfo;
    this.log.info("serving metrics", { address: `${a.address}:${a.port}` });
  }

  private async listenAdmin(): Promise<void> {
    const socketPath = this.options.adminSocket;
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    if (fs.existsSync(socketPath)) {
      if (await isAlive(socketPath))
        throw new MirraError(
          "MIRRA_E_CONFLICT",
          `another mirra node daemon answers on ${socketPath}: stop it, or give --admin-socket`,
        );
      fs.rmSync(socketPath, { force: true });
    }
    const server = net.createServer((socket) => this.onClient(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, 0o600);
    this.server = server;
    this.log.info("admin socket listening", { path: socketPath });
  }

  private publish(event: Record<string, unknown>): void {
    if (this.subscribers.size === 0) return;
    const line = JSON.stringify(event) + "\n";
    for (const s of this.subscribers) if (!s.destroyed) s.write(line);
  }

  /**
   * `{"command":"events"}` turns an admin connection into a stream, like drbdsetup events2:
   * one `exists` line per resource with its whole status, then one `change` line per state
   * change, until the client hangs up.
   */
  private subscribe(socket: net.Socket): void {
    for (const r of this.resources.values())
      socket.write(JSON.stringify({ event: "exists", status: r.status() }) + "\n");
    this.subscribers.add(socket);
  }

  private onClient(socket: net.Socket): void {
    this.clients.add(socket);
    socket.on("close", () => {
      this.clients.delete(socket);
      this.subscribers.delete(socket);
    });
    socket.on("error", () => socket.destroy());
    let pending = "";
    // Requests on one connection are answered in order: each waits for the one before.
    let chain: Promise<void> = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      if (pending.length > requestBytesMax && !pending.includes("\n")) {
        socket.end(JSON.stringify({ ok: false, error: "request line too long" }) + "\n");
        return;
      }
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line === "") continue;
        const value = parseJsonLine(line);
        if (isEventsRequest(value)) {
          chain = chain.then(() => this.subscribe(socket));
          continue;
        }
        chain = chain.then(async () => {
          const response = await this.handleValue(value);
          if (!socket.destroyed) socket.write(JSON.stringify(response) + "\n");
        });
      }
    });
  }

  /** One parsed request line (`notJson` when it did not parse) to its response. */
  private async handleValue(value: unknown): Promise<AdminResponse> {
    if (value === notJson) return { ok: false, error: "the request is not JSON" };
    const request = parseAdminRequest(value);
    if (typeof request === "string") return { ok: false, error: request };
    const id = request.id !== undefined ? { id: request.id } : {};
    try {
      return { ...id, ...(await this.handle(request)) };
    } catch (err) {
      // Operating errors (a disk that cannot attach, a port in use) go back to the caller;
      // anything else is a bug and must not be swallowed.
      if (!(err instanceof MirraError)) throw err;
      return { ...id, ok: false, error: err.message };
    }
  }

  async handle(request: AdminRequest): Promise<AdminResponse> {
    this.log.info("admin request", {
      command: request.command,
      resource: request.resource,
      peer: request.peer === undefined ? undefined : String(request.peer),
    });
    if (request.command === "status" && request.resource === undefined)
      return { ok: true, status: [...this.resources.values()].map((r) => r.status()) };
    const resource = this.resources.get(request.resource ?? "");
    if (resource === undefined)
      return {
        ok: false,
        error: `no resource "${request.resource}" here (known: ${[...this.resources.keys()].join(", ") || "none"})`,
      };
    const result = await resource.handle(request);
    const status: ResourceStatus[] | undefined =
      request.command === "status" ? [resource.status()] : undefined;
    return {
      ok: result.ok,
      ...(result.error !== undefined ? { error: result.error } : {}),
      ...(status !== undefined ? { status } : {}),
    };
  }
}

function isAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** What parseJsonLine returns for a line that is not JSON. */
const notJson: unique symbol = Symbol("not JSON");

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return notJson;
  }
}

/** `{"command":"events"}`: the one request that turns a connection into a stream. */
function isEventsRequest(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (value as { command?: unknown }).command === "events";
}
