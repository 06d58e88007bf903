import assert from "node:assert/strict";
import { test } from "node:test";

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { satelliteMetrics } from "./metrics.js";

function status(resource: string, disk: "UpToDate" | "Diskless"): ResourceStatus {
  return {
    resource,
    nodeId: 1,
    nodeName: "beta",
    up: true,
    role: "Secondary",
    volumes: [
      { volume: 0, sizeBytes: 4096, disk, quorum: true, suspended: false, writesInFlight: 0 },
    ],
    connections: [
      {
        nodeId: 0,
        name: "alpha",
        connection: "Connected",
        role: "Primary",
        volumes: [{ volume: 0, replication: "Established", peerDisk: "UpToDate", outOfSyncKiB: 0 }],
      },
    ],
  };
}

const lines = (text: string, prefix: string): string[] =>
  text.split("\n").filter((l) => l.startsWith(prefix));

test("satellite metrics: one exposition over every daemon, each family once", () => {
  const text = satelliteMetrics(
    new Map([
      ["r0", status("r0", "UpToDate")],
      ["r1", status("r1", "Diskless")],
    ]),
    (r) => r === "r1",
  );
  for (const family of ["drbd_connection_state", "drbd_device_state", "mirra_satellite_daemon_up"])
    assert.equal(lines(text, `# TYPE ${family} `).length, 1, family);
  assert.deepEqual(lines(text, "drbd_resource_resources"), ["drbd_resource_resources 2"]);
  assert.deepEqual(lines(text, "drbd_device_client"), [
    'drbd_device_client{name="r0",volume="0"} 0',
    'drbd_device_client{name="r1",volume="0"} 1',
  ]);
  assert.deepEqual(lines(text, "drbd_device_unintentionaldiskless"), [
    'drbd_device_unintentionaldiskless{name="r0",volume="0"} 0',
    'drbd_device_unintentionaldiskless{name="r1",volume="0"} 0',
  ]);
  assert.deepEqual(lines(text, "mirra_satellite_daemon_up"), [
    'mirra_satellite_daemon_up{name="r0"} 1',
    'mirra_satellite_daemon_up{name="r1"} 1',
  ]);
});

test("satellite metrics: a daemon that did not answer is left out and shows as down", () => {
  const text = satelliteMetrics(
    new Map<string, ResourceStatus | null>([
      ["r0", null],
      ["r1", status("r1", "UpToDate")],
    ]),
    () => undefined,
  );
  assert.deepEqual(lines(text, "drbd_resource_resources"), ["drbd_resource_resources 1"]);
  assert.equal(lines(text, 'drbd_resource_role{name="r0"').length, 0);
  // Not known whether r1 is meant to be diskless (no desired state yet): not invented.
  assert.equal(lines(text, "drbd_device_client").length, 0);
  assert.equal(lines(text, "drbd_device_unintentionaldiskless").length, 0);
  assert.deepEqual(lines(text, "mirra_satellite_daemon_up"), [
    'mirra_satellite_daemon_up{name="r0"} 0',
    'mirra_satellite_daemon_up{name="r1"} 1',
  ]);
});

test("satellite metrics: no daemons is drbd-reactor with no resources", () => {
  assert.equal(
    satelliteMetrics(new Map(), () => undefined),
    [
      "# TYPE drbdreactor_up gauge",
      "# HELP drbdreactor_up Boolean indicating whether or not drbdreactor is running. Always 1",
      "drbdreactor_up 1",
      "# TYPE drbd_resource_resources gauge",
      "# HELP drbd_resource_resources Number of resources",
      "drbd_resource_resources 0",
      "",
    ].join("\n"),
  );
});
