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
