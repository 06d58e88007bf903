//! The node daemon end to end: three `mirra node run` processes on loopback replicate one
//! resource; `mirra adm` (and the admin socket it uses) promotes, demotes and reports; data
//! written through one node's NBD export lands on the other nodes' backing files and reads
//! back through another node's export after a switch-over.
//!
//! Every wait is a poll of a condition with a deadline (status over the admin socket), never
//! a sleep. Ports are chosen free by the OS. Data is a deterministic pattern.

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { runCommand, startServer, type RunningServer } from "../../src/bench/child.js";
import { TestClient } from "../../src/nbd/test_client.js";
import * as C from "../../src/nbd/protocol/constants.js";
import { adminCall } from "../../src/daemon/admin_client.js";
import { allHealthy, formatStatus, type ResourceStatus } from "../../src/daemon/admin_protocol.js";
import { freePort, waitFor } from "./daemon_cluster.js";
import { cleanupAll, makeTempDir, mirraMain } from "./nbd_helpers.js";
import { pattern as patternBuffer } from "./test_data.js";

/** The shared pattern as a plain Uint8Array, the type the NBD client reads into. */
const pattern = (seed: string, length: number): Uint8Array =>
  new Uint8Array(patternBuffer(seed, length));

const MiB = 1024 * 1024;
const volumeBytes = 8 * MiB;
const nodes = [0, 1, 2];

/** Deterministic bytes: SHA-256 in counter mode over `seed`. */

async function readFileRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const file = await open(path, "r");
  try {
    const buf = new Uint8Array(length);
    await file.read(buf, 0, length, offset);
    return buf;
  } finally {
    await file.close();
  }
}

describe("node daemon: three nodes on loopback", () => {
  let dir = "";
  let config = "";
  const daemons: RunningServer[] = [];
  const sockets: string[] = [];
  const disks: string[] = [];
  const nbd: { path?: string; port?: number }[] = [];

  async function status(node: number): Promise<ResourceStatus> {
    const r = await adminCall(sockets[node]!, { command: "status", resource: "r0" });
    assert.ok(r.ok && r.status !== undefined, `status on node ${node}: ${r.error}`);
    return r.status[0]!;
  }

  async function admin(
    node: number,
    command: "primary" | "secondary" | "up" | "down",
  ): Promise<void> {
    const r = await adminCall(sockets[node]!, { command, resource: "r0" });
    assert.ok(r.ok, `${command} on node ${node}: ${r.error}`);
  }

  /**
   * Promotes `node` once it knows no peer is Primary. Demotion completes locally, and the
   * peers learn of it by a state message a moment later (and a peer that granted a refused
   * promotion holds that grant for `timeout`), so a promotion right after a demotion
   * elsewhere may be refused: wait for the condition that makes it valid instead.
   */
  async function promote(node: number): Promise<void> {
    await waitFor(`node ${node} to become Primary`, async () => {
      const s = await status(node);
      if (s.connections.some((c) => c.role === "Primary")) return undefined;
      const r = await adminCall(sockets[node]!, { command: "primary", resource: "r0" });
      if (r.ok) return true;
      if (/Multiple primaries/.test(r.error ?? "")) return undefined;
      throw new Error(`primary on node ${node}: ${r.error}`);
    });
  }

  async function allNodesHealthy(): Promise<void> {
    let last: ResourceStatus[] = [];
    try {
      // A resync after a restart covers the activity log's hot extents (the whole 8 MiB
      // volume here); 20 s leaves room for a loaded machine.
      await waitFor(
        "every node Connected and UpToDate",
        async () => {
          last = await Promise.all(nodes.map(status));
          return last.every(allHealthy) ? true : undefined;
        },
        20_000,
      );
    } catch (err) {
      // Say where it got stuck: the last status of every node, and each daemon's log tail.
      const logs = daemons.map((d, i) => `--- node ${i} stderr ---\n${d.stderr().slice(-3000)}`);
      throw new Error(
        `${(err as Error).message}\n${last.map((s) => formatStatus(s)).join("\n")}\n${logs.join("\n")}`,
      );
    }
  }

  async function startDaemon(node: number): Promise<RunningServer> {
    return startServer(
      process.execPath,
      [
        mirraMain,
        "node",
        "run",
        "--config",
        config,
        "--node-id",
        String(node),
        "--admin-socket",
        sockets[node]!,
        // Node 0 serves Prometheus metrics, as drbd-reactor would on port 9942.
        ...(node === 0 ? ["--metrics", `127.0.0.1:${metricsPort}`] : []),
      ],
      { readyPattern: /^(ready)$/, timeoutMs: 20_000 },
    );
  }
  let metricsPort = 0;

  before(async () => {
    dir = await makeTempDir("mirra-daemon-");
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    metricsPort = await freePort();
    const nodeEntries = [];
    for (const node of nodes) {
      const disk = join(dir, `disk${node}.img`);
      disks.push(disk);
      sockets.push(join(dir, `admin${node}.sock`));
      const created = await runCommand(
        process.execPath,
        [
          mirraMain,
          "create-md",
          "--backing",
          disk,
          "--node-id",
          String(node),
          "--peers",
          "2",
          "--size",
          "9M",
          "--al-extents",
          "67",
          // Node 1 keeps its metadata on a separate file: both placements are exercised.
          ...(node === 1 ? ["--meta", join(dir, "meta1.img")] : []),
        ],
        { timeoutMs: 20_000 },
      );
      assert.equal(created.code, 0, created.stderr);
      // Node 0 exports over TCP, the others over Unix sockets: both paths are exercised.
      const nbdText = node === 0 ? `127.0.0.1:${ports[3]}` : `unix:${join(dir, `nbd${node}.sock`)}`;
      nbd.push(node === 0 ? { port: ports[3]! } : { path: join(dir, `nbd${node}.sock`) });
      nodeEntries.push({
        name: `n${node}`,
        "node-id": node,
        address: `127.0.0.1:${ports[node]}`,
        volumes: [
          {
            volume: 0,
            disk,
            "meta-disk": node === 1 ? join(dir, "meta1.img") : "internal",
            nbd: nbdText,
          },
        ],
      });
    }
    config = join(dir, "r0.json");
    writeFileSync(
      config,
      JSON.stringify({
        resource: "r0",
        "shared-secret": "integration-test",
        protocol: "C",
        options: {
          quorum: "majority",
          "on-no-quorum": "io-error",
          "ping-int": 1,
          timeout: 5,
          "connect-int": 1,
        },
        volumes: [{ volume: 0, size: volumeBytes }],
        nodes: nodeEntries,
      }),
    );
    for (const node of nodes) daemons.push(await startDaemon(node));
  });

  after(async () => {
    for (const d of daemons) await d.stop();
    await cleanupAll();
  });

  test("all three connect and are UpToDate", async () => {
    await allNodesHealthy();
    const s = await status(0);
    assert.equal(s.role, "Secondary");
    assert.deepEqual(
      s.connections.map((c) => c.name),
      ["n1", "n2"],
    );
  });

  const offset = 1 * MiB + 64 * 1024;
  const data = pattern("first write", 256 * 1024);

  test("writes through the Primary's export reach every backing file", async () => {
    await promote(0);
    const client = await TestClient.open(nbd[0]!);
    try {
      await client.go("r0", false);
      assert.equal(client.sizeBytes, volumeBytes);
      client.send(C.CMD_WRITE, offset, data.length, 1n, 0, data);
      assert.equal((await client.reply()).error, 0);
      client.send(C.CMD_FLUSH, 0, 0, 2n);
      assert.equal((await client.reply()).error, 0);
      client.send(C.CMD_READ, offset, data.length, 3n);
      const read = await client.reply(data.length);
      assert.equal(read.error, 0);
      assert.deepEqual(new Uint8Array(read.data), data);
    } finally {
      client.close();
    }
    // Protocol C: the write completed only once it was on every connected replica's disk.
    for (const node of [1, 2])
      assert.deepEqual(
        await readFileRange(disks[node]!, offset, data.length),
        data,
        `node ${node}`,
      );
  });

  test("metrics: node 0 serves drbd-reactor's series for role, connections and disks", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const has = (line: string): void => assert.ok(text.split("\n").includes(line), line);
    has("drbdreactor_up 1");
    has("drbd_resource_resources 1");
    has('drbd_resource_role{name="r0",drbd_resource_role="Primary"} 1');
    has('drbd_resource_role{name="r0",drbd_resource_role="Secondary"} 0');
    for (const [peer, id] of [
      ["n1", 1],
      ["n2", 2],
    ] as const) {
      has(
        `drbd_connection_state{name="r0",conn_name="${peer}",peer_node_id="${id}",drbd_connection_state="Connected"} 1`,
      );
      has(
        `drbd_peerdevice_outofsync_bytes{name="r0",conn_name="${peer}",peer_node_id="${id}",volume="0"} 0`,
      );
    }
    assert.match(text, /^drbd_device_state\{[^}]*drbd_device_state="UpToDate"\} 1$/m);
    assert.match(text, /^drbd_device_unintentionaldiskless\{[^}]*\} 0$/m);
    // The data path's counters: node 0 (Primary) served the write above through its export.
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(value(/^drbd_device_written_bytes_total\{name="r0",volume="0"\} (\S+)$/m) > 0);
    assert.ok(value(/^drbd_device_alwrites_total\{name="r0",volume="0"\} (\S+)$/m) > 0);
    assert.match(text, /^drbd_device_bmwrites_total\{name="r0",volume="0"\} \d+$/m);
    assert.ok(value(/^mirra_device_writes_total\{name="r0",volume="0"\} (\S+)$/m) >= 1);
    assert.ok(
      value(/^mirra_device_write_latency_seconds_count\{name="r0",volume="0"\} (\S+)$/m) >= 1,
    );
    assert.match(
      text,
      /^mirra_device_write_latency_seconds_bucket\{name="r0",volume="0",le="\+Inf"\} \d+$/m,
    );
    for (const peer of ["n1", "n2"]) {
      const sent = new RegExp(
        `^drbd_peerdevice_sent_bytes\\{[^}]*conn_name="${peer}"[^}]*\\} (\\S+)$`,
        "m",
      );
      assert.ok(value(sent) >= data.length, `sent to ${peer}`);
      has(
        `mirra_peerdevice_replication_state{name="r0",conn_name="${peer}",peer_node_id="${peer.slice(1)}",volume="0",mirra_peerdevice_replication_state="Established"} 1`,
      );
    }
    // Prometheus's own linter reads the scrape as Prometheus would.
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  });

  test("a second Primary is refused", async () => {
    const r = await adminCall(sockets[2]!, { command: "primary", resource: "r0" });
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /Multiple primaries not allowed/);
  });

  test("after a switch-over the new Primary's export reads the data", async () => {
    await admin(0, "secondary");
    await promote(2);
    const client = await TestClient.open(nbd[2]!);
    try {
      await client.go("r0", false);
      client.send(C.CMD_READ, offset, data.length, 1n);
      const read = await client.reply(data.length);
      assert.equal(read.error, 0);
      assert.deepEqual(new Uint8Array(read.data), data);
      // A write of 512 bytes inside a block: read-modify-write through the engine.
      const small = pattern("small write", 512);
      client.send(C.CMD_WRITE, offset + 512, small.length, 2n, C.CMD_FLAG_FUA, small);
      assert.equal((await client.reply()).error, 0);
      const expected = data.slice(0, 4096);
      expected.set(small, 512);
      assert.deepEqual(await readFileRange(disks[0]!, offset, 4096), expected);
    } finally {
      client.close();
    }
    await admin(2, "secondary");
  });

  test("auto-promote: a writer on a Secondary's export promotes it until it leaves", async () => {
    // Every node must know that node 2 stepped down, or the promotion is refused.
    await waitFor("no Primary left", async () => {
      const all = await Promise.all(nodes.map(status));
      return all.every(
        (s) => s.role === "Secondary" && s.connections.every((c) => c.role !== "Primary"),
      )
        ? true
        : undefined;
    });
    const writer = await TestClient.open(nbd[1]!);
    const other = await TestClient.open(nbd[0]!);
    try {
      await writer.go("r0", false);
      const block = pattern("auto-promoted write", 4096);
      writer.send(C.CMD_WRITE, offset, block.length, 1n, C.CMD_FLAG_FUA, block);
      assert.equal((await writer.reply()).error, 0, "the opening client writes");
      assert.equal((await status(1)).role, "Primary");
      // A second writer elsewhere cannot promote its node: served, but its writes fail.
      await other.go("r0", false);
      other.send(C.CMD_WRITE, offset, block.length, 2n, 0, pattern("refused", 4096));
      assert.equal((await other.reply()).error, C.NBD_EPERM);
      other.send(C.CMD_READ, offset, block.length, 3n);
      const read = await other.reply(block.length);
      assert.equal(read.error, 0, "a Secondary still serves reads");
      assert.equal((await status(0)).role, "Secondary");
      assert.deepEqual(await readFileRange(disks[0]!, offset, block.length), block);
    } finally {
      other.close();
      writer.close();
    }
    await waitFor("node 1 to demote once its writer left", async () =>
      (await status(1)).role === "Secondary" ? true : undefined,
    );
  });

  test("adm status --json (the CLI) shows everyone Connected and UpToDate", async () => {
    await allNodesHealthy();
    const r = await runCommand(
      process.execPath,
      [mirraMain, "adm", "status", "r0", "--json", "--socket", sockets[1]!],
      { timeoutMs: 20_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as ResourceStatus[];
    assert.equal(parsed.length, 1);
    assert.ok(allHealthy(parsed[0]!), r.stdout);
    assert.equal(parsed[0]!.volumes[0]!.disk, "UpToDate");
    for (const c of parsed[0]!.connections) assert.equal(c.connection, "Connected");
    const text = await runCommand(
      process.execPath,
      [mirraMain, "adm", "status", "r0", "--socket", sockets[1]!],
      {
        timeoutMs: 20_000,
      },
    );
    assert.match(text.stdout, /^r0 node-id:1 role:Secondary\n {2}disk:UpToDate/);
    // `mirra status` is the same, colored on a terminal (forced here) like drbdadm status.
    const colored = await runCommand(
      process.execPath,
      [mirraMain, "status", "--socket", sockets[1]!],
      { timeoutMs: 20_000, env: { ...process.env, FORCE_COLOR: "1" } },
    );
    assert.equal(colored.code, 0, colored.stderr);
    assert.ok(colored.stdout.includes("disk:\x1b[32mUpToDate\x1b[0m"), colored.stdout);
    assert.match(
      text.stdout,
      /n0 node-id:0 role:Secondary\n {4}replication:Established peer-disk:UpToDate/,
    );
  });

  test("mirra events: the current state, then each change as it happens", async () => {
    await allNodesHealthy();
    const child = spawn(process.execPath, [mirraMain, "events", "--socket", sockets[0]!]);
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    try {
      await waitFor("exists lines", async () =>
        out.includes("exists peer-device name:r0 peer-node-id:2") ? true : undefined,
      );
      assert.match(out, /^exists resource name:r0 role:Secondary$/m);
      assert.match(out, /^exists device name:r0 volume:0 disk:UpToDate quorum:yes$/m);
      assert.match(
        out,
        /^exists connection name:r0 peer-node-id:1 conn-name:n1 connection:Connected/m,
      );
      // Node 1 drops its link to node 0 and connects again: node 0 sees both changes.
      const off = await adminCall(sockets[1]!, { command: "disconnect", resource: "r0", peer: 0 });
      assert.ok(off.ok, off.error);
      await waitFor("a connection change", async () =>
        /^change connection name:r0 peer-node-id:1 connection:(?!Connected)/m.test(out)
          ? true
          : undefined,
      );
      const on = await adminCall(sockets[1]!, { command: "connect", resource: "r0", peer: 0 });
      assert.ok(on.ok, on.error);
      await waitFor("connected again", async () =>
        /^change connection name:r0 peer-node-id:1 connection:Connected$/m.test(out)
          ? true
          : undefined,
      );
      await allNodesHealthy();
    } finally {
      child.kill();
    }
  });

  test("adm down and up: the node leaves, comes back and catches up", async () => {
    await admin(1, "down");
    const down = await status(1);
    assert.equal(down.up, false);
    await waitFor("node 0 to see node 1 gone", async () =>
      (await status(0)).connections.find((c) => c.nodeId === 1)!.connection !== "Connected"
        ? true
        : undefined,
    );
    // Written while node 1 is away: it must get it by resync.
    await promote(0);
    const later = pattern("while node 1 was down", 64 * 1024);
    const client = await TestClient.open(nbd[0]!);
    try {
      await client.go("r0", false);
      client.send(C.CMD_WRITE, 4 * MiB, later.length, 1n, C.CMD_FLAG_FUA, later);
      assert.equal((await client.reply()).error, 0);
    } finally {
      client.close();
    }
    await admin(1, "up");
    await allNodesHealthy();
    assert.deepEqual(await readFileRange(disks[1]!, 4 * MiB, later.length), later);
    await admin(0, "secondary");
  });

  test("a daemon killed with SIGKILL restarts from its metadata and catches up", async () => {
    await promote(0);
    const victim = daemons[2]!;
    process.kill(victim.pid, "SIGKILL");
    await victim.stop();
    await waitFor("node 0 to see node 2 gone", async () =>
      (await status(0)).connections.find((c) => c.nodeId === 2)!.connection !== "Connected"
        ? true
        : undefined,
    );
    const missed = pattern("while node 2 was dead", 128 * 1024);
    const client = await TestClient.open(nbd[0]!);
    try {
      await client.go("r0", false);
      client.send(C.CMD_WRITE, 6 * MiB, missed.length, 1n, C.CMD_FLAG_FUA, missed);
      assert.equal((await client.reply()).error, 0);
    } finally {
      client.close();
    }
    daemons[2] = await startDaemon(2);
    await allNodesHealthy();
    assert.deepEqual(await readFileRange(disks[2]!, 6 * MiB, missed.length), missed);
    // And the earlier data survived the crash and the resync.
    assert.deepEqual(
      await readFileRange(disks[2]!, offset, 4096),
      await readFileRange(disks[0]!, offset, 4096),
    );
    await admin(0, "secondary");
  });

  test("unknown resources and bad requests get clear errors", async () => {
    const r = await adminCall(sockets[0]!, { command: "primary", resource: "nope" });
    assert.equal(r.ok, false);
    assert.match(r.error ?? "", /no resource "nope" here \(known: r0\)/);
    // Raw lines: garbage and unknown commands are answered, in order, and the daemon lives on.
    const raw = net.connect({ path: sockets[0]! });
    const answers = await new Promise<string[]>((resolve, reject) => {
      let text = "";
      raw.on("data", (c: Buffer) => {
        text += c.toString();
        const lines = text.split("\n").filter((l) => l !== "");
        if (lines.length === 3) resolve(lines);
      });
      raw.on("error", reject);
      raw.write('not json\n{"command":"explode"}\n{"id":9,"command":"status","resource":"r0"}\n');
    });
    raw.destroy();
    assert.deepEqual(JSON.parse(answers[0]!), { ok: false, error: "the request is not JSON" });
    assert.match((JSON.parse(answers[1]!) as { error: string }).error, /^command must be one of/);
    assert.equal((JSON.parse(answers[2]!) as { id: number; ok: boolean }).id, 9);
    const resize = await adminCall(sockets[0]!, { command: "resize", resource: "r0", size: 1000 });
    assert.equal(resize.ok, false);
    assert.match(resize.error ?? "", /not a positive multiple of 4 KiB/);
    const cli = await runCommand(
      process.execPath,
      [mirraMain, "adm", "primary", "r0", "--socket", join(dir, "none.sock")],
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /cannot reach the mirra node daemon/);
  });

  test("a daemon refuses a disk without metadata, with the reason", async () => {
    const blank = join(dir, "blank.img");
    writeFileSync(blank, new Uint8Array(0));
    const bad = join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({
        resource: "r9",
        volumes: [{ volume: 0, size: "1M" }],
        nodes: [
          {
            name: "x",
            "node-id": 0,
            address: `127.0.0.1:${await freePort()}`,
            volumes: [{ volume: 0, disk: blank }],
          },
        ],
      }),
    );
    const { truncate } = await import("node:fs/promises");
    await truncate(blank, 2 * MiB);
    const r = await runCommand(
      process.execPath,
      [
        mirraMain,
        "node",
        "run",
        "--config",
        bad,
        "--node-id",
        "0",
        "--admin-socket",
        join(dir, "bad.sock"),
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no metadata found .*run `mirra create-md` first/);
  });
});

describe("node daemon: one node, two volumes", () => {
  test("each volume has its own export and backing disk; commands cover both", async () => {
    const dir = await makeTempDir("mirra-daemon-volumes-");
    const volumes = [0, 1].map((v) => ({
      disk: join(dir, `v${v}.img`),
      nbd: join(dir, `v${v}.sock`),
    }));
    for (const [node, v] of volumes.entries()) {
      const created = await runCommand(
        process.execPath,
        [mirraMain, "create-md", "--backing", v.disk, "--node-id", "0", "--peers", "1"].concat([
          "--size",
          "5M",
          "--al-extents",
          "67",
        ]),
        { timeoutMs: 20_000 },
      );
      assert.equal(created.code, 0, `volume ${node}: ${created.stderr}`);
    }
    const config = join(dir, "r1.json");
    writeFileSync(
      config,
      JSON.stringify({
        resource: "r1",
        volumes: [
          { volume: 0, size: "4M" },
          { volume: 1, size: "4M" },
        ],
        nodes: [
          {
            name: "solo",
            "node-id": 0,
            address: `127.0.0.1:${await freePort()}`,
            volumes: volumes.map((v, i) => ({ volume: i, disk: v.disk, nbd: `unix:${v.nbd}` })),
          },
        ],
      }),
    );
    const socket = join(dir, "admin.sock");
    const daemon = await startServer(
      process.execPath,
      [mirraMain, "node", "run", "--config", config, "--node-id", "0", "--admin-socket", socket],
      { readyPattern: /^(ready)$/, timeoutMs: 20_000 },
    );
    try {
      // A resource of one node: its data is the only data there is, so it comes up UpToDate
      // and promotes without --force.
      const promoted = await adminCall(socket, { command: "primary", resource: "r1" });
      assert.ok(promoted.ok, promoted.error);
      const data = pattern("volume one", 8192);
      const client = await TestClient.open({ path: volumes[1]!.nbd });
      try {
        await client.go("r1/1", false);
        assert.equal(client.sizeBytes, 4 * MiB);
        client.send(C.CMD_WRITE, 8192, data.length, 1n, C.CMD_FLAG_FUA, data);
        assert.equal((await client.reply()).error, 0);
      } finally {
        client.close();
      }
      assert.deepEqual(await readFileRange(volumes[1]!.disk, 8192, data.length), data);
      assert.deepEqual(
        await readFileRange(volumes[0]!.disk, 8192, data.length),
        new Uint8Array(8192),
      );
      const s = await adminCall(socket, { command: "status" });
      assert.equal(s.status?.[0]?.role, "Primary");
      assert.deepEqual(
        s.status?.[0]?.volumes.map((v) => [v.volume, v.disk]),
        [
          [0, "UpToDate"],
          [1, "UpToDate"],
        ],
      );
    } finally {
      const exit = await daemon.stop();
      assert.equal(exit.code, 0, daemon.stderr());
    }
  });
});

const haveOpenssl = spawnSync("openssl", ["version"]).status === 0;

/** A private CA and one certificate it signed (EC P-256, valid one day), as PEM files. */
function makeCertificates(dir: string): { cert: string; key: string; ca: string } {
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=ca",
  );
  run("req", ...ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node");
  run(
    ...["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key"],
    ...["-CAcreateserial", "-out", "node.crt", "-days", "1"],
  );
  return { cert: join(dir, "node.crt"), key: join(dir, "node.key"), ca: join(dir, "ca.crt") };
}

describe("node daemon: peer links inside TLS", () => {
  test("two nodes with tls yes connect and replicate", { skip: !haveOpenssl }, async () => {
    const dir = await makeTempDir("mirra-daemon-tls-");
    const pem = makeCertificates(dir);
    const nodeEntries = [];
    for (const node of [0, 1]) {
      const disk = join(dir, `disk${node}.img`);
      const created = await runCommand(
        process.execPath,
        [
          mirraMain,
          "create-md",
          "--backing",
          disk,
          "--node-id",
          String(node),
          "--peers",
          "1",
        ].concat(["--size", "5M", "--al-extents", "67"]),
        { timeoutMs: 20_000 },
      );
      assert.equal(created.code, 0, created.stderr);
      nodeEntries.push({
        name: `t${node}`,
        "node-id": node,
        address: `127.0.0.1:${await freePort()}`,
        volumes: [{ volume: 0, disk, nbd: `unix:${join(dir, `nbd${node}.sock`)}` }],
      });
    }
    const config = join(dir, "tls.json");
    writeFileSync(
      config,
      JSON.stringify({
        resource: "rt",
        "shared-secret": "and a secret too",
        options: {
          tls: "yes",
          "tls-certificate": pem.cert,
          "tls-privkey": pem.key,
          "tls-ca": pem.ca,
          "ping-int": 1,
          timeout: 5,
          "connect-int": 1,
        },
        volumes: [{ volume: 0, size: "4M" }],
        nodes: nodeEntries,
      }),
    );
    const daemons: RunningServer[] = [];
    try {
      for (const node of [0, 1])
        daemons.push(
          await startServer(
            process.execPath,
            [mirraMain, "node", "run", "--config", config, "--node-id", String(node)].concat([
              "--admin-socket",
              join(dir, `admin${node}.sock`),
            ]),
            { readyPattern: /^(ready)$/, timeoutMs: 20_000 },
          ),
        );
      await waitFor("both nodes Connected and UpToDate over TLS", async () => {
        const all = await Promise.all(
          [0, 1].map((n) => adminCall(join(dir, `admin${n}.sock`), { command: "status" })),
        );
        return all.every((r) => r.status !== undefined && allHealthy(r.status[0]!))
          ? true
          : undefined;
      });
      const promoted = await adminCall(join(dir, "admin0.sock"), {
        command: "primary",
        resource: "rt",
      });
      assert.ok(promoted.ok, promoted.error);
      const data = pattern("over tls", 16384);
      const client = await TestClient.open({ path: join(dir, "nbd0.sock") });
      try {
        await client.go("rt", false);
        client.send(C.CMD_WRITE, 0, data.length, 1n, C.CMD_FLAG_FUA, data);
        assert.equal((await client.reply()).error, 0);
      } finally {
        client.close();
      }
      assert.deepEqual(await readFileRange(join(dir, "disk1.img"), 0, data.length), data);
    } finally {
      for (const d of daemons) await d.stop();
    }
  });
});
