//! The controller's side of the satellites (docs/satellite.md): for every node in the store it
//! builds the node's desired state (desired_state.ts), pushes it to the node's satellite when
//! it changed, and polls the satellite's report. From the reports it fills in what the REST
//! views observe: node `connection_status`, pool capacity, resource and volume states, device
//! paths (NBD URIs).
//!
//! A mutating REST call returns after every online satellite whose desired state it changed
//! has applied it (`afterRequest`), or after `applyTimeoutMs` with a warning ApiCallRc; the
//! push itself carries on, so the satellite still gets there.
//!
//! Generations: each push carries a number larger than every earlier one (the wall clock in
//! milliseconds, or one more than the last push if the clock stood still or went back), so a
//! satellite never lets a delayed push undo a newer one, also across controller restarts as
//! long as the clock does not go back. A satellite that holds a newer generation than this
//! controller's (its clock went back) answers 409 with its generation; the link then continues
//! above it.

import { apiCallRcJson, retCode, type ApiCallRc } from "./api_call_rc.js";
import type { ApiReply } from "./api_common.js";
import { desiredStateFor, satelliteAddress } from "./desired_state.js";
import type { JsonValue } from "./json.js";
import type { ObservedState } from "./observed_state.js";
import type { ControllerStore } from "./store/store.js";
import type { Logger } from "../io/log.js";
import type { PushRefusal, SatelliteReport } from "../satellite/protocol.js";

export interface SatelliteLinkOptions {
  /** How often every satellite is polled (and pushed to, if its state changed). @default 1000 */
  readonly pollIntervalMs?: number;
  /** How long a mutating call waits for the satellites. @default 30000 */
  readonly applyTimeoutMs?: number;
  /** How long a report request may take before the node counts as OFFLINE. @default 5000 */
  readonly reportTimeoutMs?: number;
  /** How long a push may take (creating preallocated files takes a while). @default 600000 */
  readonly pushTimeoutMs?: number;
}

export type ConnectionStatus = "ONLINE" | "OFFLINE";

/** What the link knows about one node's satellite. */
export interface NodeLinkState {
  status: ConnectionStatus;
  /** The last report; kept while OFFLINE, so views show the last known state. */
  report: SatelliteReport | null;
  /** The desired state the satellite last confirmed, as pushed (JSON). */
  acked: string | null;
  /** Why the node is OFFLINE. */
  error: string | null;
  /** The node's syncs run one at a time, in order. */
  chain: Promise<void>;
  busy: number;
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export class SatelliteLink {
  private readonly nodes = new Map<string, NodeLinkState>();
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Aborts every request in flight when the controller stops. */
  private readonly stopping = new AbortController();
  private readonly applyTimeoutMs: number;

  constructor(
    private readonly store: ControllerStore,
    private readonly log: Logger,
    private readonly options: SatelliteLinkOptions = {},
    private readonly fetchFn: Fetch = fetch,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.applyTimeoutMs = options.applyTimeoutMs ?? 30_000;
  }

  /** What the satellites reported, for metrics and events (the REST views are decorated). */
  readonly observed: ObservedState = {
    nodeConnectionStatus: (node) => this.state(node).status,
    poolCapacity: (node, pool) => {
      const p = this.state(node).report?.pools.find((x) => x.name === pool);
      return p === undefined || p.freeKib === null || p.totalKib === null
        ? undefined
        : { freeKib: p.freeKib, totalKib: p.totalKib };
    },
    resourceInUse: (resource, node) => {
      const r = this.resourceReport(resource, node);
      return r === undefined || !r.running ? undefined : r.role === "Primary";
    },
    // Satellites do not report DRBD's may_promote yet: not known, so not invented.
    mayPromote: () => undefined,
    volumeDiskState: (resource, node, volume) =>
      this.resourceReport(resource, node)?.volumes.find((v) => v.volume === volume)?.diskState,
  };

  start(): void {
    const tick = (): void => {
      if (this.stopping.signal.aborted) return;
      for (const name of this.nodeNames()) if (this.state(name).busy === 0) void this.sync(name);
    };
    tick();
    this.timer = setInterval(tick, this.options.pollIntervalMs ?? 1_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await Promise.all([...this.nodes.values()].map((n) => n.chain));
  }

  /** The next push generation: larger than every earlier one. */
  nextGeneration(): number {
    this.generation = Math.max(this.generation + 1, this.nowMs());
    return this.generation;
  }

  private nodeNames(): string[] {
    const names = this.store.read((tx) => tx.nodes().map((n) => n.name));
    const keep = new Set(names.map((n) => n.toLowerCase()));
    for (const key of this.nodes.keys()) if (!keep.has(key)) this.nodes.delete(key);
    return names;
  }

  state(name: string): NodeLinkState {
    const key = name.toLowerCase();
    let s = this.nodes.get(key);
    if (s === undefined) {
      s = {
        status: "OFFLINE",
        report: null,
        acked: null,
        error: "the controller has not reached its satellite yet",
        chain: Promise.resolve(),
        busy: 0,
      };
      this.nodes.set(key, s);
    }
    return s;
  }

  /** Nodes whose desired state differs from what their satellite confirmed. */
  pendingNodes(): string[] {
    return this.store.read((tx) =>
      tx
        .nodes()
        .filter((n) => JSON.stringify(desiredStateFor(tx, n.name)) !== this.state(n.name).acked)
        .map((n) => n.name),
    );
  }

  /** Pushes or polls node `name`, after any sync of it that is running. */
  sync(name: string): Promise<void> {
    const s = this.state(name);
    s.busy++;
    s.chain = s.chain.then(() => this.syncNow(name, s)).finally(() => s.busy--);
    return s.chain;
  }

  private async syncNow(name: string, s: NodeLinkState): Promise<void> {
    const found = this.store.read((tx) => {
      const node = tx.node(name);
      if (node === undefined) return undefined;
      return {
        address: satelliteAddress(node),
        desired: JSON.stringify(desiredStateFor(tx, name)),
      };
    });
    if (found === undefined) return;
    const { address, desired } = found;
    if (address === undefined) {
      this.offline(name, s, "the node has no net interface with a satellite port");
      return;
    }
    const host = address.host.includes(":") ? `[${address.host}]` : address.host;
    const base = `http://${host}:${address.port}`;
    try {
      if (desired !== s.acked || s.report === null || s.report.generation === 0) {
        await this.push(name, s, base, desired);
      } else {
        const r = await this.request(`${base}/v1/report`, { method: "GET" }, this.reportTimeout());
        const report = (await r.json()) as SatelliteReport;
        this.online(name, s, report);
        // A satellite that restarted holds nothing: give it its state again.
        if (report.generation === 0) await this.push(name, s, base, desired);
      }
    } catch (err) {
      this.offline(name, s, (err as Error).message);
    }
  }

  private reportTimeout(): number {
    return this.options.reportTimeoutMs ?? 5_000;
  }

  private async push(name: string, s: NodeLinkState, base: string, desired: string) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const generation = this.nextGeneration();
      const body = `{"node":${JSON.stringify(name)},"generation":${generation},"state":${desired}}`;
      const r = await this.request(
        `${base}/v1/desired`,
        { method: "PUT", body, headers: { "content-type": "application/json" } },
        this.options.pushTimeoutMs ?? 600_000,
      );
      const answer = (await r.json()) as SatelliteReport | PushRefusal;
      if (r.status === 200 && !("error" in answer)) {
        s.acked = desired;
        this.online(name, s, answer);
        return;
      }
      if (!("error" in answer)) throw new Error(`the satellite answered HTTP ${r.status}`);
      // Refused as older than what the satellite holds: continue above its generation.
      if (r.status === 409 && answer.generation >= generation) {
        this.generation = Math.max(this.generation, answer.generation);
        continue;
      }
      throw new Error(`the satellite refused the desired state: ${answer.error}`);
    }
    throw new Error("the satellite keeps refusing the desired state as old");
  }

  private async request(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.stopping.signal]);
      return await this.fetchFn(url, { ...init, signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new Error(`cannot reach the satellite at ${url}: ${cause ?? (err as Error).message}`);
    }
  }

  private online(name: string, s: NodeLinkState, report: SatelliteReport): void {
    if (s.status !== "ONLINE") this.log.info("satellite online", { node: name });
    s.status = "ONLINE";
    s.error = null;
    s.report = report;
  }

  private offline(name: string, s: NodeLinkState, error: string): void {
    if (s.status !== "OFFLINE" || s.error !== error)
      this.log.warn("satellite offline", { node: name, error });
    s.status = "OFFLINE";
    s.error = error;
    // The satellite may have lost its state (restart): push again once it answers.
    s.acked = null;
  }

  /**
   * Pushes every changed desired state and waits (up to `applyTimeoutMs`) for the satellites
   * to apply it; returns a warning for each node that did not.
   */
  async applyChanges(): Promise<ApiCallRc[]> {
    const pending = this.pendingNodes();
    const warnings: ApiCallRc[] = [];
    await Promise.all(
      pending.map(async (name) => {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), this.applyTimeoutMs);
        });
        const result = await Promise.race([this.sync(name).then(() => "done" as const), timedOut]);
        clearTimeout(timer);
        const s = this.state(name);
        if (result === "timeout")
          warnings.push(
            notApplied(name, `did not apply it within ${this.applyTimeoutMs / 1000} s`),
          );
        else if (s.status === "OFFLINE")
          warnings.push(notApplied(name, `is not reachable: ${s.error ?? "unknown"}`));
      }),
    );
    return warnings.sort((a, b) => a.message.localeCompare(b.message));
  }

  /**
   * The REST server's hook: after a successful mutation, waits for the satellites and appends
   * its warnings; on a GET of nodes, pools, resources or volumes, fills in observed state.
   */
  async afterRequest(
    method: string,
    url: string,
    params: Record<string, string>,
    reply: ApiReply,
  ): Promise<ApiReply> {
    if (method !== "GET") {
      if (reply.status >= 400) return reply;
      const warnings = await this.applyChanges();
      if (warnings.length === 0 || !Array.isArray(reply.body)) return reply;
      const at = new Date(this.nowMs()).toISOString();
      return { ...reply, body: [...reply.body, ...warnings.map((w) => apiCallRcJson(w, at))] };
    }
    if (reply.status !== 200) return reply;
    const each = (fn: (o: JsonObject) => void): void => {
      const items = Array.isArray(reply.body) ? reply.body : [reply.body];
      for (const o of items) if (isObject(o)) fn(o);
    };
    if (url === "/v1/nodes" || url === "/v1/nodes/:node") each((o) => this.decorateNode(o));
    else if (url === "/v1/view/storage-pools" || url.startsWith("/v1/nodes/:node/storage-pools"))
      each((o) => this.decoratePool(o));
    else if (
      url === "/v1/view/resources" ||
      /^\/v1\/resource-definitions\/:rd\/resources(\/:node)?$/.test(url)
    )
      each((o) => this.decorateResource(o));
    else if (url.startsWith("/v1/resource-definitions/:rd/resources/:node/volumes"))
      each((o) => this.decorateVolume(o, params["rd"] ?? "", params["node"] ?? ""));
    return reply;
  }

  private decorateNode(o: JsonObject): void {
    if (typeof o["name"] !== "string") return;
    o["connection_status"] = this.state(o["name"]).status;
  }

  private decoratePool(o: JsonObject): void {
    const node = o["node_name"];
    const name = o["storage_pool_name"];
    if (typeof node !== "string" || typeof name !== "string") return;
    if (o["provider_kind"] === "DISKLESS") return;
    const pool = this.state(node).report?.pools.find((p) => p.name === name);
    if (pool === undefined || pool.freeKib === null || pool.totalKib === null) return;
    o["free_capacity"] = pool.freeKib;
    o["total_capacity"] = pool.totalKib;
  }

  private resourceReport(rd: string, node: string) {
    return this.state(node).report?.resources.find(
      (r) => r.name.toLowerCase() === rd.toLowerCase(),
    );
  }

  private decorateResource(o: JsonObject): void {
    const rd = o["name"];
    const node = o["node_name"];
    if (typeof rd !== "string" || typeof node !== "string") return;
    const r = this.resourceReport(rd, node);
    if (r === undefined) return;
    o["state"] = { in_use: r.role === "Primary" };
    const layer = o["layer_object"];
    const drbd = isObject(layer) ? layer["drbd"] : undefined;
    if (isObject(drbd)) {
      const connections: JsonObject = {};
      for (const p of r.volumes[0]?.peers ?? [])
        connections[p.node] = { connected: p.connection === "Connected", message: p.connection };
      (drbd as JsonObject)["connections"] = connections;
    }
    if (Array.isArray(o["volumes"]))
      for (const v of o["volumes"]) if (isObject(v)) this.decorateVolume(v, rd, node);
  }

  private decorateVolume(o: JsonObject, rd: string, node: string): void {
    const r = this.resourceReport(rd, node);
    const v = r?.volumes.find((x) => x.volume === o["volume_number"]);
    if (r === undefined) return;
    if (v === undefined) {
      o["state"] = { disk_state: r.running ? "Unknown" : "Down" };
      o["reports"] = r.problems.map((message) => problemJson(message, this.nowMs()));
      return;
    }
    const replication: JsonObject = {};
    for (const p of v.peers)
      replication[p.node] = {
        replication_state: p.replication,
        ...(p.donePercent !== undefined ? { done_percentage: p.donePercent } : {}),
      };
    o["state"] = { disk_state: v.diskState, replication_states: replication };
    // The size the daemon serves: a `vd set-size` shows here once the online resize ran.
    o["usable_size_kib"] = v.sizeKib;
    if (v.diskState !== "Diskless") o["allocated_size_kib"] = v.sizeKib;
    if (v.nbd !== undefined) o["device_path"] = v.nbd;
    if (r.problems.length > 0)
      o["reports"] = r.problems.map((message) => problemJson(message, this.nowMs()));
  }
}

/** Reply objects are built fresh for each request, so the views fill them in place. */
type JsonObject = { [key: string]: JsonValue | undefined };

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function notApplied(node: string, what: string): ApiCallRc {
  return {
    retCode: retCode("warn", "WARN_NOT_CONNECTED", "node", "none"),
    message: `The satellite of node '${node}' ${what}.`,
    details: "The satellite applies the change when the controller reaches it again.",
    objRefs: { Node: node },
  };
}

function problemJson(message: string, nowMs: number): JsonValue {
  return apiCallRcJson(
    { retCode: retCode("error", "FAIL_UNKNOWN_ERROR", "volume", "none"), message },
    new Date(nowMs).toISOString(),
  );
}
