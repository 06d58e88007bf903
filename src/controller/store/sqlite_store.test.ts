import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { databaseFileName, openSqliteStore, StoreError } from "./sqlite_store.js";
import { migrations } from "./migrations.js";
import type { ControllerStore, StoreWriter } from "./store.js";

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "mirra-store-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** One object of every kind, linked the way the API links them. */
function populate(tx: StoreWriter): void {
  tx.setControllerProps({ "Aux/site": "lab" });
  tx.putNode({
    name: "Alpha",
    type: "SATELLITE",
    flags: [],
    props: { "Aux/zone": "a" },
    netInterfaces: [
      {
        name: "default",
        address: "127.0.0.1",
        satellitePort: 3366,
        encryptionType: "PLAIN",
        isActive: true,
        uuid: "u-nif",
      },
    ],
    uuid: "u-node",
  });
  tx.putStoragePool({
    node: "Alpha",
    name: "pool1",
    providerKind: "FILE_THIN",
    props: { "StorDriver/FileDir": "/var/lib/mirra/pool1" },
    sharedSpace: null,
    externalLocking: false,
    uuid: "u-sp",
  });
  tx.putResourceGroup({
    name: "rg1",
    description: "fast",
    props: {},
    selectFilter: { place_count: 3, replicas_on_different: ["Aux/zone"] },
    peerSlots: null,
    uuid: "u-rg",
  });
  tx.putVolumeGroup({ resourceGroup: "rg1", volumeNumber: 0, props: {}, flags: [], uuid: "u-vg" });
  tx.putResourceDefinition({
    name: "r1",
    externalName: null,
    resourceGroup: "rg1",
    props: { "DrbdOptions/Net/protocol": "C" },
    flags: [],
    port: 7000,
    secret: "s3cret",
    peerSlots: 7,
    transportType: "IP",
    uuid: "u-rd",
  });
  tx.putVolumeDefinition({
    resourceDefinition: "r1",
    volumeNumber: 0,
    sizeKib: 1048576,
    props: {},
    flags: [],
    minorNumber: 1000,
    uuid: "u-vd",
  });
  tx.putResource({
    resourceDefinition: "r1",
    node: "Alpha",
    props: { StorPoolName: "pool1" },
    flags: [],
    storagePool: "pool1",
    nodeId: 0,
    createTimestampMs: 1_700_000_000_123,
    uuid: "u-r",
  });
  tx.putKeyValueStore({ name: "csi", props: { a: "b" } });
}

function snapshot(store: ControllerStore): unknown {
  return store.read((tx) => ({
    ctrl: tx.controllerProps(),
    nodes: tx.nodes(),
    pools: tx.storagePools(),
    groups: tx.resourceGroups(),
    vgs: tx.volumeGroups("rg1"),
    rds: tx.resourceDefinitions(),
    vds: tx.volumeDefinitions(),
    rscs: tx.resources(),
    kvs: tx.keyValueStores(),
  }));
}

test(
  "store: a reopened store reads back everything that was written",
  withDir(async (dir) => {
    const first = openSqliteStore({ dataDir: dir });
    await first.write(populate);
    const before = snapshot(first);
    first.close();
    const second = openSqliteStore({ dataDir: dir });
    assert.deepEqual(snapshot(second), before);
    const r = second.read((tx) => tx.resource("R1", "alpha"));
    assert.equal(r?.createTimestampMs, 1_700_000_000_123);
    assert.equal(r?.node, "Alpha", "names keep the case they were created with");
    second.close();
  }),
);

test(
  "store: a fresh database is at the latest schema version and has DfltRscGrp",
  withDir((dir) => {
    const store = openSqliteStore({ dataDir: dir });
    assert.deepEqual(
      store.read((tx) => tx.resourceGroups().map((g) => g.name)),
      ["DfltRscGrp"],
    );
    store.close();
    const db = new Database(join(dir, databaseFileName));
    const row = db.prepare("SELECT version FROM schema_version").all();
    db.close();
    assert.deepEqual(row, [{ version: migrations[migrations.length - 1]!.version }]);
  }),
);

test(
  "store: a later migration runs once on reopen, in a transaction",
  withDir((dir) => {
    openSqliteStore({ dataDir: dir }).close();
    const latest = migrations[migrations.length - 1]!.version;
    let runs = 0;
    const more = [
      ...migrations,
      {
        version: latest + 1,
        description: "test",
        up(db: Database.Database) {
          runs++;
          db.exec("CREATE TABLE extra (x INTEGER)");
        },
      },
    ];
    openSqliteStore({ dataDir: dir, migrations: more }).close();
    openSqliteStore({ dataDir: dir, migrations: more }).close();
    assert.equal(runs, 1);
    // A failing migration leaves the schema version and the tables as they were.
    const failing = [
      ...more,
      {
        version: latest + 2,
        description: "fails",
        up(db: Database.Database) {
          db.exec("CREATE TABLE half (x INTEGER)");
          throw new Error("boom");
        },
      },
    ];
    assert.throws(() => openSqliteStore({ dataDir: dir, migrations: failing }), StoreError);
    const db = new Database(join(dir, databaseFileName));
    assert.deepEqual(db.prepare("SELECT version FROM schema_version").all(), [
      { version: latest + 1 },
    ]);
    assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get(), undefined);
    db.close();
  }),
);

test(
  "store: a database newer than the controller is refused",
  withDir((dir) => {
    openSqliteStore({ dataDir: dir }).close();
    const db = new Database(join(dir, databaseFileName));
    db.prepare("UPDATE schema_version SET version = 99").run();
    db.close();
    assert.throws(() => openSqliteStore({ dataDir: dir }), /schema version 99/);
  }),
);

test(
  "store: a second controller on the same data directory is refused",
  withDir((dir) => {
    const first = openSqliteStore({ dataDir: dir });
    assert.throws(() => openSqliteStore({ dataDir: dir }), StoreError);
    first.close();
    openSqliteStore({ dataDir: dir }).close();
  }),
);

test(
  "store: a write that throws changes nothing",
  withDir(async (dir) => {
    const store = openSqliteStore({ dataDir: dir });
    await store.write(populate);
    const before = snapshot(store);
    await assert.rejects(
      store.write((tx) => {
        tx.deleteResourceDefinition("r1");
        tx.putKeyValueStore({ name: "other", props: {} });
        throw new Error("refused");
      }),
      /refused/,
    );
    assert.deepEqual(snapshot(store), before);
    store.close();
  }),
);

test(
  "store: deleting a definition or a node removes its children; lookups ignore case",
  withDir(async (dir) => {
    const store = openSqliteStore({ dataDir: dir });
    await store.write(populate);
    await store.write((tx) => tx.deleteResourceDefinition("R1"));
    assert.deepEqual(
      store.read((tx) => [tx.volumeDefinitions(), tx.resources()]),
      [[], []],
    );
    await store.write(populate);
    await store.write((tx) => tx.deleteNode("ALPHA"));
    assert.deepEqual(
      store.read((tx) => [tx.storagePools(), tx.resources(), tx.resourceDefinitions().length]),
      [[], [], 1],
    );
    // A group that a definition still uses cannot go: the database refuses, not just the API.
    await assert.rejects(
      store.write((tx) => tx.deleteResourceGroup("RG1")),
      /FOREIGN KEY/,
    );
    await store.write((tx) => {
      tx.deleteResourceDefinition("r1");
      tx.deleteResourceGroup("RG1");
    });
    assert.equal(
      store.read((tx) => tx.resourceGroup("rg1")),
      undefined,
    );
    store.close();
  }),
);

test(
  "store: resource filters by definition, node and pool",
  withDir(async (dir) => {
    const store = openSqliteStore({ dataDir: dir });
    await store.write(populate);
    store.read((tx) => {
      assert.equal(tx.resources({ node: "alpha" }).length, 1);
      assert.equal(tx.resources({ resourceDefinition: "nope" }).length, 0);
      assert.equal(tx.resources({ storagePool: "POOL1" }).length, 1);
    });
    store.close();
  }),
);
