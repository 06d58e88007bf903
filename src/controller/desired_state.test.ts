import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  desiredStateFor,
  joiningProp,
  nbdPortBaseProp,
  satelliteAddress,
} from "./desired_state.js";
import { openSqliteStore } from "./store/sqlite_store.js";
import type { ControllerStore } from "./store/store.js";
import { populateCluster } from "./test_cluster.js";
import { parseResourceFile } from "../config/resource_file.js";
import { plan, resourceFileFor } from "../satellite/reconcile.js";

async function withStore(fn: (store: ControllerStore) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mirra-desired-"));
  const store = openSqliteStore({ dataDir: dir });
  try {
    await store.write(populateCluster);
    await fn(store);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("desired state: a diskful node gets its file pools, port, secret, node-ids and peers", () =>
  withStore((store) => {
    const d = store.read((tx) => desiredStateFor(tx, "N1"));
    assert.deepEqual(d.pools, [{ name: "pool", kind: "FILE", directory: "/srv/n1" }]);
    assert.equal(d.resources.length, 1);
    const r = d.resources[0]!;
    assert.deepEqual(
      { ...r, volumes: undefined, peers: undefined, options: undefined },
      {
        name: "r1",
        nodeName: "n1",
        host: "127.0.0.1",
        port: 7001,
        sharedSecret: "s3cret",
        nodeId: 0,
        peerSlots: 7,
        diskless: false,
        pool: "pool",
        volumes: undefined,
        peers: undefined,
        options: undefined,
      },
    );
    // Sizes round up to 4 KiB blocks; NBD ports follow the minor from 10809.
    assert.deepEqual(r.volumes, [
      { volume: 0, sizeKib: 65536, nbd: "127.0.0.1:10809" },
      { volume: 1, sizeKib: 1024, nbd: "127.0.0.1:10812" },
    ]);
    assert.deepEqual(r.peers, [
      { name: "n2", nodeId: 1, host: "127.0.0.2", poolDirectory: "/srv/n2" },
      { name: "n3", nodeId: 2, host: "127.0.0.3", poolDirectory: null },
    ]);
  }));

test("desired state: a tie-breaker is diskless and exports nothing; LVM pools are not sent", () =>
  withStore((store) => {
    const d = store.read((tx) => desiredStateFor(tx, "n3"));
    assert.deepEqual(
      d.pools.map((p) => p.name),
      ["pool"],
    );
    const r = d.resources[0]!;
    assert.equal(r.diskless, true);
    assert.equal(r.nodeId, 2);
    assert.ok(r.volumes.every((v) => v.nbd === undefined));
    assert.equal(r.joining, undefined);
  }));

test("desired state: a disk that joins peers with data (toggle-disk) is marked joining", () =>
  withStore(async (store) => {
    await store.write((tx) => {
      const r = tx.resource("r1", "n2")!;
      tx.putResource({ ...r, props: { ...r.props, [joiningProp]: "true" } });
    });
    const d = store.read((tx) => desiredStateFor(tx, "n2"));
    assert.equal(d.resources[0]!.joining, true);
    assert.equal(store.read((tx) => desiredStateFor(tx, "n1")).resources[0]!.joining, undefined);
  }));

test("desired state: every node's resource file parses and names the same nodes", () =>
  withStore((store) => {
    for (const node of ["n1", "n2", "n3"]) {
      const d = store.read((tx) => desiredStateFor(tx, node));
      const r = d.resources[0]!;
      const pool = d.pools.find((p) => p.name === r.pool)?.directory ?? null;
      const file = parseResourceFile(resourceFileFor(r, r.diskless ? null : pool), "r1.json");
      assert.deepEqual(
        file.nodes.map((n) => `${n.name}@${n.address.host}:${n.address.port}`),
        ["n1@127.0.0.1:7001", "n2@127.0.0.2:7001", "n3@127.0.0.3:7001"],
      );
      // Reconcile accepts it: nothing but actions on an empty node.
      const p = plan(d, { pools: [], files: [], resourceFiles: [], running: [] });
      assert.deepEqual(p.problems, []);
    }
  }));

test("desired state: the NBD port base is a controller property; unknown nodes hold nothing", () =>
  withStore(async (store) => {
    await store.write((tx) => tx.setControllerProps({ [nbdPortBaseProp]: "21000" }));
    const d = store.read((tx) => desiredStateFor(tx, "n2"));
    assert.equal(d.resources[0]!.volumes[0]!.nbd, "127.0.0.2:21000");
    assert.deepEqual(
      store.read((tx) => desiredStateFor(tx, "nope")),
      { pools: [], resources: [] },
    );
    assert.deepEqual(
      store.read((tx) => satelliteAddress(tx.node("n2")!)),
      { host: "127.0.0.2", port: 3366 },
    );
  }));

test("desired state: DRBD options from properties, and LINSTOR's auto-quorum from three nodes", async () => {
  await withStore(async (store) => {
    // Two diskful replicas and a tie-breaker: three votes, so quorum majority with io-error.
    const file = (node: string) =>
      store.read((tx) => {
        const d = desiredStateFor(tx, node);
        const r = d.resources[0]!;
        const pool = d.pools.find((p) => p.name === r.pool)?.directory ?? null;
        return parseResourceFile(resourceFileFor(r, r.diskless ? null : pool), "r1.json");
      });
    assert.equal(file("n1").engineOptions.quorum, "majority");
    assert.equal(file("n3").engineOptions.onNoQuorum, "io-error");
    await store.write((tx) => {
      const rd = tx.resourceDefinition("r1")!;
      tx.putResourceDefinition({
        ...rd,
        props: {
          ...rd.props,
          "DrbdOptions/Net/protocol": "A",
          "DrbdOptions/Net/max-buffers": "8000",
          "DrbdOptions/auto-quorum": "suspend-io",
          "DrbdOptions/Net/no-such-option": "1", // unknown names are left out, not fatal
        },
      });
    });
    const f = file("n2");
    assert.equal(f.protocol, "A");
    assert.equal(f.engineOptions.maxBuffers, 8000);
    assert.equal(f.engineOptions.onNoQuorum, "suspend-io");
    await store.write((tx) => {
      const rd = tx.resourceDefinition("r1")!;
      tx.putResourceDefinition({ ...rd, props: { "DrbdOptions/Resource/quorum": "off" } });
    });
    assert.equal(file("n1").engineOptions.quorum, "off");
  });
});
