import { test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";

import {
  adoptReadingInto,
  connectReadingInto,
  readsIntoOwnBuffers,
  type ReadInto,
} from "./socket_reads.js";

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Reads into a 7-byte buffer (so every message takes several reads), recording the bytes. */
function recording(): { into: ReadInto; bytes: number[] } {
  const buf = new Uint8Array(7);
  const bytes: number[] = [];
  return {
    bytes,
    into: {
      buffer: () => buf,
      callback: (n, b) => {
        assert.equal(b, buf, "the read went into the buffer we gave");
        bytes.push(...b.subarray(0, n));
      },
    },
  };
}

test("socket reads: accepted and dialed sockets read into our buffers, and still see the end", async () => {
  const server = net.createServer({ pauseOnConnect: true });
  const sockets: net.Socket[] = [];
  const got = recording();
  const closed = { server: false, client: false };
  server.on("connection", (accepted: net.Socket) => {
    const s = adoptReadingInto(accepted, got.into);
    assert.notEqual(s, accepted, "a new socket took over the handle");
    assert.ok(readsIntoOwnBuffers(s));
    sockets.push(s);
    s.on("close", () => (closed.server = true));
    s.resume();
    s.write(Buffer.from([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const mine = recording();
  const client = connectReadingInto({ host: "127.0.0.1", port }, mine.into);
  assert.ok(readsIntoOwnBuffers(client));
  client.on("close", () => (closed.client = true));
  try {
    await new Promise<void>((r) => client.once("connect", () => r()));
    client.write(Buffer.from(Array.from({ length: 20 }, (_, i) => i)));
    await until("both sides read", () => got.bytes.length === 20 && mine.bytes.length === 10);
    assert.deepEqual(
      got.bytes,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(mine.bytes, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    client.end();
    await until("both sides closed", () => closed.server && closed.client);
  } finally {
    client.destroy();
    for (const s of sockets) s.destroy();
    // Completes only if the adopted socket was counted as the server's connection.
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test("socket reads: MIRRA_USER_READ_BUFFER=0 leaves sockets emitting data", async () => {
  process.env["MIRRA_USER_READ_BUFFER"] = "0";
  const server = net.createServer({ pauseOnConnect: true });
  const sockets: net.Socket[] = [];
  const got: number[] = [];
  server.on("connection", (accepted: net.Socket) => {
    const s = adoptReadingInto(accepted, recording().into);
    assert.equal(s, accepted);
    assert.ok(!readsIntoOwnBuffers(s));
    sockets.push(s);
    s.on("data", (chunk: Buffer) => got.push(...chunk));
    s.resume();
  });
  try {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const client = connectReadingInto({ host: "127.0.0.1", port }, recording().into);
    sockets.push(client);
    assert.ok(!readsIntoOwnBuffers(client));
    client.write(Buffer.from([1, 2, 3]));
    await until("the server read", () => got.length === 3);
    assert.deepEqual(got, [1, 2, 3]);
  } finally {
    delete process.env["MIRRA_USER_READ_BUFFER"];
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
