//! The controller's REST server: LINSTOR's v1 paths on port 3370, over the store.
//!
//! Fastify is the HTTP shell (routing with path parameters, body limits, keep-alive, graceful
//! close), chosen over node:http plus a hand-written router because ~60 routes with
//! parameters are exactly what its router is for, and it is widely used and maintained. The
//! wire format stays ours: bodies are read as text and parsed by `input.ts` (so a bad body is
//! an ApiCallRc, not a framework error), and responses are written by `toJson` (so BigInt
//! ret codes are exact). Every error, including unknown paths, is an ApiCallRc list.

import { readFileSync } from "node:fs";
import { randomBytes, randomUUID } from "node:crypto";
import { hostname as osHostname } from "node:os";
import { performance } from "node:perf_hooks";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import {
  apiCallRcJson,
  ApiCallError,
  parseError,
  retCode,
  unknownApiCall,
  type ApiCallRc,
} from "./api_call_rc.js";
import type { ApiContext, Route } from "./api_common.js";
import { definitionRoutes } from "./api_definitions.js";
import { errorReportRoutes } from "./api_error_reports.js";
import { keepAliveMsDefault, registerEventRoutes } from "./api_events.js";
import { registerMetricsRoute } from "./api_metrics.js";
import { toggleDiskRoutes } from "./api_toggle_disk.js";
import { instanceId, storeErrorReport } from "./error_reports.js";
import { EventBus, publishingStore } from "./events.js";
import { nothingObserved, type ObservedState } from "./observed_state.js";
import { groupRoutes } from "./api_groups.js";
import { miscRoutes, versionRoute } from "./api_misc.js";
import { nodeRoutes } from "./api_nodes.js";
import { placementRoutes } from "./api_placement.js";
import { resourceRoutes } from "./api_resources.js";
import { bodyBytesMax, type Query } from "./input.js";
import { toJson, type JsonValue } from "./json.js";
import { openSqliteStore, StoreError } from "./store/sqlite_store.js";
import type { ControllerStore } from "./store/store.js";
import { AssertionError } from "../stdx/assert.js";
import { createLogger, type Logger } from "../io/log.js";
import { SatelliteLink, type SatelliteLinkOptions } from "./satellite_link.js";

export const controllerPortDefault = 3370;

export interface ControllerOptions {
  /** Directory for the database (`controller.db`); created when missing. */
  dataDir: string;
  /** TCP port; 0 picks a free one. @default 3370 */
  port?: number;
  /**
   * Address to listen on. LINSTOR listens on all addresses; mirra has no authentication yet,
   * so it listens on loopback unless told otherwise. @default "127.0.0.1"
   */
  host?: string;
  /** A store to use instead of opening SQLite in `dataDir` (tests, etcd later). */
  store?: ControllerStore;
  /** Clock in epoch milliseconds. @default Date.now */
  nowMs?: () => number;
  logger?: Logger;
  /**
   * What satellites report (connections, capacity, roles). @default the satellite link's
   * view when `satellites` is given, else nothingObserved (nodes OFFLINE, nothing known)
   */
  observed?: ObservedState;
  /** The name error reports carry as their node. @default os.hostname() */
  hostname?: string;
  /** Interval of the keep-alive comments on event streams. @default 15000 */
  eventKeepAliveMs?: number;
  /**
   * Talk to the nodes' satellites (push desired state, poll reports, wait for them on
   * mutations). Off unless given: unit tests have nodes whose satellites do not exist.
   */
  satellites?: SatelliteLinkOptions;
}

export interface RunningController {
  /** Base URL, e.g. `http://127.0.0.1:3370`. */
  url: string;
  port: number;
  host: string;
  store: ControllerStore;
  /** Node and promotion events; the satellite link publishes what it observes here. */
  events: EventBus;
  /** The link to the satellites, when `satellites` was given. */
  link: SatelliteLink | undefined;
  /** Stops listening, ends event streams, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

/** 20 characters from [A-Za-z0-9], like LINSTOR's generated DRBD secrets. */
function newSecret(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 248 is the largest multiple of 62 below 256: rejecting above it keeps the draw uniform.
  let out = "";
  while (out.length < 20) {
    for (const b of randomBytes(32)) {
      if (b < 248 && out.length < 20) out += alphabet[b % 62];
    }
  }
  return out;
}

function mirraVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL("../../../package.json", import.meta.url), "utf8"),
    ) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown"; // a missing package.json only loses the version string
  }
}

function send(reply: FastifyReply, status: number, body: JsonValue): FastifyReply {
  return reply.code(status).type("application/json").send(toJson(body));
}

function sendRcs(
  ctx: ApiContext,
  reply: FastifyReply,
  status: number,
  rcs: readonly ApiCallRc[],
): FastifyReply {
  const at = new Date(ctx.nowMs()).toISOString();
  return send(
    reply,
    status,
    rcs.map((rc) => apiCallRcJson(rc, at)),
  );
}

/** Framework errors that are the client's fault (body too large, bad content-type): 4xx. */
function clientErrorStatus(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

export function allRoutes(version: string): Route[] {
  return [
    versionRoute(version),
    ...miscRoutes,
    ...nodeRoutes,
    ...groupRoutes,
    ...definitionRoutes,
    ...resourceRoutes,
    ...placementRoutes,
    ...toggleDiskRoutes,
    ...errorReportRoutes,
  ];
}

export async function startController(options: ControllerOptions): Promise<RunningController> {
  const log = options.logger ?? createLogger({}, { component: "controller" });
  const events = new EventBus((err) => log.error("event listener failed", { error: String(err) }));
  // Handlers write through this wrapper, which publishes node events once a write commits.
  const store = publishingStore(
    options.store ?? openSqliteStore({ dataDir: options.dataDir }),
    events,
  );
  const nowMs = options.nowMs ?? Date.now;
  const version = mirraVersion();
  const hostname = options.hostname ?? osHostname();
  const instance = instanceId(nowMs());
  const link =
    options.satellites === undefined
      ? undefined
      : new SatelliteLink(store, log.child({ component: "satellite-link" }), options.satellites);

  const observed = options.observed ?? link?.observed ?? nothingObserved;
  const ctx: ApiContext = {
    store,
    nowMs,
    newUuid: randomUUID,
    newSecret,
    observed,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: bodyBytesMax,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
  });
  // Bodies are text, whatever the content type claims; input.ts parses them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));

  for (const route of allRoutes(version)) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const params = request.params as Record<string, string>;
        let result = await route.handler(ctx, {
          params,
          query: request.query as Query,
          body: typeof request.body === "string" ? request.body : undefined,
        });
        if (link) result = await link.afterRequest(route.method, route.url, params, result);
        return send(reply, result.status, result.body);
      },
    });
  }

  app.setNotFoundHandler((request, reply) =>
    sendRcs(ctx, reply, 404, [
      {
        retCode: unknownApiCall,
        message: `No API call at ${request.method} ${request.url.split("?")[0]}.`,
      },
    ]),
  );

  /**
   * The reply to a failure no handler planned for: FAIL_SQL or FAIL_UNKNOWN_ERROR, with an
   * error report when the store can still take one (a broken database may not).
   */
  const unexpectedFailure = async (err: unknown, request: FastifyRequest): Promise<ApiCallRc[]> => {
    const message = err instanceof Error ? err.message : String(err);
    const sqliteCode = (err as { code?: unknown }).code;
    const isStore =
      err instanceof StoreError ||
      (typeof sqliteCode === "string" && sqliteCode.startsWith("SQLITE_"));
    let reportId: string | undefined;
    try {
      const report = await store.write((tx) =>
        storeErrorReport(tx, instance, {
          error: err,
          nodeName: hostname,
          version,
          timeMs: nowMs(),
          peer: `RestClient(${request.ip})`,
          request: `${request.method} ${request.url}`,
        }),
      );
      reportId = report.id;
    } catch (reportErr) {
      log.error("cannot write an error report", { error: String(reportErr) });
    }
    log.error("request failed", {
      method: request.method,
      url: request.url,
      error: String(err),
      ...(reportId === undefined ? {} : { errorReport: reportId }),
    });
    return [
      {
        retCode: retCode("error", isStore ? "FAIL_SQL" : "FAIL_UNKNOWN_ERROR", "none", "none"),
        message: isStore
          ? "The controller's database failed."
          : "The controller failed to handle the request.",
        cause: message,
        ...(reportId === undefined ? {} : { errorReportIds: [reportId] }),
      },
    ];
  };

  app.setErrorHandler(async (err, request, reply) => {
    if (err instanceof ApiCallError) return sendRcs(ctx, reply, err.status, err.rcs);
    const status = clientErrorStatus(err);
    const message = err instanceof Error ? err.message : String(err);
    if (status !== undefined) {
      return sendRcs(ctx, reply, status, parseError(`The request cannot be read: ${message}`).rcs);
    }
    const rcs = await unexpectedFailure(err, request);
    if (err instanceof AssertionError) {
      // A bug in the controller: answer, then crash as every broken assertion must.
      setImmediate(() => {
        throw err;
      });
    }
    return sendRcs(ctx, reply, 500, rcs);
  });

  registerEventRoutes(app, {
    bus: events,
    store,
    observed,
    keepAliveMs: options.eventKeepAliveMs ?? keepAliveMsDefault,
    nowMs,
    failure: unexpectedFailure,
  });
  registerMetricsRoute(app, {
    store,
    observed,
    version,
    monotonicSeconds: () => performance.now() / 1000,
  });

  const host = options.host ?? "127.0.0.1";
  try {
    await app.listen({ port: options.port ?? controllerPortDefault, host });
  } catch (err) {
    if (options.store === undefined) store.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : (options.port ?? 0);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  log.info("controller listening", { url: `http://${urlHost}:${port}` });
  link?.start();
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    host,
    store,
    events,
    link,
    close: () => {
      // The link stops at once, so a request waiting for satellites answers and lets app.close end.
      closing ??= Promise.all([app.close(), link?.stop()]).then(() => store.close());
      return closing;
    },
  };
}
