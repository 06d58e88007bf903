import { test } from "node:test";
import assert from "node:assert/strict";
import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { formatSyncProgress, syncProgress } from "./sync_progress.js";

function status(outOfSyncKiB: number, donePercent: number | undefined): ResourceStatus {
  return {
    resource: "r0",
    nodeId: 0,
    nodeName: "n0",
    up: true,
    role: "Secondary",
    volumes: [
      {
        volume: 0,
        sizeBytes: 1 << 30,
        disk: "Inconsistent",
        quorum: true,
        suspended: false,
        writesInFlight: 0,
      },
    ],
    connections: [
      {
        nodeId: 1,
        name: "n1",
        connection: "Connected",
        role: "Primary",
        volumes: [
          {
            volume: 0,
            replication: donePercent === undefined ? "Established" : "SyncTarget",
            peerDisk: "UpToDate",
            outOfSyncKiB,
            ...(donePercent !== undefined ? { donePercent } : {}),
          },
        ],
      },
    ],
  };
}

test("sync progress: rate and ETA come from the out-of-sync amount between two samples", () => {
  const first = syncProgress(undefined, [status(40960, 60)], 1);
  assert.equal(first.length, 1);
  assert.equal(first[0]!.rateBytesPerSecond, undefined);
  assert.match(formatSyncProgress(first[0]!), /ETA -$/);
  const second = syncProgress([status(40960, 60)], [status(20480, 80)], 2);
  assert.equal(second[0]!.rateBytesPerSecond, 10 * 1024 * 1024);
  assert.equal(second[0]!.etaSeconds, 2);
  assert.equal(
    formatSyncProgress(second[0]!, 10),
    "r0 n1/0 SyncTarget  [########--]   80.0%  20.0 MiB left  10.0 MiB/s  ETA 0:02",
  );
});

test("sync progress: peers that are not syncing show no line", () => {
  assert.deepEqual(syncProgress(undefined, [status(0, undefined)], 1), []);
});

test("sync progress: the daemon's measured speed wins over the difference of two samples", () => {
  const withRate = (kib: number, rate: number): ResourceStatus => {
    const s = status(kib, 50);
    const c = s.connections[0]!;
    const v = c.volumes[0]!;
    const traffic = {
      sentBytes: 0,
      receivedBytes: 0,
      resyncSentBytes: 0,
      resyncReceivedBytes: 0,
      resyncDoneBlocks: 0,
      verifyDoneBlocks: 0,
      resyncRateBytesPerSecond: rate,
      resyncRemainingBlocks: kib / 4,
      verifyRemainingBlocks: undefined,
      rtt: undefined,
      rttSecondsLast: undefined,
    };
    return { ...s, connections: [{ ...c, volumes: [{ ...v, traffic }] }] };
  };
  const p = syncProgress(undefined, [withRate(4096, 1024 * 1024)], 1);
  assert.equal(p[0]!.rateBytesPerSecond, 1024 * 1024);
  assert.equal(p[0]!.etaSeconds, 4);
  // No speed measured yet: back to the difference between samples.
  const q = syncProgress([withRate(8192, 0)], [withRate(4096, 0)], 1);
  assert.equal(q[0]!.rateBytesPerSecond, 4 * 1024 * 1024);
});

test("sync progress: an online verify shows what it has left to compare", () => {
  const s = status(0, 25);
  const c = s.connections[0]!;
  const v = c.volumes[0]!;
  const traffic = {
    sentBytes: 0,
    receivedBytes: 0,
    resyncSentBytes: 0,
    resyncReceivedBytes: 0,
    resyncDoneBlocks: 0,
    verifyDoneBlocks: 256,
    resyncRateBytesPerSecond: 1024 * 1024,
    resyncRemainingBlocks: undefined,
    verifyRemainingBlocks: 768,
    rtt: undefined,
    rttSecondsLast: undefined,
  };
  const verifying: ResourceStatus = {
    ...s,
    connections: [{ ...c, volumes: [{ ...v, replication: "VerifyS", traffic }] }],
  };
  const p = syncProgress(undefined, [verifying], 1);
  assert.equal(p[0]!.outOfSyncBytes, 3 * 1024 * 1024);
  assert.equal(p[0]!.etaSeconds, 3);
  assert.match(formatSyncProgress(p[0]!, 4), /^r0 n1\/0 VerifyS {2}\[#---\] {3}25\.0%/);
});
