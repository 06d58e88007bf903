import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { canSpin, setSendBuffer, socketFd, spinReadable } from "./socket_native.js";
import { native } from "../storage/native.js";

test("socket_native: a Unix socket's send buffer grows to what was asked, within the kernel's cap", async (t) => {
  if (!native) {
    t.skip("native addon not built");
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-sndbuf-"));
  const sockPath = path.join(dir, "s.sock");
  const server = net.createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  const client = net.connect(sockPath);
  await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  try {
    assert.ok(socketFd(client) >= 0);
    const small = setSendBuffer(client, 64 * 1024);
    // Linux doubles the value asked for (bookkeeping overhead).
    assert.equal(small, 128 * 1024);
    const cap = Number(fs.readFileSync("/proc/sys/net/core/wmem_max", "utf8"));
    const big = setSendBuffer(client, 4 * 1024 * 1024);
    assert.equal(big, 2 * Math.min(4 * 1024 * 1024, cap));
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("socket_native: a socket without a descriptor is left alone", () => {
  const s = new net.Socket();
  assert.equal(socketFd(s), -1);
  assert.equal(setSendBuffer(s, 1 << 20), -1);
});

test("socket_native: spinReadable returns at once when data waits, and false when time is up", async (t) => {
  if (!canSpin()) {
    t.skip("native addon not built");
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-spin-"));
  const sockPath = path.join(dir, "s.sock");
  let peer: net.Socket | undefined;
  // pauseOnConnect: Node never reads this socket, so bytes stay in the kernel for poll to see.
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    peer = s;
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  const client = net.connect(sockPath);
  await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  try {
    while (!peer) await new Promise((r) => setTimeout(r, 1));
    const fd = socketFd(peer);
    assert.ok(fd >= 0);
    const started = performance.now();
    assert.equal(spinReadable(fd, 200), false);
    assert.ok(performance.now() - started >= 0.2, "waited the whole time");
    client.write("x");
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(spinReadable(fd, 1000), true);
    assert.throws(() => spinReadable(fd, 5000), TypeError);
  } finally {
    client.destroy();
    peer?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
