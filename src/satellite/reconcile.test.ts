import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";

import { parseResourceFile, localNode } from "../config/resource_file.js";
import {
  contentHash,
  parseVolumeFileName,
  plan,
  reconcile,
  resourceFileFor,
  volumeFileName,
  type Action,
  type DesiredResource,
  type DesiredState,
  type ObservedDaemon,
  type ObservedState,
  type ObservedVolumeFile,
  type VolumeFileRef,
} from "./reconcile.js";

const empty: ObservedState = { pools: [], files: [], resourceFiles: [], running: [] };

function sameRef(a: VolumeFileRef, b: VolumeFileRef): boolean {
  return (
    a.directory === b.directory &&
    a.resource === b.resource &&
    a.volume === b.volume &&
    a.kind === b.kind
  );
}

/**
 * A model of the node: what each action does to the observed state, as the executor does it
 * on disk. It asserts the ordering rules, so a wrong order fails the properties below.
 */
function applyAction(s: ObservedState, a: Action): ObservedState {
  const running = (name: string) => s.running.some((r) => r.resource === name);
  const hasDir = (dir: string) => s.pools.some((p) => p.directory === dir);
  switch (a.type) {
    case "createPoolDirectory":
      assert.ok(!hasDir(a.directory));
      return { ...s, pools: [...s.pools, { directory: a.directory, freeKib: 1e9, totalKib: 1e9 }] };
    case "stopResource":
      assert.ok(running(a.resource));
      return { ...s, running: s.running.filter((r) => r.resource !== a.resource) };
    case "deleteResourceFile":
      assert.ok(!running(a.resource), "resource file deleted while running");
      return { ...s, resourceFiles: s.resourceFiles.filter((r) => r.resource !== a.resource) };
    case "deleteVolumeFile":
      assert.ok(!running(a.file.resource), "volume file deleted while running");
      return { ...s, files: s.files.filter((f) => !sameRef(f, a.file)) };
    case "createBacking":
    case "growBacking": {
      assert.ok(hasDir(a.file.directory), "file created before its pool directory");
      const file: ObservedVolumeFile = { ...a.file, sizeKib: a.sizeKib, metadata: null };
      return { ...s, files: [...s.files.filter((f) => !sameRef(f, a.file)), file] };
    }
    case "createMetadata": {
      const backing = s.files.find((f) => sameRef(f, { ...a.file, kind: "backing" }));
      assert.ok(backing !== undefined, "metadata created before its backing file");
      const metadata = { nodeId: a.nodeId, peerSlots: a.peerSlots, volumeKib: backing.sizeKib };
      const file: ObservedVolumeFile = { ...a.file, sizeKib: 64, metadata };
      return { ...s, files: [...s.files, file] };
    }
    case "writeResourceFile": {
      assert.equal(contentHash(a.content), a.hash);
      const rest = s.resourceFiles.filter((r) => r.resource !== a.resource);
      return { ...s, resourceFiles: [...rest, { resource: a.resource, hash: a.hash }] };
    }
    case "removeDisk": {
      const run = s.running.find((r) => r.resource === a.file.resource);
      assert.equal(run?.hash, a.runningHash, "disk removed before the daemon ran diskless");
      return { ...s, files: s.files.filter((f) => !sameRef(f, a.file)) };
    }
    case "resizeResource": {
      // The daemon grows the metadata of every volume to what its backing file holds.
      assert.ok(running(a.resource), "resized while not running");
      const files = s.files.map((f) => {
        if (f.resource !== a.resource || f.metadata === null) return f;
        const backing = s.files.find((b) => sameRef(b, { ...f, kind: "backing" }));
        return { ...f, metadata: { ...f.metadata, volumeKib: backing?.sizeKib ?? 0 } };
      });
      return { ...s, files };
    }
    case "startResource":
    case "restartResource": {
      const file = s.resourceFiles.find((r) => r.resource === a.resource);
      assert.equal(file?.hash, a.fileHash, "started before its resource file was written");
      assert.equal(running(a.resource), a.type === "restartResource");
      const rest = s.running.filter((r) => r.resource !== a.resource);
      return { ...s, running: [...rest, { resource: a.resource, hash: a.hash }] };
    }
  }
}

const applyAll = (s: ObservedState, actions: readonly Action[]) => actions.reduce(applyAction, s);

const pools = [
  { name: "thick", kind: "FILE", directory: "/pools/thick" },
  { name: "thin", kind: "FILE_THIN", directory: "/pools/thin" },
] as const;

const resourceArb: fc.Arbitrary<DesiredResource> = fc
  .record({
    name: fc.constantFrom("r0", "r1", "pvc_a", "db.x"),
    nodeId: fc.integer({ min: 0, max: 3 }),
    diskless: fc.boolean(),
    pool: fc.constantFrom("thick", "thin"),
    sizesKib: fc.array(
      fc.integer({ min: 1, max: 64 }).map((n) => n * 4),
      {
        minLength: 1,
        maxLength: 2,
      },
    ),
    peerCount: fc.integer({ min: 0, max: 3 }),
  })
  .map(({ name, nodeId, diskless, pool, sizesKib, peerCount }) => {
    const peerIds = [0, 1, 2, 3, 4].filter((id) => id !== nodeId).slice(0, peerCount);
    return {
      name,
      nodeName: "alpha",
      host: "10.0.0.1",
      port: 7000,
      sharedSecret: "s",
      nodeId,
      peerSlots: 3,
      diskless,
      pool,
      volumes: sizesKib.map((sizeKib, volume) => ({ volume, sizeKib })),
      peers: peerIds.map((id) => ({
        name: `peer${id}`,
        nodeId: id,
        host: `10.0.0.${id + 10}`,
        poolDirectory: id % 2 === 0 ? "/pools/thick" : null,
      })),
    };
  });

const desiredArb: fc.Arbitrary<DesiredState> = fc
  .uniqueArray(resourceArb, { selector: (r) => r.name, maxLength: 3 })
  .map((resources) => ({ pools: [...pools], resources }));

describe("satellite reconcile", () => {
  test("reconcile: idempotent from any reachable state", () => {
    fc.assert(
      fc.property(desiredArb, desiredArb, desiredArb, (d1, d2, d3) => {
        // Walk through two earlier desired states, then converge on the third.
        let s = applyAll(empty, reconcile(d1, empty));
        s = applyAll(s, reconcile(d2, s));
        s = applyAll(s, reconcile(d3, s));
        const { actions, problems } = plan(d3, s);
        // Growing a volume past its metadata is reported, not acted on, so it is stable too.
        assert.deepEqual(actions, [], JSON.stringify({ problems }));
      }),
      { seed: 5, numRuns: 300 },
    );
  });

  test("reconcile: resumes after a crash between any two actions", () => {
    fc.assert(
      fc.property(desiredArb, desiredArb, fc.nat(), (d1, d2, cut) => {
        const s1 = applyAll(empty, reconcile(d1, empty));
        const actions = reconcile(d2, s1);
        const crashed = applyAll(s1, actions.slice(0, cut % (actions.length + 1)));
        const s2 = applyAll(crashed, reconcile(d2, crashed));
        assert.deepEqual(reconcile(d2, s2), []);
      }),
      { seed: 6, numRuns: 300 },
    );
  });

  test("reconcile: never deletes or stops a desired resource", () => {
    fc.assert(
      fc.property(desiredArb, desiredArb, (d1, d2) => {
        const s = applyAll(empty, reconcile(d1, empty));
        const names = new Set(d2.resources.map((r) => r.name));
        for (const a of reconcile(d2, s)) {
          if (a.type === "deleteVolumeFile") assert.ok(!names.has(a.file.resource));
          // A desired resource loses its disk files only when it is to be diskless.
          if (a.type === "removeDisk")
            assert.ok(d2.resources.find((r) => r.name === a.file.resource)?.diskless);
          if (a.type === "deleteResourceFile" || a.type === "stopResource")
            assert.ok(!names.has(a.resource));
        }
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  test("reconcile: disk actions, then the resource file, then start, per resource", () => {
    const diskRank: Partial<Record<Action["type"], number>> = {
      createBacking: 0,
      growBacking: 0,
      createMetadata: 1,
      writeResourceFile: 2,
      startResource: 3,
      restartResource: 3,
    };
    const resourceOf = (a: Action) =>
      "file" in a ? a.file.resource : "resource" in a ? a.resource : "";
    fc.assert(
      fc.property(desiredArb, desiredArb, (d1, d2) => {
        const s = applyAll(empty, reconcile(d1, empty));
        const last = new Map<string, number>();
        for (const a of reconcile(d2, s)) {
          const rank = diskRank[a.type];
          if (rank === undefined) continue;
          const key = `${resourceOf(a)}:${"file" in a ? a.file.volume : ""}`;
          const byResource = resourceOf(a);
          assert.ok(rank >= (last.get(key) ?? 0), `${a.type} out of order`);
          // Volumes are brought up one after another; the file and start follow all of them.
          const resourceRank = last.get(byResource) ?? 0;
          if (rank < 2) assert.ok(resourceRank < 2, `${a.type} after the resource file`);
          else assert.ok(rank >= resourceRank, `${a.type} out of order`);
          last.set(key, rank);
          last.set(byResource, Math.max(rank, last.get(byResource) ?? 0));
        }
      }),
      { seed: 10, numRuns: 300 },
    );
  });

  test("reconcile: a resource name that could escape the pool directory is refused", () => {
    const d: DesiredState = {
      pools: [...pools],
      resources: [
        {
          name: "../etc",
          nodeName: "alpha",
          host: "h",
          port: 7000,
          sharedSecret: "s",
          nodeId: 0,
          peerSlots: 1,
          diskless: false,
          pool: "thick",
          volumes: [{ volume: 0, sizeKib: 8 }],
          peers: [],
        },
      ],
    };
    const p = plan(d, {
      ...empty,
      pools: [{ directory: "/pools/thick", freeKib: 9, totalKib: 9 }],
    });
    assert.deepEqual(
      p.actions.map((a) => a.type),
      ["createPoolDirectory"],
    );
    assert.match(p.problems[0]!.message, /not a valid resource name/);
  });

  test("reconcile: a fresh node gets pools, backing, metadata, file and start in order", () => {
    const r: DesiredResource = {
      name: "r0",
      nodeName: "alpha",
      host: "10.0.0.1",
      port: 7000,
      sharedSecret: "s",
      nodeId: 1,
      peerSlots: 2,
      diskless: false,
      pool: "thin",
      volumes: [{ volume: 0, sizeKib: 1024 }],
      peers: [{ name: "beta", nodeId: 0, host: "10.0.0.2", poolDirectory: "/pools/thin" }],
    };
    const actions = reconcile({ pools: [...pools], resources: [r] }, empty);
    assert.deepEqual(
      actions.map((a) => a.type),
      [
        "createPoolDirectory",
        "createPoolDirectory",
        "createBacking",
        "createMetadata",
        "writeResourceFile",
        "startResource",
      ],
    );
    assert.deepEqual(actions[2], {
      type: "createBacking",
      file: { directory: "/pools/thin", resource: "r0", volume: 0, kind: "backing" },
      sizeKib: 1024,
      provisioning: "sparse",
    });
  });

  test("reconcile: metadata of another node-id is reported and never overwritten", () => {
    const d: DesiredState = {
      pools: [pools[0]],
      resources: [
        {
          name: "r0",
          nodeName: "alpha",
          host: "h",
          port: 7000,
          sharedSecret: "s",
          nodeId: 1,
          peerSlots: 1,
          diskless: false,
          pool: "thick",
          volumes: [{ volume: 0, sizeKib: 8 }],
          peers: [],
        },
      ],
    };
    const ref = { directory: "/pools/thick", resource: "r0", volume: 0 };
    const s: ObservedState = {
      ...empty,
      pools: [{ directory: "/pools/thick", freeKib: 100, totalKib: 100 }],
      files: [
        { ...ref, kind: "backing", sizeKib: 8, metadata: null },
        {
          ...ref,
          kind: "metadata",
          sizeKib: 64,
          metadata: { nodeId: 2, peerSlots: 1, volumeKib: 8 },
        },
      ],
    };
    const p = plan(d, s);
    assert.deepEqual(p.actions, []);
    assert.match(p.problems[0]!.message, /node-id 2, not 1/);
  });

  test("reconcile: a preallocated volume larger than the pool's free space is not created", () => {
    const d: DesiredState = {
      pools: [pools[0]],
      resources: [
        {
          name: "r0",
          nodeName: "alpha",
          host: "h",
          port: 7000,
          sharedSecret: "s",
          nodeId: 0,
          peerSlots: 1,
          diskless: false,
          pool: "thick",
          volumes: [{ volume: 0, sizeKib: 400 }],
          peers: [],
        },
      ],
    };
    const s = { ...empty, pools: [{ directory: "/pools/thick", freeKib: 100, totalKib: 100 }] };
    const p = plan(d, s);
    assert.deepEqual(p.actions, []);
    assert.match(p.problems[0]!.message, /needs 400 KiB/);
  });

  test("reconcile: a changed port rewrites the file, then restarts", () => {
    fc.assert(
      fc.property(resourceArb, (r) => {
        const d = { pools: [...pools], resources: [r] };
        const s = applyAll(empty, reconcile(d, empty));
        const moved = { ...r, port: r.port + 1 };
        const types = reconcile({ ...d, resources: [moved] }, s).map((a) => a.type);
        assert.deepEqual(types, ["writeResourceFile", "restartResource"]);
      }),
      { seed: 8, numRuns: 100 },
    );
  });

  test("resourceFileFor: the resource-file parser accepts it and finds this node", () => {
    fc.assert(
      fc.property(resourceArb, (r) => {
        const text = resourceFileFor(r, r.diskless ? null : `/pools/${r.pool}`);
        const file = parseResourceFile(text);
        assert.equal(file.resource, r.name);
        assert.equal(file.sharedSecret, r.sharedSecret);
        assert.equal(file.nodes.length, r.peers.length + 1);
        const self = localNode(file, r.nodeId, "unused");
        assert.equal(self.name, r.nodeName);
        assert.equal(self.address.port, r.port);
        for (const v of r.volumes) {
          const spec = file.volumes.find((x) => x.volume === v.volume);
          assert.equal(spec?.sizeBytes, v.sizeKib * 1024);
          const mine = self.volumes.find((x) => x.volume === v.volume);
          assert.equal(mine?.disk === undefined, r.diskless);
        }
      }),
      { seed: 9, numRuns: 200 },
    );
  });

  test("volume file names round-trip, including names with underscores", () => {
    assert.equal(volumeFileName("pvc_a", 3, "metadata"), "pvc_a_00003.meta");
    assert.deepEqual(parseVolumeFileName("pvc_a_00003.meta"), {
      resource: "pvc_a",
      volume: 3,
      kind: "metadata",
    });
    assert.equal(parseVolumeFileName("notes.txt"), undefined);
  });

  describe("online grow", () => {
    const grown = (nodeId: number, sizeKib: number): DesiredState => ({
      pools: [pools[1]],
      resources: [
        {
          name: "r0",
          nodeName: `n${nodeId}`,
          host: "10.0.0.1",
          port: 7000,
          sharedSecret: "s",
          nodeId,
          peerSlots: 2,
          diskless: false,
          pool: "thin",
          volumes: [{ volume: 0, sizeKib }],
          peers: [0, 1, 2]
            .filter((id) => id !== nodeId)
            .map((id) => ({
              name: `n${id}`,
              nodeId: id,
              host: `10.0.0.${id + 10}`,
              poolDirectory: id === 2 ? null : "/pools/thin",
            })),
        },
      ],
    });
    const daemon = (
      d: DesiredState,
      sizeKib: number,
      over: { role?: string; peerRole?: string; replication?: string } = {},
    ): ObservedDaemon => ({
      resource: "r0",
      role: over.role ?? "Secondary",
      volumes: [{ volume: 0, disk: "UpToDate", sizeKib }],
      peers: d.resources[0]!.peers.map((p) => ({
        nodeId: p.nodeId,
        role: over.peerRole ?? "Secondary",
        volumes: [
          {
            volume: 0,
            replication:
              p.poolDirectory === null ? "Established" : (over.replication ?? "Established"),
            peerDisk: p.poolDirectory === null ? "Diskless" : "UpToDate",
          },
        ],
      })),
    });

    test("grows the file, keeps the daemon and the file's size until the resize", () => {
      const small = grown(0, 64);
      const s = applyAll(empty, reconcile(small, empty));
      const big = grown(0, 128);
      const actions = reconcile(big, s);
      // Growing the backing file; the resource file still says what the metadata serves.
      assert.deepEqual(
        actions.map((a) => a.type),
        ["growBacking"],
      );
      const s2 = applyAll(s, actions);
      assert.deepEqual(reconcile(big, s2), [], "no resize without the daemon's status");
      const withStatus = { ...s2, daemons: [daemon(big, 64)] };
      assert.deepEqual(
        reconcile(big, withStatus).map((a) => a.type),
        ["resizeResource"],
      );
      // After the resize the file takes the new size, and the daemon is not restarted.
      const s3 = applyAll(withStatus, reconcile(big, withStatus));
      const after = reconcile(big, { ...s3, daemons: [daemon(big, 128)] });
      assert.deepEqual(
        after.map((a) => a.type),
        ["writeResourceFile"],
      );
      const file = after[0]!.type === "writeResourceFile" ? after[0]!.content : "";
      assert.match(file, /"size": "128K"/);
    });

    test("one node resizes: the Primary, else the lowest diskful node-id, once all are ready", () => {
      for (const [nodeId, over, expected] of [
        [0, {}, true],
        [1, {}, false],
        [1, { role: "Primary" }, true],
        [0, { peerRole: "Primary" }, false],
        [0, { replication: "SyncSource" }, false],
      ] as const) {
        const small = grown(nodeId, 64);
        const s = applyAll(empty, reconcile(small, empty));
        const big = grown(nodeId, 128);
        const s2 = applyAll(s, reconcile(big, s));
        const types = reconcile(big, { ...s2, daemons: [daemon(big, 64, over)] }).map(
          (a) => a.type,
        );
        assert.deepEqual(types, expected ? ["resizeResource"] : [], JSON.stringify(over));
      }
    });
  });

  test("toggle-disk: diskless restarts, then removes the disk files; joining starts Inconsistent", () => {
    const r: DesiredResource = {
      name: "r0",
      nodeName: "alpha",
      host: "10.0.0.1",
      port: 7000,
      sharedSecret: "s",
      nodeId: 1,
      peerSlots: 2,
      diskless: false,
      pool: "thick",
      volumes: [{ volume: 0, sizeKib: 64 }],
      peers: [{ name: "beta", nodeId: 0, host: "10.0.0.2", poolDirectory: "/pools/thick" }],
    };
    const d = { pools: [...pools], resources: [r] };
    const s = applyAll(empty, reconcile(d, empty));
    const dl = { ...d, resources: [{ ...r, diskless: true }] };
    const actions = reconcile(dl, s);
    assert.deepEqual(
      actions.map((a) => a.type),
      ["writeResourceFile", "restartResource", "removeDisk", "removeDisk"],
    );
    const removed = actions.filter((a) => a.type === "removeDisk").map((a) => a.file.kind);
    assert.deepEqual(removed, ["metadata", "backing"]);
    const s2 = applyAll(s, actions);
    assert.deepEqual(reconcile(dl, s2), []);
    assert.equal(s2.files.length, 0);
    // Back to diskful, joining peers with data: new metadata, Inconsistent.
    const back = reconcile({ ...d, resources: [{ ...r, joining: true }] }, s2);
    const md = back.find((a) => a.type === "createMetadata");
    assert.equal(md?.type === "createMetadata" && md.inconsistent, true);
  });
});
