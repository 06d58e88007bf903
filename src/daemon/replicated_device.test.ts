import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ReplicatedDevice, type BlockRequests } from "./replicated_device.js";
import type { DoneCallback, ReadCallback } from "./volume_host.js";

/** An in-memory volume that insists on whole 4 KiB blocks and completes asynchronously. */
class FakeVolume implements BlockRequests {
  readonly bytes: Uint8Array;
  readonly log: string[] = [];
  constructor(readonly sizeBytes: number) {
    this.bytes = new Uint8Array(sizeBytes);
  }
  read(offsetBytes: number, lengthBytes: number, cb: ReadCallback): void {
    assert.equal(offsetBytes % 4096, 0);
    assert.equal(lengthBytes % 4096, 0);
    this.log.push(`read ${offsetBytes}+${lengthBytes}`);
    const data = this.bytes.slice(offsetBytes, offsetBytes + lengthBytes);
    setImmediate(() => cb(null, data));
  }
  write(data: Uint8Array, offsetBytes: number, fua: boolean, cb: DoneCallback): void {
    assert.equal(offsetBytes % 4096, 0);
    assert.equal(data.length % 4096, 0);
    this.log.push(`write ${offsetBytes}+${data.length}${fua ? " fua" : ""}`);
    setImmediate(() => {
      this.bytes.set(data, offsetBytes);
      cb(null);
    });
  }
  flush(cb: DoneCallback): void {
    this.log.push("flush");
    setImmediate(() => cb(null));
  }
}

function call(f: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
}

describe("replicated device", () => {
  test("unaligned reads are widened to whole blocks and copied out", async () => {
    const v = new FakeVolume(16384);
    for (let i = 0; i < v.bytes.length; i++) v.bytes[i] = i % 251;
    const dev = new ReplicatedDevice(v);
    const buf = new Uint8Array(1100);
    await call((cb) => dev.read(buf, 100, 1000, 4000, cb));
    assert.deepEqual(buf.subarray(100), v.bytes.subarray(4000, 5000));
    assert.deepEqual(v.log, ["read 0+8192"]);
  });

  test("aligned writes go straight through, with a copy of the data", async () => {
    const v = new FakeVolume(16384);
    const dev = new ReplicatedDevice(v);
    const buf = new Uint8Array(4096).fill(7);
    const done = call((cb) => dev.write(buf, 0, 4096, 4096, true, cb));
    buf.fill(9); // the NBD server reuses its buffer: the device must have copied it
    await done;
    assert.ok(v.bytes.subarray(4096, 8192).every((b) => b === 7));
    assert.deepEqual(v.log, ["write 4096+4096 fua"]);
  });

  test("concurrent partial writes to one block do not lose each other's bytes", async () => {
    const v = new FakeVolume(8192);
    const dev = new ReplicatedDevice(v);
    const writes = [];
    for (let i = 0; i < 8; i++) {
      const data = new Uint8Array(512).fill(i + 1);
      writes.push(call((cb) => dev.write(data, 0, 512, i * 512, false, cb)));
    }
    await Promise.all(writes);
    for (let i = 0; i < 8; i++)
      assert.ok(
        v.bytes.subarray(i * 512, (i + 1) * 512).every((b) => b === i + 1),
        `sector ${i}`,
      );
  });

  test("write-zeroes writes zeroes (FUA as a final flush); fast-zero is refused", async () => {
    const v = new FakeVolume(3 * 1024 * 1024);
    v.bytes.fill(1);
    const dev = new ReplicatedDevice(v);
    await call((cb) =>
      dev.writeZeroes(4096, 2 * 1024 * 1024, { noHole: false, fastZero: false, fua: true }, cb),
    );
    assert.ok(v.bytes.subarray(4096, 4096 + 2 * 1024 * 1024).every((b) => b === 0));
    assert.equal(v.bytes[4095], 1);
    assert.equal(v.log.at(-1), "flush");
    await assert.rejects(
      call((cb) => dev.writeZeroes(0, 4096, { noHole: false, fastZero: true, fua: false }, cb)),
      (err: NodeJS.ErrnoException) => err.code === "ENOTSUP",
    );
  });
});
