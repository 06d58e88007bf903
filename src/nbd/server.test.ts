import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import * as C from "./protocol/constants.js";
import { NbdServer } from "./server.js";
import { LocalVolume } from "../storage/local_volume.js";
import type { BlockDevice, IoCallback, ZeroOptions } from "../storage/block_device.js";
import { createLogger } from "../io/log.js";
import {
  connect,
  goData,
  optionBytes,
  requestBytes,
  SocketReader,
  TestClient,
} from "./test_client.js";
import { Prng } from "../stdx/prng.js";
import { hostileBytes } from "./fuzz_input.js";

const SIZE = 8 * 1024 * 1024;
let dir: string;
let server: NbdServer;
let sock: { path: string };
let volume: LocalVolume;
const logged: string[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-nbd-"));
  volume = LocalVolume.open({ path: path.join(dir, "disk.img"), createSizeBytes: SIZE });
  const ro = LocalVolume.open({ path: path.join(dir, "disk.img"), readOnly: true });
  server = new NbdServer({
    exports: [
      { name: "disk", device: volume },
      { name: "ro", device: ro },
    ],
    // Every test below runs with busy polling on, as `mirra serve` does by default.
    busyPollMicros: 50,
    logger: createLogger({ level: "warn", write: (l) => logged.push(l) }),
  });
  sock = { path: path.join(dir, "nbd.sock") };
  await server.listenUnix(sock.path);
});

after(async () => {
  await server.close(1000);
  await volume.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function open(name = "disk", structured = true): Promise<TestClient> {
  const c = await TestClient.open(sock);
  await c.go(name, structured);
  return c;
}

function pattern(seed: number, length: number): Buffer {
  const prng = new Prng(seed);
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32LE(prng.nextU32(), i);
  return b;
}

describe("nbd server", () => {
  test("write then read back, with simple and structured replies", async () => {
    for (const structured of [false, true]) {
      const c = await open("disk", structured);
      const data = pattern(structured ? 1 : 2, 8192);
      c.send(C.CMD_WRITE, 65536, data.length, 7n, 0, data);
      assert.deepEqual(await c.reply(), {
        cookie: 7n,
        error: 0,
        data: Buffer.alloc(0),
        structured: false,
      });
      c.send(C.CMD_READ, 65536, data.length, 8n);
      const r = await c.reply(data.length);
      assert.equal(r.error, 0);
      assert.equal(r.structured, structured);
      assert.ok(r.data.equals(data));
      c.close();
    }
  });

  test("bad requests get the specification's errors and the connection keeps serving", async () => {
    const c = await open();
    const expect = async (cookie: bigint, errno: number): Promise<void> => {
      const r = await c.reply();
      assert.equal(r.cookie, cookie);
      assert.equal(r.error, errno);
    };
    c.send(C.CMD_READ, SIZE - 512, 1024, 1n);
    await expect(1n, C.NBD_EINVAL);
    c.send(C.CMD_WRITE, SIZE, 512, 2n, 0, Buffer.alloc(512));
    await expect(2n, C.NBD_ENOSPC);
    c.send(C.CMD_READ, 100, 512, 3n);
    await expect(3n, C.NBD_EINVAL);
    c.send(C.CMD_READ, 0, C.PAYLOAD_BYTES_MAX + 512, 4n);
    await expect(4n, C.NBD_EOVERFLOW);
    // An oversized write's payload is read and dropped, so the stream stays in step.
    const big = C.PAYLOAD_BYTES_MAX + 4096;
    c.send(C.CMD_WRITE, 0, big, 5n, 0, Buffer.alloc(big, 0xaa));
    await expect(5n, C.NBD_EINVAL);
    c.send(C.CMD_WRITE_ZEROES, 0, 512, 6n, 0x80);
    await expect(6n, C.NBD_EINVAL);
    c.send(99, 0, 512, 7n);
    await expect(7n, C.NBD_EINVAL);
    c.send(C.CMD_READ, 0, 512, 8n);
    const r = await c.reply(512);
    assert.equal(r.error, 0);
    assert.ok(!r.data.includes(0xaa), "the rejected write changed nothing");
    c.close();
  });

  test("a read-only export refuses writes with EPERM", async () => {
    const c = await open("ro");
    assert.ok(c.transmissionFlags & C.FLAG_READ_ONLY);
    c.send(C.CMD_WRITE, 0, 512, 1n, 0, Buffer.alloc(512, 1));
    assert.equal((await c.reply()).error, C.NBD_EPERM);
    c.close();
  });

  test("a bad request magic closes that connection only", async () => {
    const bad = await open();
    const good = await open();
    bad.socket.write(Buffer.alloc(28, 0x55));
    await bad.reader.waitClosed();
    good.send(C.CMD_READ, 0, 4096, 1n);
    assert.equal((await good.reply(4096)).error, 0);
    good.close();
  });

  test("garbage instead of a handshake closes the connection", async () => {
    const s = await connect(sock);
    const r = new SocketReader(s);
    await r.read(18);
    s.write(Buffer.from("GET / HTTP/1.1\r\n\r\n"));
    await r.waitClosed();
  });

  test("many requests in flight are all answered", async () => {
    const c = await open();
    const n = 300;
    for (let i = 0; i < n; i++) c.send(C.CMD_READ, (i % 64) * 4096, 4096, BigInt(i));
    const seen = new Set<bigint>();
    for (let i = 0; i < n; i++) {
      const r = await c.reply(4096);
      assert.equal(r.error, 0);
      seen.add(r.cookie);
    }
    assert.equal(seen.size, n);
    c.close();
  });

  test("FUA writes, FLUSH, and writes seen across connections (multi-conn)", async () => {
    const a = await open();
    const b = await open();
    assert.ok(a.transmissionFlags & C.FLAG_CAN_MULTI_CONN);
    const data = pattern(3, 4096);
    a.send(C.CMD_WRITE, 1 << 20, 4096, 1n, C.CMD_FLAG_FUA, data);
    assert.equal((await a.reply()).error, 0);
    a.send(C.CMD_FLUSH, 0, 0, 2n);
    assert.equal((await a.reply()).error, 0);
    b.send(C.CMD_READ, 1 << 20, 4096, 3n);
    assert.ok((await b.reply(4096)).data.equals(data));
    a.close();
    b.close();
  });

  test("TRIM and WRITE_ZEROES read back as zeroes and free space in a sparse file", async () => {
    const c = await open();
    const region = 1 << 20;
    const at = 4 << 20;
    c.send(C.CMD_WRITE, at, region, 1n, 0, pattern(4, region));
    assert.equal((await c.reply()).error, 0);
    c.send(C.CMD_FLUSH, 0, 0, 2n);
    await c.reply();
    const before = fs.statSync(path.join(dir, "disk.img")).blocks;
    c.send(C.CMD_TRIM, at, region / 2, 3n);
    assert.equal((await c.reply()).error, 0);
    c.send(C.CMD_WRITE_ZEROES, at + region / 2, region / 2, 4n, C.CMD_FLAG_NO_HOLE);
    assert.equal((await c.reply()).error, 0);
    c.send(C.CMD_READ, at, region, 5n);
    const r = await c.reply(region);
    assert.ok(r.data.equals(Buffer.alloc(region)));
    const freed = fs.statSync(path.join(dir, "disk.img")).blocks;
    assert.ok(freed < before, `blocks ${before} -> ${freed}`);
    c.close();
  });

  test("a client that vanishes mid-write loses nothing that was acknowledged", async () => {
    const c = await open();
    const data = pattern(5, 4096);
    c.send(C.CMD_WRITE, 2 << 20, 4096, 1n, 0, data);
    assert.equal((await c.reply()).error, 0);
    c.socket.write(requestBytes(C.CMD_WRITE, (2 << 20) + 4096, 65536, 2n));
    c.socket.write(Buffer.alloc(1000, 0xee));
    c.close();
    const d = await open();
    d.send(C.CMD_READ, 2 << 20, 8192, 3n);
    const r = await d.reply(8192);
    assert.ok(r.data.subarray(0, 4096).equals(data));
    assert.ok(!r.data.subarray(4096).includes(0xee), "half a payload is never written");
    d.close();
  });

  test("DISC closes after in-flight requests are answered", async () => {
    const c = await open();
    c.send(C.CMD_READ, 0, 4096, 1n);
    c.send(C.CMD_DISC, 0, 0, 2n);
    assert.equal((await c.reply(4096)).cookie, 1n);
    await c.reader.waitClosed();
  });

  test("fuzz: hostile transmission streams never crash the server or write outside the volume", async () => {
    const sizeBefore = fs.statSync(path.join(dir, "disk.img")).size;
    const valid = Buffer.concat([
      requestBytes(C.CMD_WRITE, 0, 512, 1n),
      Buffer.alloc(512, 3),
      requestBytes(C.CMD_READ, 4096, 4096, 2n),
      requestBytes(C.CMD_TRIM, 8192, 4096, 3n),
      requestBytes(C.CMD_FLUSH, 0, 0, 4n),
    ]);
    const streams = fc.sample(
      hostileBytes(valid, { randomBytesMax: 600, mutationsMax: 6, minLength: 1 }),
      { numRuns: 120, seed: 42 },
    );
    for (const bytes of streams) {
      const c = await open();
      c.socket.write(bytes);
      c.send(C.CMD_DISC, 0, 0, 0n);
      await new Promise((r) => setTimeout(r, 2));
      c.close();
    }
    const probe = await open();
    probe.send(C.CMD_READ, 0, 512, 9n);
    assert.equal((await probe.reply(512)).error, 0);
    probe.close();
    assert.equal(fs.statSync(path.join(dir, "disk.img")).size, sizeBefore);
  });

  test("fuzz: hostile handshakes never crash the server", async () => {
    const valid = Buffer.concat([
      Buffer.from([0, 0, 0, 3]),
      optionBytes(C.OPT_STRUCTURED_REPLY),
      optionBytes(C.OPT_LIST),
      optionBytes(C.OPT_GO, goData("disk")),
    ]);
    const inputs = fc.sample(
      hostileBytes(valid, { randomBytesMax: 300, mutationsMax: 4, minLength: 1 }),
      { numRuns: 120, seed: 7 },
    );
    for (const bytes of inputs) {
      const s = await connect(sock);
      s.on("error", () => undefined);
      s.write(bytes);
      await new Promise((r) => setTimeout(r, 2));
      s.destroy();
    }
    const probe = await open();
    probe.send(C.CMD_READ, 0, 512, 1n);
    assert.equal((await probe.reply(512)).error, 0);
    probe.close();
  });
});

/** A device whose open() answers when the test says so, as a promoting replica would. */
class GatedDevice implements BlockDevice {
  readonly sizeBytes: number;
  readonly readOnly = false;
  readonly canTrim = false;
  readonly canFastZero = false;
  readonly opens: IoCallback[] = [];
  releases = 0;
  constructor(private readonly inner: LocalVolume) {
    this.sizeBytes = inner.sizeBytes;
  }
  open(cb: IoCallback): void {
    this.opens.push(cb);
  }
  release(): void {
    this.releases++;
  }
  read(buf: Uint8Array, at: number, length: number, offset: number, cb: IoCallback): void {
    this.inner.read(buf, at, length, offset, cb);
  }
  write(b: Uint8Array, at: number, length: number, offset: number, fua: boolean, cb: IoCallback) {
    this.inner.write(b, at, length, offset, fua, cb);
  }
  flush(cb: IoCallback): void {
    this.inner.flush(cb);
  }
  trim(offset: number, length: number, fua: boolean, cb: IoCallback): void {
    this.inner.trim(offset, length, fua, cb);
  }
  writeZeroes(offset: number, length: number, options: ZeroOptions, cb: IoCallback): void {
    this.inner.writeZeroes(offset, length, options, cb);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe("nbd server: devices that open (auto-promote)", () => {
  let gdir: string;
  let gserver: NbdServer;
  let gvolume: LocalVolume;
  let device: GatedDevice;
  let gsock: { path: string };

  before(async () => {
    gdir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-nbd-open-"));
    gvolume = LocalVolume.open({ path: path.join(gdir, "g.img"), createSizeBytes: SIZE });
    device = new GatedDevice(gvolume);
    gserver = new NbdServer({
      exports: [{ name: "g", device }],
      logger: createLogger({ level: "error", write: () => undefined }),
    });
    gsock = { path: path.join(gdir, "g.sock") };
    await gserver.listenUnix(gsock.path);
  });

  after(async () => {
    await gserver.close(1000);
    await gvolume.close();
    fs.rmSync(gdir, { recursive: true, force: true });
  });

  const within = <T>(p: Promise<T>, ms: number): Promise<T | "pending"> =>
    Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

  async function until(cond: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(cond());
  }

  test("requests wait for open(); release() follows the client", async () => {
    const c = await TestClient.open(gsock);
    await c.go("g", true);
    const data = pattern(11, 4096);
    c.send(C.CMD_WRITE, 8192, data.length, 1n, 0, data);
    await until(() => device.opens.length === 1);
    const written = c.reply();
    assert.equal(await within(written, 50), "pending", "nothing is served before open() answers");
    device.opens.shift()!(null);
    assert.equal((await written).error, 0);
    c.send(C.CMD_READ, 8192, data.length, 2n);
    const read = await c.reply(data.length);
    assert.equal(read.error, 0);
    assert.ok(Buffer.from(read.data).equals(data));
    c.close();
    await until(() => device.releases === 1);
  });

  test("a refused open still serves the client; a client gone while opening is released once", async () => {
    const c = await TestClient.open(gsock);
    await c.go("g", true);
    c.send(C.CMD_READ, 0, 512, 1n);
    await until(() => device.opens.length === 1);
    device.opens.shift()!(Object.assign(new Error("not promoted"), { code: "EPERM" }));
    assert.equal((await c.reply(512)).error, 0);
    c.close();
    await until(() => device.releases === 2);
    const gone = await TestClient.open(gsock);
    await gone.go("g", true);
    await until(() => device.opens.length === 1);
    gone.close();
    // Reading is paused while the device opens, so the hang-up is seen once open() answers.
    device.opens.shift()!(null);
    await until(() => device.releases === 3);
    const probe = await TestClient.open(gsock);
    await probe.go("g", true);
    await until(() => device.opens.length === 1);
    device.opens.shift()!(null);
    probe.send(C.CMD_READ, 0, 512, 1n);
    assert.equal((await probe.reply(512)).error, 0);
    probe.close();
  });

  test("counts each export's client IO: requests, bytes, latency, errors", async () => {
    const before = server.counters("disk").snapshot();
    const c = await open("disk", false);
    const data = pattern(42, 16384);
    c.send(C.CMD_WRITE, 0, data.length, 1n, 0, data);
    assert.equal((await c.reply()).error, 0);
    c.send(C.CMD_READ, 0, 4096, 2n);
    assert.equal((await c.reply(4096)).error, 0);
    c.send(C.CMD_FLUSH, 0, 0, 3n);
    assert.equal((await c.reply()).error, 0);
    c.close();
    const after = server.counters("disk").snapshot();
    assert.equal(after.writes - before.writes, 1);
    assert.equal(after.writtenBytes - before.writtenBytes, 16384);
    assert.equal(after.reads - before.reads, 1);
    assert.equal(after.readBytes - before.readBytes, 4096);
    assert.equal(after.flushes - before.flushes, 1);
    assert.equal(after.errors, before.errors);
    assert.equal(after.writeLatency.count - before.writeLatency.count, 1);
    assert.ok(after.readLatency.sumSeconds > before.readLatency.sumSeconds);
    // The read-only export counts apart.
    assert.notEqual(server.counters("ro"), server.counters("disk"));
    assert.throws(() => server.counters("nope"), /vanished/);
  });
});
