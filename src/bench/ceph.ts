//! A throwaway single-host Ceph cluster for the bench's `ceph-rbd` peer, built from Debian's
//! packages: one monitor, one manager, three BlueStore OSDs each on a sparse file, an RBD pool
//! of size 3 (min_size 2) and one image of the volume's size, measured with fio's rbd engine.
//!
//! Model: everything lives under one directory (configuration, monitor store, OSD files,
//! sockets, logs) and every daemon runs in the foreground as our child, so `stop` kills them
//! by pid and removes the directory; nothing outside it is read or written. Every Ceph tool is
//! given the configuration explicitly (`-c`, or CEPH_CONF for fio's librbd), so /etc/ceph is
//! never consulted. Authentication is off: the cluster listens on loopback only, lives for one
//! bench, and fio then needs no keyring (cephx would add its handshake, not data-path cost,
//! since msgr2's default "crc" mode neither signs nor encrypts).
//!
//! Every copy sits on this one host (CRUSH leaf type 0 = osd), so a write still goes to three
//! OSDs and completes when all three have committed it to their BlueStore (O_DIRECT on the file
//! and a flush of its WAL: durable, unlike the page-cache servers the bench compares it with);
//! and all three share one disk and the machine's cores with fio, unlike any real deployment.

import { randomUUID } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { freePort } from "../io/free_port.js";
import { describeResult, runCommand, startServer, type RunningServer } from "./child.js";
import { canConnectUnix, TargetUnavailableError } from "./targets.js";

export const cephOsdCount = 3;
export const cephPool = "rbd";
export const cephImage = "bench";
const monId = "a";
const mgrId = "x";
/** Placement groups of the RBD pool: a power of two, few enough for 3 OSDs and 2 cores. */
const pgCount = 32;
const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

const daemonStartTimeoutMs = 60_000;
const healthyTimeoutMs = 180_000;
/** Every `ceph` call: a dead monitor must not hang it for Ceph's default 5 minutes. */
const cliTimeoutMs = 60_000;
const connectTimeoutSeconds = 20;
const pollIntervalMs = 1000;
/** OSDs flush and tell the monitor on SIGTERM; this much before SIGKILL. */
const stopGraceMs = 15_000;

export interface CephConfParams {
  readonly fsid: string;
  readonly dir: string;
  /** The monitor's msgr2 and legacy (v1) ports on 127.0.0.1. */
  readonly monV2Port: number;
  readonly monV1Port: number;
  /** Size of each OSD's sparse BlueStore file. */
  readonly osdBlockBytes: number;
}

/** The monitor's address vector, as monmaptool and `mon host` spell it. */
export function monAddrs(p: Pick<CephConfParams, "monV2Port" | "monV1Port">): string {
  return `[v2:127.0.0.1:${p.monV2Port},v1:127.0.0.1:${p.monV1Port}]`;
}

/** Each OSD's BlueStore file: enough for a full copy of the volume plus RocksDB and slack. */
export function osdBlockBytes(sizeBytes: number): number {
  return Math.ceil((2 * sizeBytes + 4 * GiB) / MiB) * MiB;
}

/** The cluster's whole configuration: every path under `dir`, nothing from /etc/ceph. */
export function cephConf(p: CephConfParams): string {
  const d = p.dir;
  const lines = [
    "[global]",
    `fsid = ${p.fsid}`,
    `mon host = ${monAddrs(p)}`,
    `mon initial members = ${monId}`,
    "public network = 127.0.0.0/8",
    "auth cluster required = none",
    "auth service required = none",
    "auth client required = none",
    // Every client here is Pacific: no legacy global_id reclaim to allow (and warn about).
    "auth allow insecure global id reclaim = false",
    // Not read with auth off; set so that no tool looks for a keyring in /etc/ceph.
    `keyring = ${d}/keyring`,
    "osd pool default size = 3",
    "osd pool default min size = 2",
    // Leaf type 0 (osd): three OSDs of one host satisfy size 3.
    "osd crush chooseleaf type = 0",
    // The pool keeps the PG count it was created with, no autoscaler rebalancing mid-run.
    "osd pool default pg autoscale mode = off",
    "mon allow pool delete = true",
    // The bench's host disk, not the cluster, decides free space; only warn when nearly full.
    "mon data avail warn = 5",
    "mon data avail crit = 1",
    `run dir = ${d}/run`,
    `admin socket = ${d}/run/$cluster-$name.asok`,
    `pid file = ${d}/run/$cluster-$name.pid`,
    `log file = ${d}/log/$cluster-$name.log`,
    `mon data = ${d}/mon/$cluster-$id`,
    `mgr data = ${d}/mgr/$cluster-$id`,
    `osd data = ${d}/osd/$cluster-$id`,
    "osd objectstore = bluestore",
    // BlueStore creates each OSD's device as a sparse file of this size on --mkfs.
    `bluestore block path = ${d}/osd/$cluster-$id.block`,
    "bluestore block create = true",
    `bluestore block size = ${p.osdBlockBytes}`,
    // 1 GiB per OSD (Ceph's default is 4): three OSDs and a monitor on a small machine.
    `osd memory target = ${GiB}`,
    // BENCH.md: bypass caches the client controls. librbd's writeback cache is one.
    "rbd cache = false",
    "",
  ];
  return lines.join("\n");
}

/** What `ceph status --format json` says, the parts the bench reads. */
export interface CephStatus {
  readonly health?: {
    readonly status?: string;
    readonly checks?: Record<string, { readonly summary?: { readonly message?: string } }>;
  };
  readonly osdmap?: { readonly num_osds?: number; readonly num_up_osds?: number };
  readonly pgmap?: {
    readonly num_pgs?: number;
    readonly pgs_by_state?: readonly { readonly state_name: string; readonly count: number }[];
  };
}

/** True when `pgs` placement groups or more exist and every one is active+clean. */
export function allPgsClean(s: CephStatus, pgs: number): boolean {
  const total = s.pgmap?.num_pgs ?? 0;
  const states = s.pgmap?.pgs_by_state ?? [];
  const clean = states.find((x) => x.state_name === "active+clean")?.count ?? 0;
  return total >= pgs && clean === total;
}

/** One line for a reader, like the health and pgs lines of `ceph -s`. */
export function describeCephStatus(s: CephStatus): string {
  const health = s.health?.status ?? "health unknown";
  const checks = Object.values(s.health?.checks ?? {})
    .map((c) => c.summary?.message)
    .filter((m): m is string => m !== undefined);
  const osds = `osd: ${s.osdmap?.num_up_osds ?? 0} of ${s.osdmap?.num_osds ?? 0} up`;
  const states = (s.pgmap?.pgs_by_state ?? []).map((x) => `${x.count} ${x.state_name}`);
  const pgs = `pgs: ${s.pgmap?.num_pgs ?? 0}${states.length > 0 ? ` (${states.join(", ")})` : ""}`;
  return [health + (checks.length > 0 ? ` (${checks.join("; ")})` : ""), osds, pgs].join("; ");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A running single-host cluster and the RBD image fio measures. */
export class CephCluster {
  readonly conf: string;
  /** Commands that built the cluster, in order, for the report. */
  readonly commands: string[] = [];
  /** Milliseconds from nothing to all PGs active+clean. */
  setupMs = 0;
  /** Health once the PGs were clean (HEALTH_OK, or a warning that did not stop the pool). */
  health = "";
  private readonly osds: RunningServer[] = [];
  private readonly others: RunningServer[] = [];

  private constructor(readonly dir: string) {
    this.conf = join(dir, "ceph.conf");
  }

  /**
   * Builds the cluster in `dir` (created; removed again by `stop`) with an image of
   * `sizeBytes`, and resolves once every PG is active+clean. Throws TargetUnavailableError
   * with the cluster's last status when it does not get there in time; on any failure the
   * daemons already started are stopped and `dir` removed.
   */
  static async start(dir: string, sizeBytes: number): Promise<CephCluster> {
    const c = new CephCluster(dir);
    const begin = performance.now();
    try {
      await c.setUp(sizeBytes);
    } catch (err) {
      await c.stop();
      throw err;
    }
    c.setupMs = performance.now() - begin;
    return c;
  }

  /** fio's engine arguments; fio also needs `env` (librbd reads CEPH_CONF). */
  get engineArgs(): string[] {
    return [
      "--ioengine=rbd",
      "--clustername=ceph",
      "--clientname=admin",
      `--pool=${cephPool}`,
      `--rbdname=${cephImage}`,
    ];
  }

  get env(): Readonly<Record<string, string>> {
    return { CEPH_CONF: this.conf };
  }

  private async setUp(sizeBytes: number): Promise<void> {
    const { dir } = this;
    for (const sub of ["run", "log", `mon/ceph-${monId}`, `mgr/ceph-${mgrId}`, "osd"])
      await mkdir(join(dir, sub), { recursive: true });
    const params: CephConfParams = {
      fsid: randomUUID(),
      dir,
      monV2Port: await freePort(),
      monV1Port: await freePort(),
      osdBlockBytes: osdBlockBytes(sizeBytes),
    };
    await writeFile(this.conf, cephConf(params));
    this.commands.push(`# ceph.conf: ${cephConfSummary}`);

    const monmap = join(dir, "monmap");
    await this.tool("monmaptool", [
      ...["--create", "--fsid", params.fsid, "--addv", monId, monAddrs(params), monmap],
    ]);
    await this.tool("ceph-mon", ["-c", this.conf, "--mkfs", "-i", monId, "--monmap", monmap]);
    await this.daemon(this.others, "ceph-mon", monId);
    await this.daemon(this.others, "ceph-mgr", mgrId);

    // `ceph osd new` allocates the ids; the three BlueStore mkfs then run side by side.
    const osds: { id: string; uuid: string }[] = [];
    for (let i = 0; i < cephOsdCount; i++) {
      const uuid = randomUUID();
      const id = (await this.ceph(["osd", "new", uuid])).trim();
      await mkdir(join(dir, "osd", `ceph-${id}`), { recursive: true });
      osds.push({ id, uuid });
    }
    await Promise.all(
      osds.map(({ id, uuid }) =>
        this.tool("ceph-osd", ["-c", this.conf, "-i", id, "--mkfs", "--osd-uuid", uuid]),
      ),
    );
    for (const { id } of osds) await this.daemon(this.osds, "ceph-osd", id);
    await this.waitFor("3 OSDs up", (s) => (s.osdmap?.num_up_osds ?? 0) >= cephOsdCount);

    await this.ceph(["osd", "pool", "create", cephPool, String(pgCount), String(pgCount)]);
    await this.ceph(["osd", "pool", "set", cephPool, "size", "3"]);
    await this.ceph(["osd", "pool", "set", cephPool, "min_size", "2"]);
    await this.tool("rbd", ["-c", this.conf, "pool", "init", cephPool]);
    const sizeMiB = Math.ceil(sizeBytes / MiB);
    await this.tool("rbd", ["-c", this.conf, "create", "--size", `${sizeMiB}M`, imageSpec()]);
    const s = await this.waitFor("every PG active+clean", (x) => allPgsClean(x, pgCount));
    this.health = describeCephStatus(s);
  }

  /** Runs a Ceph tool to completion; throws with its output when it fails. */
  private async tool(command: string, args: readonly string[]): Promise<string> {
    const r = await runCommand(command, args, { timeoutMs: cliTimeoutMs, cwd: this.dir });
    this.commands.push(r.command);
    if (r.code !== 0 || r.timedOut) throw new Error(`${command} failed\n${describeResult(r)}`);
    return r.stdout;
  }

  private ceph(args: readonly string[]): Promise<string> {
    const common = ["-c", this.conf, "--connect-timeout", String(connectTimeoutSeconds)];
    return this.tool("ceph", [...common, ...args]);
  }

  /** The cluster's status, or null while the monitor does not answer. */
  async status(): Promise<CephStatus | null> {
    const args = ["-c", this.conf, "--connect-timeout", String(connectTimeoutSeconds)];
    args.push("status", "--format", "json");
    const r = await runCommand("ceph", args, { timeoutMs: cliTimeoutMs });
    if (r.code !== 0 || r.timedOut) return null;
    try {
      return JSON.parse(r.stdout) as CephStatus;
    } catch {
      return null;
    }
  }

  /**
   * Polls the status until `done` holds. A cluster that does not get there in time cannot run
   * here (a full disk, a starved machine): TargetUnavailableError, with its last status.
   */
  private async waitFor(what: string, done: (s: CephStatus) => boolean): Promise<CephStatus> {
    const begin = performance.now();
    let last: CephStatus | null = null;
    for (;;) {
      last = (await this.status()) ?? last;
      if (last !== null && done(last)) return last;
      if (performance.now() - begin > healthyTimeoutMs) {
        const seen = last === null ? "the monitor never answered" : describeCephStatus(last);
        throw new TargetUnavailableError(
          `single-host Ceph cluster not ready (${what}) after ${healthyTimeoutMs / 1000} s; ` +
            `last \`ceph -s\`: ${seen}`,
        );
      }
      for (const d of [...this.others, ...this.osds]) {
        if (!d.isRunning())
          throw new Error(`${d.command} exited while waiting for ${what}\n${d.stderr()}`);
      }
      await delay(pollIntervalMs);
    }
  }

  /** Starts a daemon in the foreground; ready once its admin socket accepts connections. */
  private async daemon(into: RunningServer[], command: string, id: string): Promise<void> {
    const name = command.replace(/^ceph-/, "");
    const asok = join(this.dir, "run", `ceph-${name}.${id}.asok`);
    // setpriv (util-linux): the daemon gets SIGKILL if the bench dies without stopping it,
    // as nbdkit's --exit-with-parent; `-f` keeps it in the foreground, so the pid is ours.
    const args = ["--pdeathsig", "KILL", command, "-f", "-c", this.conf, "-i", id];
    const server = await startServer("setpriv", args, {
      readyProbe: () => canConnectUnix(asok),
      timeoutMs: daemonStartTimeoutMs,
    });
    into.push(server);
    this.commands.push(`${server.command} &`);
  }

  /** Stops the OSDs, then the manager and the monitor, and removes the directory. */
  async stop(): Promise<void> {
    // OSDs first, while the monitor can still take their shutdown notices.
    await Promise.all(this.osds.map((d) => d.stop(stopGraceMs)));
    for (const d of [...this.others].reverse()) await d.stop(stopGraceMs);
    this.osds.length = 0;
    this.others.length = 0;
    await rm(this.dir, { recursive: true, force: true });
  }
}

function imageSpec(): string {
  return `${cephPool}/${cephImage}`;
}

/** What the generated ceph.conf sets, in one line for the report. */
export const cephConfSummary =
  "auth none, mon on 127.0.0.1 (free ports), osd pool default size 3 / min size 2, " +
  "osd crush chooseleaf type 0, pg autoscale off, osd memory target 1 GiB, " +
  "BlueStore on sparse files, rbd cache off";
