import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as C from "./protocol/constants.js";
import { NbdServer } from "./server.js";
import type { BlockDevice, IoCallback, ZeroOptions } from "../storage/block_device.js";
import { createLogger } from "../io/log.js";
import { requestBytes, TestClient } from "./test_client.js";
import { Prng } from "../stdx/prng.js";

const SIZE = 64 * 1024 * 1024;

/**
 * A device in memory that counts its calls, can take writes synchronously (writeNow), and
 * otherwise holds on to the caller's buffer for a while before copying from it, as a thread
 * pool does: a payload buffer reused too early shows up as corrupted data.
 */
class MemoryDevice implements BlockDevice {
  readonly sizeBytes = SIZE;
  readonly readOnly = false;
  readonly canTrim = false;
  readonly canFastZero = false;
  readonly data = new Uint8Array(SIZE);
  takeWritesNow = false;
  writeDelayMs = 0;
  writeNowCalls = 0;
  writeCalls = 0;

  read(buf: Uint8Array, at: number, length: number, offset: number, cb: IoCallback): void {
    buf.set(this.data.subarray(offset, offset + length), at);
    process.nextTick(cb, null);
  }

  write(
    buf: Uint8Array,
    at: number,
    length: number,
    offset: number,
    _fua: boolean,
    cb: IoCallback,
  ): void {
    this.writeCalls++;
    setTimeout(() => {
      this.data.set(buf.subarray(at, at + length), offset);
      cb(null);
    }, this.writeDelayMs);
  }

  writeNow(buf: Uint8Array, at: number, length: number, offset: number): null | false {
    if (!this.takeWritesNow) return false;
    this.writeNowCalls++;
    this.data.set(buf.subarray(at, at + length), offset);
    return null;
  }

  flush(cb: IoCallback): void {
    process.nextTick(cb, null);
  }

  trim(_offset: number, _length: number, _fua: boolean, cb: IoCallback): void {
    process.nextTick(cb, null);
  }

  writeZeroes(offset: number, length: number, _options: ZeroOptions, cb: IoCallback): void {
    this.data.fill(0, offset, offset + length);
    process.nextTick(cb, null);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

let dir: string;
let server: NbdServer;
let sock: { path: string };
const device = new MemoryDevice();

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-nbd-write-"));
  server = new NbdServer({
    exports: [{ name: "mem", device }],
    logger: createLogger({ level: "warn", write: () => {} }),
  });
  sock = { path: path.join(dir, "nbd.sock") };
  await server.listenUnix(sock.path);
});

after(async () => {
  await server.close(1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function open(): Promise<TestClient> {
  const c = await TestClient.open(sock);
  await c.go("mem", false);
  return c;
}

function pattern(prng: Prng, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) b.writeUInt32LE(prng.nextU32(), i);
  return b;
}

describe("nbd server write path", () => {
  test("a write the device takes at once is written once", async () => {
    device.takeWritesNow = true;
    device.writeNowCalls = 0;
    device.writeCalls = 0;
    try {
      const c = await open();
      const data = pattern(new Prng(1), 4096);
      c.send(C.CMD_WRITE, 8192, data.length, 1n, 0, data);
      assert.equal((await c.reply()).error, 0);
      assert.equal(device.writeNowCalls, 1);
      assert.equal(device.writeCalls, 0);
      assert.ok(Buffer.from(device.data.subarray(8192, 8192 + 4096)).equals(data));
      c.close();
    } finally {
      device.takeWritesNow = false;
    }
  });

  test("large payloads in flight, arriving in odd pieces, are stored intact", async () => {
    const prng = new Prng(7);
    const expected = new Uint8Array(SIZE);
    device.data.fill(0);
    device.writeDelayMs = 5;
    try {
      const c = await open();
      // Sizes around the in-place bounds, many in flight, so that read slabs fill, rotate
      // with payload heads carried over, and stay pinned while the device holds them.
      const sizes = [32 * 1024, 128 * 1024, 96 * 1024 + 512, 512 * 1024, 600 * 1024, 4096];
      const stream: Buffer[] = [];
      let offset = 0;
      for (let i = 0; i < 120; i++) {
        const length = sizes[i % sizes.length]!;
        const data = pattern(prng, length);
        expected.set(data, offset);
        stream.push(requestBytes(C.CMD_WRITE, offset, length, BigInt(i)), data);
        offset += length + 512 * (i % 3);
      }
      const all = Buffer.concat(stream);
      // Odd-sized pieces, some with a pause, so socket reads end anywhere in a request.
      let at = 0;
      for (let i = 0; at < all.length; i++) {
        const n = Math.min(all.length - at, 1 + ((prng.nextU32() % 300_000) | 0));
        c.socket.write(all.subarray(at, at + n));
        at += n;
        if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      for (let i = 0; i < 120; i++) assert.equal((await c.reply()).error, 0);
      assert.ok(Buffer.from(device.data).equals(Buffer.from(expected)), "payloads intact");
      c.close();
    } finally {
      device.writeDelayMs = 0;
    }
  });
});
