import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeOf } from "./api_call_rc.js";
import { SatelliteLink } from "./satellite_link.js";
import { openSqliteStore } from "./store/sqlite_store.js";
import type { ControllerStore } from "./store/store.js";
import { populateCluster } from "./test_cluster.js";
import { createLogger } from "../io/log.js";
import type { DesiredPush, SatelliteReport } from "../satellite/protocol.js";

const quiet = createLogger({ write: () => undefined });

/** Fake satellites: each node's pushes, and what it answers. */
class FakeSatellites {
  readonly pushes = new Map<string, DesiredPush[]>();
  /** Hosts that do not answer (connection refused). */
  readonly down = new Set<string>();
  /** A host whose satellite holds this generation and refuses older pushes. */
  readonly held = new Map<string, number>();

  report(push: DesiredPush | undefined, node: string): SatelliteReport {
    return {
      node,
      generation: push?.generation ?? 0,
      appliedGeneration: push?.generation ?? 0,
      pools: (push?.state.pools ?? []).map((p) => ({ ...p, freeKib: 1000, totalKib: 2000 })),
      resources: (push?.state.resources ?? []).map((r) => ({
        name: r.name,
        running: true,
        role: r.nodeId === 0 ? "Primary" : "Secondary",
        problems: [],
        volumes: r.volumes.map((v) => ({
          volume: v.volume,
          sizeKib: v.sizeKib,
          diskState: r.diskless ? "Diskless" : "UpToDate",
          ...(v.nbd !== undefined ? { nbd: `nbd://${v.nbd}/${r.name}` } : {}),
          peers: r.peers.map((p) => ({
            node: p.name,
            nodeId: p.nodeId,
            connection: "Connected",
            replication: p.nodeId === 1 ? "SyncSource" : "Established",
            peerDisk: "UpToDate",
            ...(p.nodeId === 1 ? { donePercent: 42 } : {}),
            outOfSyncKib: 0,
          })),
        })),
      })),
      errors: [],
    };
  }

  readonly fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const host = new URL(url).hostname;
    if (this.down.has(host))
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    const node = `n${host.split(".")[3]}`;
    const list = this.pushes.get(node) ?? [];
    if (init.method === "PUT") {
      const push = JSON.parse(String(init.body)) as DesiredPush;
      const held = this.held.get(host) ?? 0;
      if (push.generation < held)
        return Response.json({ error: "old", generation: held }, { status: 409 });
      list.push(push);
      this.pushes.set(node, list);
      return Response.json(this.report(push, node));
    }
    return Response.json(this.report(list.at(-1), node));
  };
}

async function withLink(
  fn: (link: SatelliteLink, fake: FakeSatellites, store: ControllerStore) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mirra-link-"));
  const store = openSqliteStore({ dataDir: dir });
  const fake = new FakeSatellites();
  let now = 1_000_000;
  const link = new SatelliteLink(store, quiet, { applyTimeoutMs: 5_000 }, fake.fetch, () => now);
  try {
    await store.write(populateCluster);
    await fn(link, fake, store);
  } finally {
    now = 0;
    await link.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("link: a change is pushed once to each node it changed, with growing generations", () =>
  withLink(async (link, fake, store) => {
    assert.deepEqual(link.pendingNodes(), ["n1", "n2", "n3"]);
    assert.deepEqual(await link.applyChanges(), []);
    assert.deepEqual(link.pendingNodes(), []);
    assert.equal(link.state("n1").status, "ONLINE");
    // Nothing changed: no push.
    assert.deepEqual(await link.applyChanges(), []);
    assert.equal(fake.pushes.get("n1")!.length, 1);
    // A new pool on n2 changes only n2's desired state.
    await store.write((tx) =>
      tx.putStoragePool({
        node: "n2",
        name: "more",
        providerKind: "FILE_THIN",
        props: { "StorDriver/FileDir": "/srv/more" },
        sharedSpace: null,
        externalLocking: false,
        uuid: "u-more",
      }),
    );
    assert.deepEqual(link.pendingNodes(), ["n2"]);
    await link.applyChanges();
    assert.equal(fake.pushes.get("n1")!.length, 1);
    const n2 = fake.pushes.get("n2")!;
    assert.equal(n2.length, 2);
    assert.ok(n2[1]!.generation > n2[0]!.generation);
    assert.deepEqual(
      n2[1]!.state.pools.map((p) => p.name),
      ["more", "pool"],
    );
  }));

test("link: an unreachable satellite is OFFLINE, and the mutation gets a warning", () =>
  withLink(async (link, fake) => {
    fake.down.add("127.0.0.3");
    const warnings = await link.applyChanges();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /node 'n3' is not reachable: .*ECONNREFUSED/);
    assert.equal(codeOf(warnings[0]!), 1003);
    assert.equal(link.state("n3").status, "OFFLINE");
    assert.deepEqual(link.pendingNodes(), ["n3"]);
    // Back: the next sync pushes its state.
    fake.down.delete("127.0.0.3");
    await link.sync("n3");
    assert.equal(link.state("n3").status, "ONLINE");
    assert.deepEqual(link.pendingNodes(), []);
  }));

test("link: a satellite holding a newer generation gets a push above it", () =>
  withLink(async (link, fake) => {
    fake.held.set("127.0.0.1", 5_000_000);
    assert.deepEqual(await link.applyChanges(), []);
    assert.ok(fake.pushes.get("n1")![0]!.generation > 5_000_000);
    assert.ok(link.nextGeneration() > 5_000_000);
  }));

test("link: views get connection status, capacity, states, sync progress and NBD URIs", () =>
  withLink(async (link) => {
    await link.applyChanges();
    const nodes = await link.afterRequest(
      "GET",
      "/v1/nodes",
      {},
      {
        status: 200,
        body: [{ name: "n1", connection_status: "OFFLINE" }, { name: "zz" }],
      },
    );
    assert.deepEqual(nodes.body, [
      { name: "n1", connection_status: "ONLINE" },
      { name: "zz", connection_status: "OFFLINE" },
    ]);
    const pools = await link.afterRequest(
      "GET",
      "/v1/view/storage-pools",
      {},
      {
        status: 200,
        body: [{ node_name: "n2", storage_pool_name: "pool", provider_kind: "FILE_THIN" }],
      },
    );
    assert.deepEqual(pools.body, [
      {
        node_name: "n2",
        storage_pool_name: "pool",
        provider_kind: "FILE_THIN",
        free_capacity: 1000,
        total_capacity: 2000,
      },
    ]);
    const view = await link.afterRequest(
      "GET",
      "/v1/view/resources",
      {},
      {
        status: 200,
        body: [
          {
            name: "r1",
            node_name: "n1",
            layer_object: { drbd: {} },
            volumes: [{ volume_number: 0 }, { volume_number: 1 }],
          },
        ],
      },
    );
    const r = view.body as {
      state: unknown;
      layer_object: { drbd: { connections: unknown } };
      volumes: unknown[];
    }[];
    assert.deepEqual(r[0]!.state, { in_use: true });
    assert.deepEqual(r[0]!.layer_object.drbd.connections, {
      n2: { connected: true, message: "Connected" },
      n3: { connected: true, message: "Connected" },
    });
    assert.deepEqual(r[0]!.volumes[0], {
      volume_number: 0,
      state: {
        disk_state: "UpToDate",
        replication_states: {
          n2: { replication_state: "SyncSource", done_percentage: 42 },
          n3: { replication_state: "Established" },
        },
      },
      usable_size_kib: 65536,
      allocated_size_kib: 65536,
      device_path: "nbd://127.0.0.1:10809/r1",
    });
    // A failed mutation does not wait for satellites and is left as it is.
    const failed = { status: 404, body: [] };
    assert.equal(await link.afterRequest("POST", "/v1/nodes", {}, failed), failed);
  }));
