//! A real filesystem on a replicated volume (issue 4, point 5): the Primary's NBD export is
//! turned into a file by nbdfuse (userspace), into a block device by a loop device, formatted
//! ext4 and mounted; files are written with checksums and synced; the Primary is SIGKILLed
//! with the filesystem mounted; another node is promoted, its export is mounted the same way
//! (the journal replays), the files are intact and `e2fsck -fn` finds nothing to fix.
//!
//! Needs root, /dev/fuse, loop devices, nbdfuse, mkfs.ext4 and e2fsck; skipped with the reason
//! otherwise. Every mount, loop device and nbdfuse is undone in `after()` even on failure.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { runCommand, startServer, type RunningServer } from "../../src/bench/child.js";
import { DaemonCluster, MiB, must, waitFor } from "./daemon_cluster.js";
import { pattern } from "./test_data.js";

async function have(command: string, args: string[]): Promise<boolean> {
  try {
    await runCommand(command, args, { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function whyNot(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "needs root (loop devices and mounts)";
  if (!existsSync("/dev/fuse")) return "no /dev/fuse";
  if (!existsSync("/dev/loop-control")) return "no loop devices (/dev/loop-control)";
  for (const [cmd, args] of [
    ["nbdfuse", ["--version"]],
    ["mkfs.ext4", ["-V"]],
    ["e2fsck", ["-V"]],
    ["losetup", ["--version"]],
  ] as const)
    if (!(await have(cmd, [...args]))) return `${cmd} is not installed`;
  return undefined;
}

/** The export of one node as a mounted ext4 filesystem: nbdfuse file, loop device, mount. */
class MountedExport {
  private fuse: RunningServer | null = null;
  private loop = "";
  private mounted = false;
  readonly fuseDir: string;
  readonly mountDir: string;

  constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.fuseDir = join(dir, `${name}-fuse`);
    this.mountDir = join(dir, `${name}-mnt`);
  }

  /** nbdfuse + losetup; returns the loop device. */
  async attach(uri: string): Promise<string> {
    await mkdir(this.fuseDir, { recursive: true });
    await mkdir(this.mountDir, { recursive: true });
    const pidFile = join(this.dir, `${this.name}-nbdfuse.pid`);
    this.fuse = await startServer("nbdfuse", ["-P", pidFile, join(this.fuseDir, "disk"), uri], {
      readyProbe: () => Promise.resolve(existsSync(pidFile)),
      timeoutMs: 15_000,
    });
    this.loop = (await must("losetup", ["--find", "--show", join(this.fuseDir, "disk")])).trim();
    return this.loop;
  }

  async mount(): Promise<void> {
    await must("mount", ["-t", "ext4", this.loop, this.mountDir]);
    this.mounted = true;
  }

  async umount(): Promise<void> {
    if (!this.mounted) return;
    this.mounted = false;
    await must("umount", [this.mountDir]);
  }

  /** Undoes everything, without waiting on a device that can no longer answer. */
  async tearDown(): Promise<void> {
    if (this.mounted) {
      this.mounted = false;
      await runCommand("umount", ["-l", this.mountDir], { timeoutMs: 20_000 });
    }
    if (this.loop !== "") {
      await runCommand("losetup", ["-d", this.loop], { timeoutMs: 20_000 });
      this.loop = "";
    }
    if (this.fuse !== null) {
      await this.fuse.stop(2000);
      this.fuse = null;
      await runCommand("umount", ["-l", this.fuseDir], { timeoutMs: 20_000 });
    }
  }
}

const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

const problem = await whyNot();

describe("a filesystem on a replicated volume survives its Primary's SIGKILL", () => {
  let cluster: DaemonCluster | undefined;
  const mounts: MountedExport[] = [];

  after(async () => {
    for (const m of mounts) await m.tearDown();
    await cluster?.destroy();
  });

  test(
    "ext4 via nbdfuse and a loop device: files intact and fsck clean on the new Primary",
    { skip: problem ?? false },
    async () => {
      cluster = await DaemonCluster.create({
        volumeBytes: 64 * MiB,
        options: { quorum: "majority" },
      });
      const c = cluster;
      await c.waitHealthy();
      await c.adm(0, "primary");

      const first = new MountedExport(c.dir, "n0");
      mounts.push(first);
      const loop = await first.attach(c.nbdUri(0));
      await must("mkfs.ext4", ["-q", "-F", "-b", "4096", loop], 60_000);
      await first.mount();
      const files = new Map<string, string>();
      await mkdir(join(first.mountDir, "data"));
      for (let i = 0; i < 24; i++) {
        const name = join("data", `file-${i}.bin`);
        const data = pattern(`file ${i}`, (16 + 37 * i) * 1024);
        const f = await open(join(first.mountDir, name), "w");
        try {
          await f.write(data);
          await f.sync();
        } finally {
          await f.close();
        }
        files.set(name, sha256(data));
      }
      await writeFile(join(first.mountDir, "manifest.json"), JSON.stringify([...files]));
      // Everything above is durable on the Primary (and, protocol C, on its peers).
      await must("sync", ["-f", join(first.mountDir, "manifest.json")]);

      // More files, not synced: whatever of them reached the volume, the filesystem must be
      // consistent after the crash.
      for (let i = 0; i < 8; i++)
        await writeFile(join(first.mountDir, `unsynced-${i}.bin`), pattern(`late ${i}`, 64 * 1024));
      // The Primary dies with the filesystem mounted.
      await c.kill(0);
      await first.tearDown();

      await waitFor("node 1 to see node 0 gone", async () =>
        (await c.status(1)).connections.find((p) => p.nodeId === 0)!.connection !== "Connected"
          ? true
          : undefined,
      );
      await c.promote(1);
      const second = new MountedExport(c.dir, "n1");
      mounts.push(second);
      const loop1 = await second.attach(c.nbdUri(1));
      // Mounting replays the journal; the files must be there, byte for byte.
      await second.mount();
      const manifest = JSON.parse(
        await readFile(join(second.mountDir, "manifest.json"), "utf8"),
      ) as [string, string][];
      assert.deepEqual(new Map(manifest), files);
      for (const [name, hash] of files)
        assert.equal(sha256(await readFile(join(second.mountDir, name))), hash, name);
      await second.umount();
      const fsck = await runCommand("e2fsck", ["-f", "-n", loop1], { timeoutMs: 60_000 });
      assert.equal(fsck.code, 0, `e2fsck -fn found problems:\n${fsck.stdout}\n${fsck.stderr}`);
      await second.tearDown();

      // And the old Primary rejoins.
      await c.start(0);
      await c.waitHealthy();
    },
  );
});
