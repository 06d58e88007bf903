import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createLogger, type Logger } from "./log.js";
import { BulkBufferPool } from "./bulk_buffer_pool.js";
import { PeerLink, PeerListener, type PeerLinkOptions } from "./peer_link.js";
import { native } from "../storage/native.js";
import type { PeerMessage } from "../engine/types.js";

interface Recorder {
  readonly messages: PeerMessage[];
  connects: number;
  disconnects: number;
  onMessage(m: PeerMessage): void;
  onConnected(): void;
  onDisconnected(): void;
}

function recorder(): Recorder {
  const r: Recorder = {
    messages: [],
    connects: 0,
    disconnects: 0,
    onMessage: (m) => r.messages.push(m),
    onConnected: () => r.connects++,
    onDisconnected: () => r.disconnects++,
  };
  return r;
}

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

const base = { resourceName: "r0", reconnectDelayMsMin: 10, reconnectDelayMsMax: 100 };

function pair(secretA?: string, secretB?: string): { a: PeerLinkOptions; b: PeerLinkOptions } {
  return {
    a: { ...base, nodeId: 0, peerNodeId: 1, ...(secretA ? { secret: secretA } : {}) },
    b: { ...base, nodeId: 1, peerNodeId: 0, ...(secretB ? { secret: secretB } : {}) },
  };
}

test("peer link: handshake with a shared secret, messages both ways in order", async () => {
  const logs: string[] = [];
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const { a, b } = pair("s3cret", "s3cret");
  const ra = recorder();
  const rb = recorder();
  const accepted = listener.accept({ ...b, logger: captureLogger(logs) }, rb);
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    { ...a, logger: captureLogger(logs) },
    ra,
  );
  try {
    await until("both connected", () => dialer.isConnected && accepted.isConnected);
    const data = new Uint8Array(8192).fill(0xab);
    for (let seq = 1; seq <= 100; seq++)
      assert.ok(dialer.send({ type: "data", seq, epoch: 1, firstBlock: seq, data, ack: "write" }));
    accepted.send({ type: "writeAck", seq: 1 });
    await until("100 data messages", () => rb.messages.length === 100);
    await until("the ack", () => ra.messages.length === 1);
    assert.deepEqual(
      rb.messages.map((m) => (m.type === "data" ? m.seq : -1)),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    const first = rb.messages[0]!;
    assert.ok(first.type === "data" && first.data.every((x) => x === 0xab));
    assert.deepEqual(ra.messages, [{ type: "writeAck", seq: 1 }]);
  } finally {
    dialer.close();
    accepted.close();
    await listener.close();
  }
});

test("peer link: a wrong secret is refused and logged, and no message gets through", async () => {
  const logs: string[] = [];
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const { a, b } = pair("right", "wrong");
  const ra = recorder();
  const rb = recorder();
  const accepted = listener.accept({ ...b, logger: captureLogger(logs) }, rb);
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    { ...a, logger: captureLogger(logs) },
    ra,
  );
  try {
    await until("a refusal in the log", () => logs.some((l) => /authentication failed/.test(l)));
    assert.equal(dialer.send({ type: "ping", seq: 0 }), false);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ra.connects + rb.connects, 0);
    assert.equal(rb.messages.length, 0);
    assert.ok(logs.some((l) => /"level":"error"/.test(l) && /authentication/.test(l)));
  } finally {
    dialer.close();
    accepted.close();
    await listener.close();
  }
});

test("peer link: reconnects after the accepting side closes and reopens", async () => {
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const port = listener.port;
  const { a, b } = pair();
  const quiet = createLogger({ write: () => {} });
  const ra = recorder();
  const dialer = PeerLink.dial({ host: "127.0.0.1", port }, { ...a, logger: quiet }, ra);
  const first = listener.accept({ ...b, logger: quiet }, recorder());
  let second: PeerLink | undefined;
  let reopened: PeerListener | undefined;
  try {
    await until("first connection", () => dialer.isConnected && first.isConnected);
    await listener.close();
    await until("disconnect noticed", () => ra.disconnects === 1 && !dialer.isConnected);
    await new Promise((r) => setTimeout(r, 150)); // a few refused reconnect attempts
    reopened = await PeerListener.listen({ host: "127.0.0.1", port });
    const rb = recorder();
    second = reopened.accept({ ...b, logger: quiet }, rb);
    await until("second connection", () => dialer.isConnected && second!.isConnected);
    assert.equal(ra.connects, 2);
    dialer.send({ type: "barrier", epoch: 7 });
    await until("message on the new connection", () => rb.messages.length === 1);
  } finally {
    dialer.close();
    first.close();
    second?.close();
    await reopened?.close();
  }
});

test("peer link: keepalive drops a peer that stops answering", async () => {
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const { a, b } = pair();
  const quiet = createLogger({ write: () => {} });
  const ra = recorder();
  const rb = recorder();
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    { ...a, logger: quiet, pingIntervalMs: 40, pingTimeoutMs: 40, reconnectDelayMsMin: 5000 },
    ra,
  );
  const accepted = listener.accept({ ...b, logger: quiet, pingIntervalMs: 0 }, rb);
  try {
    await until("connected", () => dialer.isConnected && accepted.isConnected);
    await until("pings answered", () => rb.messages.some((m) => m.type === "ping"));
    assert.ok(dialer.isConnected, "answered pings keep the link up");
    // Stop the peer's socket from reading: our pings go unanswered.
    const channel = (accepted as unknown as { channel: { socket: { pause(): void } } }).channel;
    channel.socket.pause();
    await until("ping timeout", () => ra.disconnects === 1, 3000);
  } finally {
    dialer.close();
    accepted.close();
    await listener.close();
  }
});

function makeCa(dir: string, name: string): { cert: string; key: string; ca: string } {
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${name}-ca.key`,
    "-out",
    `${name}-ca.crt`,
    "-days",
    "1",
    "-subj",
    `/CN=${name}-ca`,
  );
  run("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  run(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${name}-ca.crt`,
    "-CAkey",
    `${name}-ca.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "1",
  );
  const read = (f: string): string => fs.readFileSync(path.join(dir, f), "utf8");
  return { cert: read(`${name}.crt`), key: read(`${name}.key`), ca: read(`${name}-ca.crt`) };
}

const haveOpenssl = spawnSync("openssl", ["version"]).status === 0;

test(
  "peer link: TLS with a private CA; a certificate from another CA is refused",
  { skip: !haveOpenssl },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-tls-"));
    const good = makeCa(dir, "cluster");
    const other = makeCa(dir, "stranger");
    const quiet = createLogger({ write: () => {} });
    const listener = await PeerListener.listen({
      host: "127.0.0.1",
      port: 0,
      tls: good,
      logger: quiet,
    });
    const { a, b } = pair("s", "s");
    const ra = recorder();
    const rb = recorder();
    const accepted = listener.accept({ ...b, logger: quiet }, rb);
    const dialer = PeerLink.dial(
      { host: "127.0.0.1", port: listener.port },
      { ...a, tls: good, logger: quiet },
      ra,
    );
    const stranger = PeerLink.dial(
      { host: "127.0.0.1", port: listener.port },
      { ...a, tls: { ...other, ca: good.ca }, logger: quiet },
      recorder(),
    );
    try {
      await until("TLS connection", () => dialer.isConnected && accepted.isConnected);
      dialer.send({ type: "resyncDone" });
      await until("message over TLS", () => rb.messages.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(stranger.isConnected, false);
      assert.equal(rb.connects, 1, "the stranger never replaced the good connection");
    } finally {
      stranger.close();
      dialer.close();
      accepted.close();
      await listener.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("peer link: a knock from the accepting side makes the dialer dial at once", async () => {
  // The dialer's backoff is long (30 s or more after its first refused attempt); the peer
  // coming back knocks on the dialer's own listener, and the link is up long before that.
  const own = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const probe = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const port = probe.port;
  await probe.close();
  const { a, b } = pair("s3cret", "s3cret");
  const logs: string[] = [];
  const slow = { reconnectDelayMsMin: 60_000, reconnectDelayMsMax: 60_000 };
  const ra = recorder();
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port },
    { ...a, ...slow, logger: captureLogger(logs) },
    ra,
  );
  const unregister = own.dialsOut(dialer);
  let back: PeerListener | undefined;
  let accepted: PeerLink | undefined;
  try {
    await until("the first attempt refused", () => logs.some((l) => l.includes("reconnecting")));
    back = await PeerListener.listen({ host: "127.0.0.1", port });
    const quiet = createLogger({ write: () => {} });
    accepted = back.accept({ ...b, logger: quiet }, recorder());
    PeerLink.knock({ host: "127.0.0.1", port: own.port }, { ...b, logger: quiet });
    await until("connected after the knock", () => dialer.isConnected && accepted!.isConnected);
    assert.equal(ra.connects, 1);
  } finally {
    unregister();
    dialer.close();
    accepted?.close();
    await back?.close();
    await own.close();
  }
});

test("peer link: keepalive and engine pings time the round trip", async () => {
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const { a, b } = pair();
  const ra = recorder();
  const rb = recorder();
  const accepted = listener.accept({ ...b, pingIntervalMs: 10_000 }, rb);
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    { ...a, pingIntervalMs: 40, pingTimeoutMs: 1000 },
    ra,
  );
  try {
    await until("both connected", () => dialer.isConnected && accepted.isConnected);
    // An idle link: the dialer's keepalive pings every 40 ms, each answer is one sample.
    await until("three round trips timed", () => dialer.rtt.count >= 3);
    const s = dialer.rtt.snapshot();
    assert.ok(s.sumSeconds > 0 && s.sumSeconds < 3, `sum ${s.sumSeconds}`);
    assert.ok(dialer.rttSecondsLast !== undefined && dialer.rttSecondsLast < 1);
    // A ping the owner sends (the engine's) is timed too.
    const before = accepted.rtt.count;
    assert.ok(accepted.send({ type: "ping", seq: 0 }));
    await until("the engine ping's answer", () => accepted.rtt.count === before + 1);
    assert.ok(
      rb.messages.some((m) => m.type === "ping"),
      "the pings reach the peer's owner",
    );
  } finally {
    dialer.close();
    accepted.close();
    await listener.close();
  }
});

test("peer link: large resync replies land in the payload pool, data page-aligned, both ways", async () => {
  const listener = await PeerListener.listen({ host: "127.0.0.1", port: 0 });
  const aligned = native?.alignedBuffer;
  const pool = new BulkBufferPool(
    (1 << 20) + 8192,
    8,
    aligned !== undefined ? (n) => Buffer.from(aligned(n)) : undefined,
  );
  const { a, b } = pair("s3cret", "s3cret");
  const ra = recorder();
  const rb = recorder();
  const accepted = listener.accept({ ...b, payloadPool: pool }, rb);
  const dialer = PeerLink.dial(
    { host: "127.0.0.1", port: listener.port },
    { ...a, payloadPool: pool },
    ra,
  );
  const frames = 12;
  const reply = (i: number): PeerMessage => ({
    type: "resyncReply",
    block: i * 256,
    ok: true,
    data: new Uint8Array(1 << 20).fill(i + 1),
  });
  const small = (i: number): PeerMessage => ({
    type: "data",
    seq: i + 1,
    epoch: 1,
    firstBlock: i,
    data: new Uint8Array(4096).fill(200 + i),
    ack: "write",
  });
  try {
    await until("both connected", () => dialer.isConnected && accepted.isConnected);
    for (let i = 0; i < frames; i++) {
      dialer.send(reply(i));
      dialer.send(small(i));
      accepted.send(reply(i));
      accepted.send(small(i));
    }
    const all = (r: Recorder): boolean => r.messages.length === 2 * frames;
    await until("every frame both ways", () => all(ra) && all(rb), 20000);
    for (const r of [ra, rb]) {
      for (let i = 0; i < frames; i++) {
        const big = r.messages[2 * i]!;
        const tiny = r.messages[2 * i + 1]!;
        assert.ok(big.type === "resyncReply" && big.data !== undefined);
        assert.equal(big.block, i * 256);
        assert.ok(
          big.data.every((x) => x === i + 1),
          `reply ${i} intact`,
        );
        assert.ok(pool.owns(big.data), "received into the pool");
        if (aligned !== undefined) assert.equal(big.data.byteOffset % 4096, 0, "data page-aligned");
        assert.ok(tiny.type === "data" && tiny.data.every((x) => x === 200 + i), `data ${i}`);
        assert.ok(!pool.owns(tiny.data), "small frames use no pool buffer");
        pool.give(big.data);
      }
    }
    assert.equal(pool.idleCount, 8, "given back, up to the idle bound");
  } finally {
    dialer.close();
    accepted.close();
    await listener.close();
  }
});
