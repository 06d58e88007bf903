import { test } from "node:test";
import assert from "node:assert/strict";
import { MiniCluster } from "./mini_cluster.js";
import type { ResourceConfig, ResourceOptions, Protocol } from "./types.js";

function cfg(
  n: number,
  options: Partial<ResourceOptions> = {},
  extra: Partial<ResourceConfig> = {},
): ResourceConfig {
  const nodes = [];
  for (let i = 0; i < n; i++) nodes.push({ id: i, name: `n${i}`, disk: "diskful" as const });
  return {
    name: "r0",
    nodes,
    sizeBlocks: 64,
    options: { alExtentBlocks: 8, alExtents: 4, ...options },
    ...extra,
  };
}

function up(c: MiniCluster): void {
  c.settle();
}

test("replica: two nodes connect and establish without sync", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  for (const id of [0, 1]) {
    const r = c.node(id);
    assert.equal(r.disk, "UpToDate");
    const p = r.peer(1 - id)!;
    assert.equal(p.connection, "Connected");
    assert.equal(p.replication, "Established");
  }
});

test("replica: protocol C write completes only after the peer's write ack", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  const id = c.write(0, 3, 0xab);
  // Complete everything except the peer's disk write.
  for (let i = 0; i < 20; i++) {
    c.deliver();
    c.completeIo((io) => io.node === 0);
  }
  assert.equal(c.completions.get(id), undefined);
  c.settle();
  assert.equal(c.completions.get(id)?.ok, true);
  assert.equal(c.byteAt(0, 3), 0xab);
  assert.equal(c.byteAt(1, 3), 0xab);
});

test("replica: fault completeBeforePeerAck completes before the peer wrote", () => {
  const c = new MiniCluster(cfg(2, {}, { faultInjection: { completeBeforePeerAck: true } }));
  up(c);
  c.adminSync(0, { type: "primary" });
  const id = c.write(0, 3, 0xab);
  for (let i = 0; i < 20; i++) {
    c.deliver();
    c.completeIo((io) => io.node === 0);
  }
  assert.equal(c.completions.get(id)?.ok, true);
  assert.equal(c.byteAt(1, 3), 0);
});

for (const protocol of ["A", "B"] as Protocol[]) {
  test(`replica: protocol ${protocol} completes without the peer's disk write`, () => {
    const c = new MiniCluster({ ...cfg(2), protocol });
    up(c);
    c.adminSync(0, { type: "primary" });
    const id = c.write(0, 5, 7);
    for (let i = 0; i < 20; i++) {
      c.deliver();
      c.completeIo((io) => io.node === 0);
    }
    assert.equal(c.completions.get(id)?.ok, true);
    c.settle();
    assert.equal(c.byteAt(1, 5), 7);
  });
}

test("replica: activity-log transaction is durable before the data write is issued", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 40, 1);
  const kinds = c.pendingIo.filter((io) => io.node === 0).map((io) => io.effect.type);
  assert.ok(kinds.includes("metadataWrite"));
  assert.ok(!kinds.includes("diskWrite"), "data write waits for the AL transaction");
  c.completeIo((io) => io.node === 0 && io.effect.type === "metadataWrite");
  const after = c.pendingIo.filter((io) => io.node === 0).map((io) => io.effect.type);
  assert.ok(after.includes("diskWrite"));
});

test("replica: fault skipActivityLog issues the data write at once", () => {
  const c = new MiniCluster(cfg(2, {}, { faultInjection: { skipActivityLog: true } }));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 40, 1);
  const kinds = c.pendingIo.filter((io) => io.node === 0).map((io) => io.effect.type);
  assert.ok(kinds.includes("diskWrite"));
});

test("replica: a second primary is refused while a connected peer is primary", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  const r = c.adminSync(1, { type: "primary" });
  assert.equal(r.ok, false);
  assert.equal(r.error, "Multiple primaries not allowed by config");
  assert.equal(c.node(1).role, "Secondary");
});

test("replica: allow-two-primaries permits dual primary", () => {
  const c = new MiniCluster(cfg(2, { allowTwoPrimaries: true }));
  up(c);
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  assert.equal(c.adminSync(1, { type: "primary" }).ok, true);
});

test("replica: concurrent promotions: exactly one wins", () => {
  const c = new MiniCluster(cfg(3));
  up(c);
  const a = c.adminCmd(1, { type: "primary" });
  const b = c.adminCmd(2, { type: "primary" });
  c.settle();
  const oks = [c.admin.get(a)!.ok, c.admin.get(b)!.ok].filter((x) => x).length;
  assert.equal(oks, 1);
  const primaries = [0, 1, 2].filter((i) => c.node(i).role === "Primary").length;
  assert.equal(primaries, 1);
});

test("replica: secondary reconnecting after writes resyncs by bitmap", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.partition([1]);
  const ids = [c.write(0, 1, 9), c.write(0, 20, 8, 2)];
  c.settle();
  for (const id of ids) assert.equal(c.completions.get(id)?.ok, true);
  assert.equal(c.node(0).peer(1)!.bitmap.count(), 3);
  assert.notEqual(c.node(0).currentUuid, c.node(1).currentUuid);
  c.heal();
  assert.ok(
    c.runUntil(
      () => c.node(1).peer(0)!.replication === "Established" && c.node(1).disk === "UpToDate",
      200,
    ),
  );
  assert.ok(c.sameData(0, 1));
  assert.equal(c.node(0).peer(1)!.bitmap.count(), 0);
  assert.equal(c.node(0).currentUuid, c.node(1).currentUuid);
});

test("replica: flush waits for the peer's barrier ack", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 2, 5);
  c.settle();
  const f = c.flush(0);
  for (let i = 0; i < 10; i++) {
    c.deliver();
    c.completeIo((io) => io.node === 0 || io.effect.type !== "diskFlush");
  }
  assert.equal(c.completions.get(f), undefined);
  c.settle();
  assert.equal(c.completions.get(f)?.ok, true);
  assert.equal(c.diskDurable[1]![2 * 4096], 5);
});

function cfgDiskless(options: Partial<ResourceOptions> = {}): ResourceConfig {
  return {
    name: "r0",
    nodes: [
      { id: 0, name: "n0", disk: "diskful" },
      { id: 1, name: "n1", disk: "diskful" },
      { id: 2, name: "n2", disk: "diskless" },
    ],
    sizeBlocks: 64,
    options: { alExtentBlocks: 8, alExtents: 4, ...options },
  };
}

test("read: prefer-local reads the local disk, prefer-remote a peer", () => {
  for (const [policy, remote] of [
    ["prefer-local", false],
    ["prefer-remote", true],
  ] as const) {
    const c = new MiniCluster(cfg(2, { readBalancing: policy }));
    up(c);
    c.adminSync(0, { type: "primary" });
    c.write(0, 4, 0x11);
    c.settle();
    const sent: number[] = [];
    const id = c.read(0, 4);
    for (const io of c.pendingIo) if (io.node === 0 && io.effect.type === "diskRead") sent.push(0);
    c.settle();
    assert.equal(c.completions.get(id)?.data?.[0], 0x11);
    assert.equal(sent.length === 0, remote, policy);
  }
});

test("diskless: a diskless primary writes through peers and fails a read over to another peer", () => {
  const c = new MiniCluster(cfgDiskless());
  up(c);
  assert.equal(c.adminSync(2, { type: "primary" }).ok, true);
  const w = c.write(2, 9, 0x42);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  assert.equal(c.byteAt(0, 9), 0x42);
  assert.equal(c.byteAt(1, 9), 0x42);
  // The read goes to one peer; that peer's link breaks before it answers.
  const r = c.read(2, 9);
  const target = c.node(2).peers.find((p) => p.readsPending > 0)!.peer;
  c.breakLink(2, target);
  c.settle();
  assert.equal(c.completions.get(r)?.ok, true);
  assert.equal(c.completions.get(r)?.data?.[0], 0x42);
});

test("quorum: on-no-quorum=io-error fails writes on an isolated primary", () => {
  const c = new MiniCluster(cfg(3, { quorum: "majority", onNoQuorum: "io-error" }));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.partition([0]);
  assert.equal(c.node(0).quorum, false);
  assert.equal(c.node(0).canWrite(), false);
  const w = c.write(0, 1, 1);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, false);
  // The majority may promote; the old primary cannot.
  assert.equal(c.adminSync(1, { type: "primary" }).ok, true);
});

test("quorum: on-no-quorum=suspend-io holds writes until quorum returns", () => {
  const c = new MiniCluster(cfg(3, { quorum: "majority", onNoQuorum: "suspend-io" }));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.partition([0]);
  assert.equal(c.node(0).suspended, true);
  const w = c.write(0, 1, 7);
  c.settle();
  assert.equal(c.completions.get(w), undefined);
  c.heal();
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  assert.ok(c.runUntil(() => c.sameData(0, 1) && c.sameData(0, 2), 300));
});

test("quorum: a secondary without quorum refuses promotion", () => {
  const c = new MiniCluster(cfg(3, { quorum: "majority" }));
  up(c);
  c.partition([2]);
  const r = c.adminSync(2, { type: "primary" });
  assert.equal(r.ok, false);
  assert.equal(r.error, "No quorum");
});

test("split brain: after-sb-0pri=disconnect leaves both StandAlone; discard-my-data resolves", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 1, 1);
  c.settle();
  c.partition([1]);
  c.adminSync(1, { type: "primary" });
  c.write(0, 2, 2);
  c.write(1, 3, 3);
  c.settle();
  c.adminSync(0, { type: "secondary" });
  c.adminSync(1, { type: "secondary" });
  c.heal();
  c.tick(20);
  assert.ok(c.log.some((l) => l.includes('"splitBrain"')));
  assert.equal(c.node(0).peer(1)!.connection, "StandAlone");
  assert.equal(c.node(1).peer(0)!.connection, "StandAlone");
  assert.notEqual(c.byteAt(0, 3), c.byteAt(1, 3), "never merged silently");
  // The operator discards n1's changes.
  c.adminSync(1, { type: "connect", discardMyData: true });
  c.adminSync(0, { type: "connect" });
  assert.ok(
    c.runUntil(
      () => c.node(1).disk === "UpToDate" && c.node(1).peer(0)!.replication === "Established",
      500,
    ),
  );
  assert.ok(c.sameData(0, 1));
  assert.equal(c.byteAt(1, 2), 2);
  assert.equal(c.byteAt(1, 3), 0);
});

test("split brain: after-sb-0pri=discard-zero-changes picks the side that wrote nothing", () => {
  const c = new MiniCluster(cfg(2, { afterSb0pri: "discard-zero-changes" }));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.partition([1]);
  c.write(0, 5, 5);
  c.settle();
  c.adminSync(1, { type: "primary" }); // promoted alone: a new generation, no writes
  c.adminSync(1, { type: "secondary" });
  c.adminSync(0, { type: "secondary" });
  c.heal();
  assert.ok(
    c.runUntil(
      () => c.node(1).peer(0)!.replication === "Established" && c.node(1).disk === "UpToDate",
      500,
    ),
  );
  assert.ok(c.log.some((l) => l.startsWith("1:") && l.includes('"victim"')));
  assert.ok(c.sameData(0, 1));
});

test("recovery: a crashed primary's activity-log extents are resynced on restart", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 1, 1);
  c.settle();
  c.flush(0);
  c.settle();
  // A write reaches the primary's disk cache only; the primary crashes.
  c.write(0, 17, 9);
  c.completeIo((io) => io.node === 0 && io.effect.type === "metadataWrite");
  c.completeIo((io) => io.node === 0 && io.effect.type === "diskWrite");
  c.crash(0);
  c.restart(0);
  // The AL extents it held are marked out of sync for the peer at start.
  assert.ok(c.node(0).peer(1)!.bitmap.count() > 0);
  assert.ok(
    c.runUntil(
      () => c.node(0).disk === "UpToDate" && c.node(0).peer(1)!.replication === "Established",
      500,
    ),
  );
  assert.ok(c.sameData(0, 1));
});

test("resync: checksum-based resync skips blocks that are already equal", () => {
  const c = new MiniCluster(cfg(2, { csumsAlg: true }));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.partition([1]);
  c.write(0, 3, 3, 2);
  c.settle();
  c.heal();
  let replies = 0;
  let inSync = 0;
  const orig = c.step.bind(c);
  c.step = (id, e) => {
    if (e.type === "peerMessage" && e.message.type === "resyncReply") replies++;
    if (e.type === "peerMessage" && e.message.type === "inSync") inSync++;
    orig(id, e);
  };
  assert.ok(
    c.runUntil(
      () => c.node(1).peer(0)!.replication === "Established" && c.node(1).disk === "UpToDate",
      500,
    ),
  );
  assert.ok(c.sameData(0, 1));
  assert.equal(replies + inSync > 0, true);
});

test("verify: online verify marks differing blocks and repairs them", () => {
  const c = new MiniCluster(cfg(2, { verifyAlg: true }));
  up(c);
  // Corrupt a block on n1 behind the engine's back.
  c.diskData[1]![5 * 4096] = 0x77;
  const r = c.adminSync(0, { type: "verify", peer: 1 });
  assert.equal(r.ok, true);
  assert.ok(c.runUntil(() => c.log.some((l) => l.includes('"verifyDone"')), 500));
  assert.ok(
    c.log.some((l) => l.includes('"outOfSyncBlocks":1') || l.includes('"outOfSyncBlocks":8')),
  );
  assert.ok(c.runUntil(() => c.sameData(0, 1) && c.node(1).disk === "UpToDate", 500));
});

test("verify: refused without a verify algorithm", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  const r = c.adminSync(0, { type: "verify", peer: 1 });
  assert.equal(r.error, "Need a verify algorithm to start online verify");
});

test("ping: a silent peer is declared lost after ping-timeout and its writes are tracked", () => {
  const c = new MiniCluster(cfg(2, { pingIntTicks: 3, pingTimeoutTicks: 2 }));
  up(c);
  c.adminSync(0, { type: "primary" });
  // Messages to n1 stop flowing (nothing delivered), but the link stays "up".
  for (let i = 0; i < 10; i++) {
    for (const n of [0, 1]) c.step(n, { type: "tick" });
    c.completeIo();
  }
  assert.notEqual(c.node(0).peer(1)!.connection, "Connected");
});

test("overlap: a later overlapping write waits for the earlier one", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 2, 1, 2);
  c.write(0, 3, 2, 2);
  const writes = c.pendingIo.filter((io) => io.node === 0 && io.effect.type === "diskWrite");
  assert.ok(writes.length <= 1, "only the first write is issued");
  c.settle();
  assert.equal(c.byteAt(0, 3), 2);
  assert.equal(c.byteAt(1, 3), 2);
});

test("auto-promote: open promotes, close demotes", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  assert.equal(c.adminSync(0, { type: "open" }).ok, true);
  assert.equal(c.node(0).role, "Primary");
  assert.equal(c.adminSync(1, { type: "open" }).ok, false);
  assert.equal(c.adminSync(0, { type: "close" }).ok, true);
  c.settle();
  assert.equal(c.node(0).role, "Secondary");
  assert.equal(c.adminSync(1, { type: "open" }).ok, true);
});

test("bounds: writes past the end fail with ENOSPC, misaligned with EINVAL", () => {
  const c = new MiniCluster(cfg(2));
  up(c);
  c.adminSync(0, { type: "primary" });
  const a = c.write(0, 64, 1);
  const requestId = 999;
  c.step(0, {
    type: "clientWrite",
    requestId,
    offsetBytes: 100,
    data: new Uint8Array(4096),
    fua: false,
  });
  assert.equal(c.completions.get(a)?.error, "ENOSPC");
  assert.equal(c.completions.get(requestId)?.error, "EINVAL");
});

test("fault knobs: each one breaks its rule (for the simulator's checkers)", () => {
  // skipBitmapMarking: a write while the peer is away leaves no bits.
  {
    const c = new MiniCluster(cfg(2, {}, { faultInjection: { skipBitmapMarking: true } }));
    up(c);
    c.adminSync(0, { type: "primary" });
    c.partition([1]);
    c.write(0, 4, 4);
    c.settle();
    assert.equal(c.node(0).peer(1)!.bitmap.count(), 0);
  }
  // flushWithoutBarrier: the flush completes before the peer flushed.
  {
    const c = new MiniCluster(cfg(2, {}, { faultInjection: { flushWithoutBarrier: true } }));
    up(c);
    c.adminSync(0, { type: "primary" });
    c.write(0, 2, 5);
    c.settle();
    const f = c.flush(0);
    for (let i = 0; i < 10; i++) {
      c.deliver();
      c.completeIo((io) => io.node === 0 || io.effect.type !== "diskFlush");
    }
    assert.equal(c.completions.get(f)?.ok, true);
    assert.equal(c.diskDurable[1]![2 * 4096], 0);
  }
  // ignoreSinglePrimary: a second primary is allowed while connected.
  {
    const c = new MiniCluster(cfg(2, {}, { faultInjection: { ignoreSinglePrimary: true } }));
    up(c);
    c.adminSync(0, { type: "primary" });
    assert.equal(c.adminSync(1, { type: "primary" }).ok, true);
  }
  // mergeSplitBrain: both sides' writes stay, connected as if in sync.
  {
    const c = new MiniCluster(cfg(2, {}, { faultInjection: { mergeSplitBrain: true } }));
    up(c);
    c.adminSync(0, { type: "primary" });
    c.partition([1]);
    c.adminSync(1, { type: "primary" });
    c.write(0, 2, 2);
    c.write(1, 3, 3);
    c.settle();
    c.adminSync(0, { type: "secondary" });
    c.adminSync(1, { type: "secondary" });
    c.heal();
    c.tick(5);
    assert.equal(c.node(0).peer(1)!.connection, "Connected");
    assert.equal(
      c.log.some((l) => l.includes('"splitBrain"')),
      false,
    );
  }
});

test("recovery: a crashed secondary resyncs its activity-log extents from a survivor", () => {
  const c = new MiniCluster(cfg(3));
  up(c);
  c.adminSync(0, { type: "primary" });
  const w = c.write(0, 20, 0x5a);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  // n1 acked from its volatile cache; it crashes before any flush, and so does the Primary.
  c.crash(1);
  c.crash(0);
  assert.equal(c.byteAt(1, 20), 0);
  assert.equal(c.byteAt(2, 20), 0x5a);
  c.restart(1);
  assert.ok(c.node(1).peer(2)!.bitmap.isSet(20), "logged extents are marked at restart");
  assert.ok(
    c.runUntil(
      () => c.node(1).peer(2)!.replication === "Established" && c.node(1).disk === "UpToDate",
      500,
    ),
  );
  assert.equal(c.byteAt(1, 20), 0x5a);
});

test("replica: an ack over a link that broke before the write completed does not clear bits", () => {
  const c = new MiniCluster(cfg(3));
  up(c);
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  // n2 never finishes the write; n1 writes it (acks) but never flushes it.
  const held = (io: { node: number; effect: { type: string } }): boolean =>
    !(io.node === 2 && io.effect.type === "diskWrite") &&
    !(io.node === 1 && io.effect.type === "diskFlush");
  const id = c.write(0, 5, 0xcd);
  for (let i = 0; i < 50; i++) {
    c.deliver();
    c.completeIo(held);
  }
  assert.equal(c.completions.get(id), undefined, "still waiting for n2");
  // n1 loses its cache, restarts and reconnects (no tick: no resync yet).
  c.crash(1);
  c.completeIo(held);
  c.restart(1);
  for (let i = 0; i < 50; i++) {
    c.connectAll();
    c.deliver();
    c.completeIo(held);
  }
  assert.equal(c.byteAt(1, 5), 0, "n1 lost the write");
  // Now the write completes: n1's old ack must not clear its bit.
  c.settle();
  assert.equal(c.completions.get(id)?.ok, true);
  assert.equal(c.node(0).peer(1)!.bitmap.isSet(5), true, "block 5 still marked for n1");
  assert.ok(
    c.runUntil(() => c.byteAt(1, 5) === 0xcd, 200),
    "block 5 is resynced to n1",
  );
});

test("down: a clean detach leaves an empty activity log, so a restart resyncs nothing", () => {
  const c = new MiniCluster(cfg(3));
  up(c);
  c.adminSync(0, { type: "primary" });
  const w = c.write(0, 20, 0x5a);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  assert.equal(c.adminSync(0, { type: "down" }).ok, false, "a Primary is refused");
  assert.equal(c.adminSync(1, { type: "down" }).ok, true);
  assert.equal(c.node(1).peer(0)!.connection, "StandAlone");
  assert.deepEqual(c.node(1).alExtents, []);
  // The process exits; whatever was flushed is all that is left, and nothing is marked.
  c.crash(1);
  assert.equal(c.byteAt(1, 20), 0x5a, "the write was flushed before the detach completed");
  c.restart(1);
  assert.equal(c.node(1).peer(0)!.bitmap.count(), 0, "no activity-log extent is marked");
  assert.equal(c.node(1).peer(2)!.bitmap.count(), 0);
});

test("down: a Secondary that crashes instead marks its logged extents (the contrast)", () => {
  const c = new MiniCluster(cfg(3));
  up(c);
  c.adminSync(0, { type: "primary" });
  c.write(0, 20, 0x5a);
  c.settle();
  c.crash(1);
  c.restart(1);
  assert.ok(c.node(1).peer(0)!.bitmap.isSet(20));
});

test("single node: a one-node resource restarts UpToDate and can be promoted", () => {
  const c = new MiniCluster(cfg(1));
  up(c);
  assert.equal(c.node(0).disk, "UpToDate");
  assert.equal(c.adminSync(0, { type: "primary" }).ok, true);
  const w = c.write(0, 3, 0x11);
  c.settle();
  assert.equal(c.completions.get(w)?.ok, true);
  c.crash(0);
  c.restart(0);
  assert.equal(c.node(0).disk, "UpToDate");
});
