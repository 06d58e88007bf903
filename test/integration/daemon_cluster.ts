//! A cluster of real `mirra node run` processes for fault tests: three (or more) daemons on one
//! machine, each with its backing file, admin socket and NBD export (a Unix socket, so it is
//! reachable from any network namespace), driven over the admin socket as `mirra adm` does.
//!
//! Two network layouts:
//! - loopback: every daemon listens for peers on 127.0.0.1 with a port the OS picked;
//! - netns: every daemon runs in its own network namespace (`ip netns exec`), joined to a
//!   bridge in a hub namespace by a veth pair, so `partition(n)` (the hub side of n's veth
//!   goes down) cuts node n off from every peer while its admin socket and export stay
//!   reachable, and `heal(n)` brings it back.
//!
//! Lifetime: `destroy()` (call it from `after()`) stops every daemon (SIGTERM, then SIGKILL),
//! deletes the namespaces and the temporary directory. Every wait is a poll with a deadline.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { runCommand, startServer, type RunningServer } from "../../src/bench/child.js";
import { adminCall } from "../../src/daemon/admin_client.js";
import { freePort } from "../../src/io/free_port.js";
import {
  allHealthy,
  formatStatus,
  type AdminRequest,
  type AdminResponse,
  type ResourceStatus,
} from "../../src/daemon/admin_protocol.js";
import { cleanupAll, makeTempDir, mirraMain } from "./nbd_helpers.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;

export { freePort };

/** Polls `probe` every 50 ms until it returns a value other than undefined, or fails. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a command that must succeed (exit 0), under a deadline. */
export async function must(
  command: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<string> {
  const r = await runCommand(command, args, { timeoutMs });
  if (r.code !== 0)
    throw new Error(
      `$ ${r.command}\n(${r.timedOut ? "timed out" : `exit ${r.code} ${r.signal ?? ""}`})\n${r.stdout}\n${r.stderr}`,
    );
  return r.stdout;
}

/** Whether this machine can build network namespaces with veth pairs and a bridge. */
export async function netnsWorks(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const name = `mprobe${randomBytes(3).toString("hex")}`;
  const r = await runCommand("ip", ["netns", "add", name], { timeoutMs: 10_000 }).catch(
    (err: Error) => ({ code: -1, stderr: err.message }),
  );
  if (r.code !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  const v = await runCommand(
    "ip",
    ["-n", name, "link", "add", "pa", "type", "veth", "peer", "name", "pb"],
    { timeoutMs: 10_000 },
  );
  await runCommand("ip", ["netns", "del", name], { timeoutMs: 10_000 });
  if (v.code !== 0) return `veth pairs are not available: ${v.stderr.trim()}`;
  return undefined;
}

export interface ClusterOptions {
  /** Number of nodes. @default 3 */
  readonly nodes?: number;
  /** Nodes whose volume is `"disk": "none"`. */
  readonly diskless?: readonly number[];
  readonly volumeBytes: number;
  /** Resource-file options (merged over fast test timeouts). */
  readonly options?: Record<string, string | number>;
  /** Run each daemon in its own network namespace (for partitions). */
  readonly netns?: boolean;
  /** Activity-log extents of the metadata. @default 67 */
  readonly alExtents?: number;
  /** Per node, a port on 127.0.0.1 to serve Prometheus metrics on (`--metrics`); kept across restarts. */
  readonly metricsPorts?: readonly number[];
}

type AdminCommand = Exclude<AdminRequest["command"], "status">;

export class DaemonCluster {
  readonly resource = "r0";
  readonly nodes: readonly number[];
  readonly disks: (string | null)[] = [];
  readonly sockets: string[] = [];
  readonly nbdSockets: string[] = [];
  private readonly daemons: (RunningServer | null)[] = [];
  /** stderr of daemons that have been killed, per node, oldest first. */
  private readonly pastLogs: string[][] = [];
  private config = "";
  private namespaces: string[] = [];
  private hub = "";
  private tag = "";

  private constructor(
    readonly dir: string,
    readonly opts: ClusterOptions,
  ) {
    this.nodes = Array.from({ length: opts.nodes ?? 3 }, (_, i) => i);
  }

  static async create(opts: ClusterOptions): Promise<DaemonCluster> {
    const c = new DaemonCluster(await makeTempDir("mirra-faults-"), opts);
    try {
      await c.setUp();
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  get volumeBytes(): number {
    return this.opts.volumeBytes;
  }

  private async setUp(): Promise<void> {
    const { opts, dir } = this;
    const diskless = new Set(opts.diskless ?? []);
    if (opts.netns === true) await this.buildNetwork();
    const nodeEntries = [];
    for (const node of this.nodes) {
      this.sockets.push(join(dir, `admin${node}.sock`));
      this.nbdSockets.push(join(dir, `nbd${node}.sock`));
      this.pastLogs.push([]);
      this.daemons.push(null);
      let disk: string | null = null;
      if (!diskless.has(node)) {
        disk = join(dir, `disk${node}.img`);
        await must(process.execPath, [
          mirraMain,
          "create-md",
          "--backing",
          disk,
          "--node-id",
          String(node),
          "--peers",
          String(this.nodes.length - 1),
          "--size",
          String(opts.volumeBytes + MiB),
          "--al-extents",
          String(opts.alExtents ?? 67),
        ]);
      }
      this.disks.push(disk);
      const address =
        opts.netns === true ? `10.99.0.${node + 1}:7790` : `127.0.0.1:${await freePort()}`;
      nodeEntries.push({
        name: `n${node}`,
        "node-id": node,
        address,
        volumes: [{ volume: 0, disk: disk ?? "none", nbd: `unix:${this.nbdSockets[node]}` }],
      });
    }
    this.config = join(dir, "r0.json");
    writeFileSync(
      this.config,
      JSON.stringify({
        resource: this.resource,
        "shared-secret": "fault-tests",
        protocol: "C",
        options: {
          "ping-int": 1,
          "ping-timeout": 5,
          timeout: 5,
          "connect-int": 1,
          ...opts.options,
        },
        volumes: [{ volume: 0, size: opts.volumeBytes }],
        nodes: nodeEntries,
      }),
    );
    for (const node of this.nodes) await this.start(node);
  }

  /** A hub namespace with a bridge, and one namespace per node joined to it by a veth pair. */
  private async buildNetwork(): Promise<void> {
    this.tag = randomBytes(3).toString("hex");
    this.hub = `mh${this.tag}`;
    await must("ip", ["netns", "add", this.hub]);
    this.namespaces.push(this.hub);
    await must("ip", ["-n", this.hub, "link", "add", "br0", "type", "bridge"]);
    await must("ip", ["-n", this.hub, "link", "set", "br0", "up"]);
    for (const node of this.nodes) {
      const ns = `mn${this.tag}${node}`;
      await must("ip", ["netns", "add", ns]);
      this.namespaces.push(ns);
      const hostSide = this.hubLink(node);
      await must("ip", [
        ...["-n", this.hub, "link", "add", hostSide, "type", "veth"],
        ...["peer", "name", "eth0", "netns", ns],
      ]);
      await must("ip", ["-n", this.hub, "link", "set", hostSide, "master", "br0", "up"]);
      await must("ip", ["-n", ns, "addr", "add", `10.99.0.${node + 1}/24`, "dev", "eth0"]);
      await must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
  }

  private hubLink(node: number): string {
    return `v${node}`;
  }

  /** Cuts node `node` off from every peer (its veth's hub side goes down). */
  async partition(node: number): Promise<void> {
    assert.ok(this.hub !== "", "partition needs a netns cluster");
    await must("ip", ["-n", this.hub, "link", "set", this.hubLink(node), "down"]);
  }

  async heal(node: number): Promise<void> {
    assert.ok(this.hub !== "", "heal needs a netns cluster");
    await must("ip", ["-n", this.hub, "link", "set", this.hubLink(node), "up"]);
  }

  /** Starts node `node`'s daemon and waits for its `ready` line. */
  async start(node: number): Promise<void> {
    assert.equal(this.daemons[node], null, `node ${node} is already running`);
    const args = [
      mirraMain,
      "node",
      "run",
      "--config",
      this.config,
      "--node-id",
      String(node),
      "--admin-socket",
      this.sockets[node]!,
    ];
    const metricsPort = this.opts.metricsPorts?.[node];
    if (metricsPort !== undefined) args.push("--metrics", `127.0.0.1:${metricsPort}`);
    const env = { ...process.env, MIRRA_LOG_FORMAT: "json" };
    this.daemons[node] =
      this.opts.netns === true
        ? await startServer(
            "ip",
            ["netns", "exec", `mn${this.tag}${node}`, process.execPath, ...args],
            {
              readyPattern: /^(ready)$/,
              timeoutMs: 20_000,
              env,
            },
          )
        : await startServer(process.execPath, args, {
            readyPattern: /^(ready)$/,
            timeoutMs: 20_000,
            env,
          });
  }

  /** SIGKILLs node `node`'s daemon and waits until it is gone. */
  async kill(node: number): Promise<void> {
    const d = this.daemons[node];
    assert.ok(d, `node ${node} is not running`);
    process.kill(d.pid, "SIGKILL");
    await d.stop();
    this.pastLogs[node]!.push(d.stderr());
    this.daemons[node] = null;
  }

  /** The current daemon's log of node `node` (JSON lines). */
  log(node: number): string {
    return this.daemons[node]?.stderr() ?? "";
  }

  /** Parsed log lines of the current daemon of `node` with message `msg`. */
  logEntries(node: number, msg: string): Record<string, unknown>[] {
    return this.log(node)
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e["msg"] === msg);
  }

  nbdUri(node: number): string {
    return `nbd+unix:///${this.resource}?socket=${this.nbdSockets[node]}`;
  }

  nbdAddress(node: number): { path: string } {
    return { path: this.nbdSockets[node]! };
  }

  async call(node: number, request: Omit<AdminRequest, "resource">): Promise<AdminResponse> {
    return adminCall(this.sockets[node]!, { ...request, resource: this.resource } as AdminRequest);
  }

  async status(node: number): Promise<ResourceStatus> {
    const r = await this.call(node, { command: "status" });
    assert.ok(r.ok && r.status !== undefined, `status on node ${node}: ${r.error}`);
    return r.status[0]!;
  }

  /** `mirra adm COMMAND` through the CLI (as an operator types it); throws on failure. */
  async adm(node: number, command: AdminCommand, ...flags: string[]): Promise<void> {
    await must(process.execPath, [
      mirraMain,
      "adm",
      command,
      this.resource,
      "--socket",
      this.sockets[node]!,
      ...flags,
    ]);
  }

  /** `mirra adm status --json` through the CLI. */
  async statusJson(node: number): Promise<ResourceStatus> {
    const out = await must(process.execPath, [
      mirraMain,
      "adm",
      "status",
      this.resource,
      "--json",
      "--socket",
      this.sockets[node]!,
    ]);
    return (JSON.parse(out) as ResourceStatus[])[0]!;
  }

  /**
   * Promotes `node` once the engine accepts it: a promotion right after another node's
   * demotion or death may be refused until the peers have noticed, so retry on the refusals
   * that clear by themselves, up to the deadline.
   */
  async promote(node: number, force = false, timeoutMs = 15_000): Promise<void> {
    let lastError = "";
    await waitFor(
      `node ${node} to become Primary`,
      async () => {
        const r = await this.call(node, { command: "primary", ...(force ? { force } : {}) });
        if (r.ok) return true;
        lastError = r.error ?? "";
        return undefined;
      },
      timeoutMs,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last refusal: ${lastError})\n${this.describe()}`);
    });
  }

  /** Waits until every running node is Connected to every running peer and all UpToDate. */
  async waitHealthy(timeoutMs = 30_000, nodes = this.running()): Promise<ResourceStatus[]> {
    let last: ResourceStatus[] = [];
    try {
      await waitFor(
        "every node Connected and UpToDate",
        async () => {
          last = await Promise.all(nodes.map((n) => this.status(n)));
          return last.every(allHealthy) ? true : undefined;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n${last.map((s) => formatStatus(s)).join("\n")}\n${this.describe()}`,
      );
    }
    return last;
  }

  /** A node's metadata as `mirra dump-md --json` prints it (hot extents, bits per peer). */
  async dumpMetadata(node: number): Promise<Record<string, unknown> | null> {
    const disk = this.disks[node];
    if (disk === null || disk === undefined) return null;
    return JSON.parse(
      await must(process.execPath, [mirraMain, "dump-md", "--backing", disk, "--json"]),
    ) as Record<string, unknown>;
  }

  running(): number[] {
    return this.nodes.filter((n) => this.daemons[n] !== null);
  }

  /** Each daemon's log tail, for assertion messages. */
  describe(lineCount = 40): string {
    return this.nodes
      .map((n) => {
        // Status polls are logged too; leave them out so the tail shows what happened.
        const lines = this.log(n)
          .split("\n")
          .filter((l) => !l.includes('"msg":"admin request","command":"status"'));
        return `--- node ${n} stderr (tail) ---\n${lines.slice(-lineCount).join("\n")}`;
      })
      .join("\n");
  }

  async destroy(): Promise<void> {
    for (const [node, d] of this.daemons.entries()) {
      if (d === null) continue;
      await d.stop(3000);
      this.daemons[node] = null;
    }
    for (const ns of this.namespaces.reverse())
      await runCommand("ip", ["netns", "del", ns], { timeoutMs: 10_000 });
    this.namespaces = [];
    await cleanupAll();
  }
}
