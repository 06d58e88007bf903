import assert from "node:assert/strict";
import { test } from "node:test";

import { cephRbdTarget, cephUnavailable, quorumDaemonArgs } from "./peer_targets.js";

test("qemu-quorum: a 2-of-3 quorum over three NBD children, exported writable on a socket", () => {
  const args = quorumDaemonArgs([1001, 1002, 1003], "/run/q.sock");
  const blockdevs = args.filter((_, i) => args[i - 1] === "--blockdev");
  assert.equal(blockdevs.length, 4);
  assert.match(blockdevs[0]!, /^driver=nbd,node-name=child0,.*server\.port=1001$/);
  assert.equal(
    blockdevs[3],
    "driver=quorum,node-name=quorum,vote-threshold=2,read-pattern=quorum," +
      "children.0=child0,children.1=child1,children.2=child2",
  );
  assert.deepEqual(args.slice(-4), [
    "--nbd-server",
    "addr.type=unix,addr.path=/run/q.sock",
    "--export",
    "type=nbd,id=export0,node-name=quorum,name=disk,writable=on",
  ]);
  assert.ok(!args.some((a) => a.includes("iothread")), "no iothread (BENCH.md)");
});

test("ceph-rbd: unavailable only with a reason found on this machine, never an empty one", async () => {
  const reason = await cephUnavailable();
  if (reason !== null) {
    assert.match(reason, /^(not installed: .*scripts\/install-deps\.sh --bench-peers|fio lacks)/);
  }
  assert.equal(await cephRbdTarget.unavailable?.(), reason);
});
