//! Replicated configurations for the bench (issue: "Replicated volumes on real disks and
//! sockets"): N `mirra node run` daemons on this machine, peers over loopback TCP, each node's
//! backing file in the bench's work directory, node 0 promoted and its NBD export (a Unix
//! socket) measured by fio like any other target.
//!
//! Names: `1r`, `2r`, `3r` (protocol C, node 0 holds a replica), `3r-diskless` (node 0 has no
//! disk: every read and write crosses the network to the two others), `2r-A` (protocol A).
//! All nodes share one machine, one disk and two cores here, so a replicated figure is the
//! cost of doing N times the IO plus the network path on the same hardware, not of a cluster.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";

import { adminCall } from "../daemon/admin_client.js";
import { freePort } from "../io/free_port.js";
import { allHealthy, type AdminRequest, type ResourceStatus } from "../daemon/admin_protocol.js";
import { describeResult, runCommand, startServer, type RunningServer } from "./child.js";
import { mirraMainPath, type BenchTarget, type TargetConfig } from "./targets.js";
import { nbdEngineArgs } from "./workloads.js";

export interface ClusterSpec {
  readonly name: string;
  /** Diskful nodes. */
  readonly replicas: number;
  /** Node 0 is an extra diskless node, the Primary. */
  readonly disklessPrimary: boolean;
  readonly protocol: "A" | "B" | "C";
  /** Extra resource-file options (DRBD names). */
  readonly options?: Readonly<Record<string, string | number | boolean>>;
}

export const clusterSpecs: readonly ClusterSpec[] = [
  { name: "1r", replicas: 1, disklessPrimary: false, protocol: "C" },
  { name: "2r", replicas: 2, disklessPrimary: false, protocol: "C" },
  { name: "3r", replicas: 3, disklessPrimary: false, protocol: "C" },
  { name: "3r-diskless", replicas: 2, disklessPrimary: true, protocol: "C" },
  { name: "2r-A", replicas: 2, disklessPrimary: false, protocol: "A" },
];

const startTimeoutMs = 30_000;
const healthyTimeoutMs = 60_000;
const resource = "bench";
const MiB = 1024 * 1024;

async function mirra(args: readonly string[]): Promise<void> {
  const r = await runCommand(process.execPath, [mirraMainPath(), ...args], {
    timeoutMs: 60_000,
  });
  if (r.code !== 0) throw new Error(`mirra ${args[0]} failed\n${describeResult(r)}`);
}

/** A running cluster: its daemons, admin sockets and node 0's export. */
export class BenchCluster {
  readonly daemons: RunningServer[] = [];
  readonly adminSockets: string[] = [];
  readonly nbdSockets: string[] = [];
  readonly disks: (string | null)[] = [];
  configPath = "";

  private constructor(
    readonly spec: ClusterSpec,
    readonly dir: string,
    readonly sizeBytes: number,
  ) {}

  /** Creates metadata, writes the resource file, starts every daemon, waits until healthy. */
  static async start(spec: ClusterSpec, dir: string, sizeBytes: number): Promise<BenchCluster> {
    const c = new BenchCluster(spec, dir, sizeBytes);
    try {
      await c.setUp();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get nodeCount(): number {
    return this.spec.replicas + (this.spec.disklessPrimary ? 1 : 0);
  }

  private async setUp(): Promise<void> {
    const { spec, dir } = this;
    const nodes = [];
    for (let node = 0; node < this.nodeCount; node++) {
      const tag = `${spec.name}-n${node}`;
      this.adminSockets.push(join(dir, `${tag}.admin.sock`));
      this.nbdSockets.push(join(dir, `${tag}.nbd.sock`));
      let disk: string | null = null;
      if (!(spec.disklessPrimary && node === 0)) {
        disk = join(dir, `${tag}.img`);
        await mirra([
          "create-md",
          ...["--backing", disk, "--node-id", String(node)],
          ...["--peers", String(Math.max(1, this.nodeCount - 1))],
          ...["--size", String(this.sizeBytes + MiB)],
        ]);
      }
      this.disks.push(disk);
      nodes.push({
        name: `n${node}`,
        "node-id": node,
        address: `127.0.0.1:${await freePort()}`,
        volumes: [{ volume: 0, disk: disk ?? "none", nbd: `unix:${this.nbdSockets[node]}` }],
      });
    }
    this.configPath = join(dir, `${spec.name}.json`);
    await writeFile(
      this.configPath,
      JSON.stringify({
        resource,
        "shared-secret": "bench",
        protocol: spec.protocol,
        options: { "ping-int": 1, "ping-timeout": 5, timeout: 5, ...spec.options },
        volumes: [{ volume: 0, size: this.sizeBytes }],
        nodes,
      }),
    );
    for (let node = 0; node < this.nodeCount; node++) {
      const args = [mirraMainPath(), "node", "run", "--config", this.configPath];
      args.push("--node-id", String(node), "--admin-socket", this.adminSockets[node]!);
      this.daemons.push(
        await startServer(process.execPath, args, {
          readyPattern: /^(ready)$/,
          timeoutMs: startTimeoutMs,
        }),
      );
    }
    await this.waitHealthy();
    const r = await this.call(0, { command: "primary", resource });
    if (!r.ok) throw new Error(`promoting node 0 of ${spec.name}: ${r.error ?? "refused"}`);
  }

  call(node: number, request: AdminRequest): ReturnType<typeof adminCall> {
    return adminCall(this.adminSockets[node]!, { resource, ...request });
  }

  async status(node: number): Promise<ResourceStatus> {
    const r = await this.call(node, { command: "status" });
    const s = r.status?.[0];
    if (!r.ok || s === undefined) throw new Error(`status of node ${node}: ${r.error ?? "none"}`);
    return s;
  }

  /** Polls until every node is Connected and UpToDate (or Diskless); returns the wait in ms. */
  async waitHealthy(timeoutMs = healthyTimeoutMs): Promise<number> {
    const start = performance.now();
    for (;;) {
      const all = await Promise.all(this.daemons.map((_, n) => this.status(n)));
      if (all.every(allHealthy)) return performance.now() - start;
      if (performance.now() - start > timeoutMs)
        throw new Error(`${this.spec.name}: not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get uri(): string {
    return `nbd+unix:///${resource}?socket=${this.nbdSockets[0]}`;
  }

  async stop(): Promise<void> {
    for (const d of this.daemons) await d.stop(3000);
    this.daemons.length = 0;
  }
}

/** A bench configuration that starts the cluster `spec` and measures node 0's export. */
export function clusterTarget(spec: ClusterSpec): TargetConfig {
  const nodes = spec.replicas + (spec.disklessPrimary ? 1 : 0);
  return {
    name: spec.name,
    description:
      `${nodes} \`mirra node run\` daemon(s) on this host, peers over loopback TCP, ` +
      `protocol ${spec.protocol}, ${spec.replicas} replica(s)` +
      (spec.disklessPrimary ? ", node 0 a diskless Primary" : ", node 0 Primary with a replica"),
    async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
      const c = await BenchCluster.start(spec, dir, sizeBytes);
      return {
        name: spec.name,
        engineArgs: nbdEngineArgs(c.uri),
        commandLine:
          `${c.nodeCount}× mirra node run --config ${spec.name}.json (protocol ${spec.protocol}` +
          `${spec.disklessPrimary ? ", node 0 diskless" : ""}), node 0 Primary`,
        backingFile: c.disks.find((d) => d !== null) ?? "",
        stop: () => c.stop(),
      };
    },
  };
}

/** The cluster configuration named `name`, if there is one. */
export function clusterSpecByName(name: string): ClusterSpec | undefined {
  return clusterSpecs.find((s) => s.name === name);
}
