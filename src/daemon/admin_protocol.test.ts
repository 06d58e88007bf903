import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  allHealthy,
  formatEvent,
  formatStatus,
  toneOf,
  parseAdminRequest,
  type ResourceStatus,
} from "./admin_protocol.js";

function status(): ResourceStatus {
  return {
    resource: "r0",
    nodeId: 0,
    nodeName: "alpha",
    up: true,
    role: "Primary",
    volumes: [
      {
        volume: 0,
        sizeBytes: 4096,
        disk: "UpToDate",
        quorum: true,
        suspended: false,
        writesInFlight: 0,
        nbd: "nbd://127.0.0.1:10809/r0",
      },
    ],
    connections: [
      {
        nodeId: 1,
        name: "beta",
        connection: "Connected",
        role: "Secondary",
        volumes: [{ volume: 0, replication: "Established", peerDisk: "UpToDate", outOfSyncKiB: 0 }],
      },
      {
        nodeId: 2,
        name: "gamma",
        connection: "Connected",
        role: "Secondary",
        volumes: [
          {
            volume: 0,
            replication: "SyncSource",
            peerDisk: "Inconsistent",
            outOfSyncKiB: 8992,
            donePercent: 45.1,
          },
        ],
      },
    ],
  };
}

describe("admin protocol", () => {
  test("status text reads like drbdadm status", () => {
    assert.equal(
      formatStatus(status()),
      [
        "r0 node-id:0 role:Primary",
        "  disk:UpToDate nbd:nbd://127.0.0.1:10809/r0",
        "  beta node-id:1 role:Secondary",
        "    replication:Established peer-disk:UpToDate",
        "  gamma node-id:2 role:Secondary",
        "    replication:SyncSource peer-disk:Inconsistent done:45.1 out-of-sync:8992KiB",
      ].join("\n"),
    );
    assert.equal(allHealthy(status()), false);
  });

  test("status text: disconnected peers, lost quorum, several volumes, a down resource", () => {
    const s = status();
    const two: ResourceStatus = {
      ...s,
      volumes: [
        { ...s.volumes[0]!, quorum: false, suspended: true },
        {
          volume: 1,
          sizeBytes: 4096,
          disk: "UpToDate",
          quorum: true,
          suspended: false,
          writesInFlight: 0,
        },
      ],
      connections: [
        {
          ...s.connections[0]!,
          volumes: [s.connections[0]!.volumes[0]!, { ...s.connections[0]!.volumes[0]!, volume: 1 }],
        },
        { ...s.connections[1]!, connection: "Connecting" },
      ],
    };
    assert.equal(
      formatStatus(two),
      [
        "r0 node-id:0 role:Primary",
        "  volume:0 disk:UpToDate quorum:no suspended:yes nbd:nbd://127.0.0.1:10809/r0",
        "  volume:1 disk:UpToDate",
        "  beta node-id:1 role:Secondary",
        "    volume:0 replication:Established peer-disk:UpToDate",
        "    volume:1 replication:Established peer-disk:UpToDate",
        "  gamma node-id:2 connection:Connecting",
      ].join("\n"),
    );
    assert.equal(formatStatus({ ...s, up: false }), "r0 node-id:0 role:Unknown (down)");
  });

  test("healthy: every peer Connected and Established, every disk UpToDate", () => {
    const s = status();
    const healthy: ResourceStatus = {
      ...s,
      connections: [s.connections[0]!, { ...s.connections[0]!, nodeId: 2, name: "gamma" }],
    };
    assert.equal(allHealthy(healthy), true);
    assert.equal(allHealthy({ ...healthy, up: false }), false);
  });

  test("requests are checked field by field", () => {
    assert.deepEqual(parseAdminRequest({ command: "status" }), { command: "status" });
    assert.deepEqual(parseAdminRequest({ id: 3, command: "connect", resource: "r0", peer: "b" }), {
      id: 3,
      command: "connect",
      resource: "r0",
      peer: "b",
    });
    assert.equal(parseAdminRequest([]), "a request must be a JSON object");
    assert.match(String(parseAdminRequest({ command: "explode" })), /^command must be one of up/);
    assert.equal(parseAdminRequest({ command: "primary" }), "primary needs a resource");
    assert.equal(
      parseAdminRequest({ command: "primary", resource: "r0", force: "yes" }),
      "force must be true or false",
    );
    assert.equal(
      parseAdminRequest({ command: "verify", resource: "r0", peer: 1.5 }),
      "peer must be a node name or node id",
    );
    assert.equal(
      parseAdminRequest({ command: "status", colour: "red" }),
      'unknown request field "colour"',
    );
    const resize = { command: "resize", resource: "r0", size: 1 << 30, assumeClean: true };
    assert.deepEqual(parseAdminRequest(resize), resize);
    assert.equal(
      parseAdminRequest({ ...resize, size: -4096 }),
      "size must be a positive number of bytes",
    );
    assert.equal(
      parseAdminRequest({ ...resize, assumeClean: 1 }),
      "assumeClean must be true or false",
    );
  });
});

test("status: states are painted by tone (green healthy, yellow in progress, red for an operator)", () => {
  const marks = { good: "+", busy: "~", bad: "!" } as const;
  const text = formatStatus(status(), (tone, t) => `${marks[tone]}${t}`);
  assert.match(text, /disk:\+UpToDate/);
  assert.equal(toneOf("SyncTarget"), "busy");
  assert.equal(toneOf("PausedSyncS"), "busy");
  assert.equal(toneOf("StandAlone"), "bad");
  assert.equal(toneOf("Outdated"), "bad");
  assert.equal(toneOf("Established"), "good");
  // Without a painter the text is exactly what scripts already parse.
  assert.equal(
    formatStatus(status()),
    formatStatus(status(), (_tone, t) => t),
  );
});

test("events: exists lines expand a status; change lines name their object like events2", () => {
  const exists = formatEvent({ event: "exists", status: status() });
  assert.match(exists[0]!, /^exists resource name:r0 role:/);
  assert.ok(exists.some((l) => l.startsWith("exists device name:r0 volume:0 disk:")));
  assert.ok(exists.some((l) => l.startsWith("exists peer-device name:r0 peer-node-id:")));
  assert.deepEqual(
    formatEvent({
      event: "change",
      resource: "r0",
      volume: 0,
      kind: "peerDisk",
      peer: 2,
      peerDisk: "UpToDate",
    }),
    ["change peer-device name:r0 peer-node-id:2 volume:0 peer-disk:UpToDate"],
  );
  assert.deepEqual(
    formatEvent({ event: "change", resource: "r0", volume: 0, kind: "role", role: "Primary" }),
    ["change resource name:r0 role:Primary"],
  );
  assert.deepEqual(
    formatEvent({ event: "change", resource: "r0", volume: 0, kind: "quorum", quorum: false }),
    ["change device name:r0 volume:0 quorum:no"],
  );
});
