//! Replicated peers built from stock Debian parts, what a user could assemble instead of mirra
//! (BENCH.md, "Configurations" 5). Each is measured like mirra, through fio, or reported as
//! not run with the reason found on this machine at run time; never silently dropped.
//!
//! qemu-quorum: three `nbdkit file` exports on loopback TCP (the replicas), QEMU's quorum
//! block driver over them in qemu-storage-daemon (vote-threshold 2 of 3; a write goes to all
//! three children and completes when all three answered; reads are voted on, read-pattern
//! quorum, QEMU's default), exported over NBD on a Unix socket. Per BENCH.md: no iothread
//! (the daemon aborts on client disconnect with one), and a glibc mmap threshold so that QEMU
//! does not map and unmap a buffer for every request of 128K or more.
//!
//! ceph-rbd: a throwaway single-host Ceph cluster (see ceph.ts) in the bench's work directory,
//! its RBD image measured through fio's rbd engine (librbd), not NBD.

import { truncate, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";

import { freePort } from "../io/free_port.js";
import { CephCluster, cephOsdCount } from "./ceph.js";
import { findExecutable, runCommand, startServer, type RunningServer } from "./child.js";
import { canConnectUnix, type BenchTarget, type TargetConfig } from "./targets.js";
import { nbdEngineArgs } from "./workloads.js";

const startTimeoutMs = 30_000;
const quorumChildren = 3;
const quorumVoteThreshold = 2;
/** BENCH.md: QEMU maps and unmaps a buffer per request of 128K or more without this. */
const qemuMallocTunables = "glibc.malloc.mmap_threshold=16777216";

function canConnectTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Tools a configuration needs, with the Debian package that ships each. */
async function missingTools(tools: Readonly<Record<string, string>>): Promise<string[]> {
  const missing: string[] = [];
  for (const [command, pkg] of Object.entries(tools)) {
    if ((await findExecutable(command)) === null) missing.push(`${command} (Debian ${pkg})`);
  }
  return missing;
}

/** The qemu-storage-daemon arguments of a quorum over NBD children on `ports`. */
export function quorumDaemonArgs(ports: readonly number[], socket: string): string[] {
  const args: string[] = [];
  const children = ports.map((_, i) => `child${i}`);
  ports.forEach((port, i) => {
    args.push(
      "--blockdev",
      `driver=nbd,node-name=${children[i]},server.type=inet,server.host=127.0.0.1,server.port=${port}`,
    );
  });
  args.push(
    "--blockdev",
    `driver=quorum,node-name=quorum,vote-threshold=${quorumVoteThreshold},read-pattern=quorum,` +
      children.map((c, i) => `children.${i}=${c}`).join(","),
    "--nbd-server",
    `addr.type=unix,addr.path=${socket}`,
    "--export",
    "type=nbd,id=export0,node-name=quorum,name=disk,writable=on",
  );
  return args;
}

export const qemuQuorumTarget: TargetConfig = {
  name: "qemu-quorum",
  description:
    `qemu-storage-daemon, quorum blockdev (vote-threshold ${quorumVoteThreshold} of ` +
    `${quorumChildren}, reads voted) over ${quorumChildren} \`nbdkit file\` exports on ` +
    `loopback TCP, exported over NBD on a Unix socket`,
  async unavailable(): Promise<string | null> {
    const missing = await missingTools({
      "qemu-storage-daemon": "qemu-system-common",
      nbdkit: "nbdkit",
    });
    return missing.length === 0 ? null : `not installed: ${missing.join(", ")}`;
  },
  async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
    const servers: RunningServer[] = [];
    const stop = async (): Promise<void> => {
      // The quorum daemon first, so it never sees its children vanish under a client.
      for (const s of [...servers].reverse()) await s.stop(3000);
    };
    try {
      const ports: number[] = [];
      for (let i = 0; i < quorumChildren; i++) {
        const file = join(dir, `quorum${i}.img`);
        await writeFile(file, "");
        await truncate(file, sizeBytes);
        const port = await freePort();
        const args = ["-i", "127.0.0.1", "-p", String(port), "-f", "--exit-with-parent"];
        args.push("file", file);
        servers.push(
          await startServer("nbdkit", args, {
            readyProbe: () => canConnectTcp(port),
            timeoutMs: startTimeoutMs,
          }),
        );
        ports.push(port);
      }
      const socket = join(dir, "quorum.sock");
      servers.push(
        await startServer("qemu-storage-daemon", quorumDaemonArgs(ports, socket), {
          readyProbe: () => canConnectUnix(socket),
          timeoutMs: startTimeoutMs,
          env: { ...process.env, GLIBC_TUNABLES: qemuMallocTunables },
        }),
      );
      return {
        name: "qemu-quorum",
        engineArgs: nbdEngineArgs(`nbd+unix:///disk?socket=${socket}`),
        commandLine: [
          ...servers.slice(0, -1).map((s) => `${s.command} &`),
          `GLIBC_TUNABLES=${qemuMallocTunables} ${servers[servers.length - 1]!.command} &`,
        ].join("\n"),
        backingFile: join(dir, "quorum0.img"),
        stop,
      };
    } catch (err) {
      await stop();
      throw err;
    }
  },
};

/** Debian's single-host Ceph needs these daemons and tools, by the package that ships each. */
const cephTools: Readonly<Record<string, string>> = {
  "ceph-mon": "ceph-mon",
  "ceph-mgr": "ceph-mgr",
  "ceph-osd": "ceph-osd",
  ceph: "ceph-common",
  rbd: "ceph-common",
  monmaptool: "ceph-base",
  setpriv: "util-linux",
};

/** Whether this fio was built with the rbd engine (Debian's is, linked to librbd). */
async function fioHasRbd(): Promise<boolean> {
  // No fio at all (runCommand rejects) lacks the engine too.
  const r = await runCommand("fio", ["--enghelp"], { timeoutMs: 10_000 }).catch(() => null);
  return r !== null && r.code === 0 && /^\s*rbd\s*$/m.test(r.stdout);
}

/**
 * Why the Ceph peer cannot run here, or null when it can: a missing package (with the command
 * that installs it) or an fio without the rbd engine. Whether the cluster then becomes healthy
 * is only found by building it (`CephCluster.start`).
 */
export async function cephUnavailable(): Promise<string | null> {
  const parts: string[] = [];
  const missing = await missingTools(cephTools);
  if (missing.length > 0)
    parts.push(
      `not installed: ${missing.join(", ")} (as root: \`scripts/install-deps.sh --bench-peers\`)`,
    );
  if (!(await fioHasRbd())) parts.push("fio lacks the rbd engine (`fio --enghelp`)");
  return parts.length === 0 ? null : parts.join("; ");
}

export const cephRbdTarget: TargetConfig = {
  name: "ceph-rbd",
  description:
    `single-host Ceph (1 mon, 1 mgr, ${cephOsdCount} BlueStore OSDs on sparse files, auth none, ` +
    "RBD pool size 3 min_size 2, rbd cache off), fio's rbd engine. A write completes once all " +
    "three OSDs committed it to disk (BlueStore writes O_DIRECT and flushes), unlike the " +
    "page-cache servers; the OSDs share this one machine's disk and cores with fio, unlike " +
    "any real Ceph deployment",
  unavailable: cephUnavailable,
  async start(dir: string, sizeBytes: number): Promise<BenchTarget> {
    const version = (await runCommand("ceph", ["--version"])).stdout.trim();
    const cluster = await CephCluster.start(join(dir, "ceph"), sizeBytes);
    const seconds = (cluster.setupMs / 1000).toFixed(1);
    return {
      name: "ceph-rbd",
      engineArgs: cluster.engineArgs,
      env: cluster.env,
      commandLine: [
        `# ${version}; cluster built in ${seconds} s; ${cluster.health}`,
        ...cluster.commands,
      ].join("\n"),
      backingFile: join(dir, "ceph", "osd", "ceph-0.block"),
      stop: () => cluster.stop(),
    };
  },
};
