import assert from "node:assert/strict";
import { test } from "node:test";

import { createLogger, type Logger } from "../io/log.js";
import { PeerLink, PeerListener } from "../io/peer_link.js";
import type { PeerMessage } from "../engine/types.js";
import { parseResourceFile } from "../config/resource_file.js";
import { sendQueueBytesMaxFor, targetProgress, VolumeHost } from "./volume_host.js";

function captureLogger(lines: string[]): Logger {
  return createLogger({ level: "debug", json: true, write: (l) => lines.push(l) });
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Node 1 is the volume host under test (diskless, so no files are needed); node 0 is played
// by a bare PeerLink. The lower node id dials, so the test's link dials the host.
const file = parseResourceFile(
  JSON.stringify({
    resource: "r0",
    "shared-secret": "s3cret",
    volumes: [{ volume: 0, size: "1M" }],
    nodes: [
      {
        name: "peer",
        "node-id": 0,
        address: "127.0.0.1:1",
        volumes: [{ volume: 0, disk: "none" }],
      },
      {
        name: "host",
        "node-id": 1,
        address: "127.0.0.1:2",
        volumes: [{ volume: 0, disk: "none" }],
      },
    ],
  }),
);

test("volume host: a bad frame breaks only that connection; StandAlone refuses the peer", async () => {
  const hostLogs: string[] = [];
  const peerLogs: string[] = [];
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const host = new VolumeHost(file, file.nodes[1]!, 0, captureLogger(hostLogs));
  host.attach(listener, undefined);
  const received: PeerMessage[] = [];
  let connects = 0;
  let disconnects = 0;
  const peer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    {
      resourceName: "r0",
      nodeId: 0,
      peerNodeId: 1,
      secret: "s3cret",
      reconnectDelayMsMin: 10,
      reconnectDelayMsMax: 50,
      logger: captureLogger(peerLogs),
    },
    {
      onMessage: (m) => received.push(m),
      onConnected: () => connects++,
      onDisconnected: () => disconnects++,
    },
  );
  try {
    await until("the host's engine to greet us", () => received.some((m) => m.type === "state"));
    assert.equal(host.status().peers[0]!.connection, "Connecting"); // our side never answered

    // A write past the 256-block volume: the host refuses the message and the connection.
    peer.send({
      type: "data",
      seq: 1,
      epoch: 1,
      firstBlock: 256,
      data: new Uint8Array(4096),
      ack: "write",
    });
    await until("the host to drop us", () => disconnects === 1);
    assert.ok(
      hostLogs.some((l) => l.includes("invalid peer message") && l.includes("past the volume")),
    );
    await until("the dialer to come back", () => connects === 2);

    // StandAlone: the host's engine no longer wants us, so the listener refuses us.
    assert.deepEqual(await host.admin({ type: "disconnect" }), { ok: true });
    await until("the host to drop us again", () => disconnects === 2);
    await until("a refusal", () => peerLogs.some((l) => l.includes("refused the connection")));
    assert.equal(host.status().peers[0]!.connection, "StandAlone");
    assert.equal(connects, 2);

    assert.deepEqual(await host.admin({ type: "connect" }), { ok: true });
    await until("the dialer to be accepted again", () => connects === 3);
  } finally {
    peer.close();
    await host.detach();
    await listener.close();
  }
  // After detach, client IO fails cleanly instead of reaching a replica.
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => host.flush(resolve));
  assert.equal(err?.code, "ESHUTDOWN");
});

test("volume host: the send queue holds a whole resync window, even at max-buffers' maximum", () => {
  // Resync data toward a peer is bounded by max-buffers blocks; with a bound below that, a
  // resync of a large volume was cut as "peer too slow", restarted, and cut again.
  for (const maxBuffers of [32, 2048, 32768, 131072])
    assert.ok(sendQueueBytesMaxFor(maxBuffers) >= maxBuffers * 4096 + 64 * 1024 * 1024);
});

test("volume host: a SyncTarget's progress counts what it finished against the estimate", () => {
  // A quarter of a 1000-block resync done: 750 left, 25 %.
  assert.deepEqual(targetProgress({ totalBlocks: 1000, doneBlocks: 250 }), {
    remainingBlocks: 750,
    donePercent: 25,
  });
  // The estimate was low (writes marked more bits meanwhile): never past 100 %, nothing left.
  assert.deepEqual(targetProgress({ totalBlocks: 100, doneBlocks: 120 }), {
    remainingBlocks: 0,
    donePercent: 100,
  });
  assert.equal(targetProgress({ totalBlocks: 3, doneBlocks: 1 }).donePercent, 33.3);
});
