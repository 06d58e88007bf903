import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalVolume } from "./local_volume.js";
import { native } from "./native.js";

const SIZE = 16 * 1024 * 1024;
let dir: string;
let volume: LocalVolume;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-volume-"));
  volume = LocalVolume.open({ path: path.join(dir, "v.img"), createSizeBytes: SIZE });
});

after(async () => {
  await volume.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function block(seed: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

function readBack(offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  return new Promise((resolve, reject) =>
    volume.read(buf, 0, length, offset, (err) => (err ? reject(err) : resolve(buf))),
  );
}

function write(data: Uint8Array, offset: number, fua: boolean): Promise<void> {
  return new Promise((resolve, reject) =>
    volume.write(data, 0, data.length, offset, fua, (err) => (err ? reject(err) : resolve())),
  );
}

describe("local volume writes", () => {
  test("sequential-write sized blocks (128 KiB) read back, whichever path wrote them", async () => {
    for (let i = 0; i < 16; i++) {
      const data = block(i, 128 * 1024);
      // writeNow either writes (null) or leaves the write to write(); never both, never half.
      const now = volume.writeNow(data, 0, data.length, i * data.length);
      if (now === false) await write(data, i * data.length, false);
      else assert.equal(now, null);
    }
    for (let i = 0; i < 16; i++) {
      const back = await readBack(i * 128 * 1024, 128 * 1024);
      assert.ok(Buffer.from(back).equals(Buffer.from(block(i, 128 * 1024))), `block ${i}`);
    }
  });

  test("a flush after any kind of write syncs; a flush with nothing new written does not", async () => {
    const flush = (): Promise<void> =>
      new Promise((resolve, reject) => volume.flush((err) => (err ? reject(err) : resolve())));
    await flush();
    const data = block(7, 4096);
    // Through the inline path the server uses (writeNow), then through write() and the pool.
    for (const via of ["writeNow", "write", "big write"] as const) {
      const before = volume.syncsStarted;
      if (via === "writeNow") {
        const now = volume.writeNow(data, 0, data.length, 0);
        if (now === false) await write(data, 0, false);
      } else if (via === "write") {
        await write(data, 4096, false);
      } else {
        await write(block(8, 2 * 1024 * 1024), 0, false);
      }
      await flush();
      assert.ok(volume.syncsStarted > before, `a flush after ${via} started no sync`);
      const settled = volume.syncsStarted;
      await flush();
      assert.equal(volume.syncsStarted, settled, "nothing new written: no new sync");
    }
  });

  test("writes past the inline bound, unaligned writes and FUA writes read back", async () => {
    const big = block(100, 2 * 1024 * 1024);
    await write(big, 2 * 1024 * 1024, false);
    const odd = block(101, 1000);
    await write(odd, 4 * 1024 * 1024 + 3, false);
    const durable = block(102, 4096);
    await write(durable, 5 * 1024 * 1024, true);
    assert.ok(Buffer.from(await readBack(2 * 1024 * 1024, big.length)).equals(Buffer.from(big)));
    assert.ok(Buffer.from(await readBack(4 * 1024 * 1024 + 3, 1000)).equals(Buffer.from(odd)));
    assert.ok(Buffer.from(await readBack(5 * 1024 * 1024, 4096)).equals(Buffer.from(durable)));
    await new Promise<void>((resolve, reject) =>
      volume.flush((err) => (err ? reject(err) : resolve())),
    );
  });
});

test("writes longer than one 32 KiB piece land whole, with an odd tail, inline or pooled", async () => {
  // Buffered writes go to the file in pieces (see writePieceBytes); the pieces must add up.
  for (const [length, offset] of [
    [100 * 1024 + 7, 6 * 1024 * 1024 + 5],
    [32 * 1024 + 1, 7 * 1024 * 1024],
    [1024 * 1024 + 4096, 8 * 1024 * 1024],
  ] as const) {
    const data = block(30 + length, length);
    await write(data, offset, false);
    assert.deepEqual(await readBack(offset, length), data, `${length} bytes at ${offset}`);
  }
});

describe("bulk writes (resync data)", () => {
  function writeBulk(
    data: Uint8Array,
    bufOffset: number,
    length: number,
    offset: number,
  ): Promise<void> {
    return new Promise((resolve, reject) =>
      volume.writeBulk(data, bufOffset, length, offset, (err) => (err ? reject(err) : resolve())),
    );
  }

  test("a large aligned write replaces what the page cache held for the range", async () => {
    const offset = 1024 * 1024;
    await write(block(1, 256 * 1024), offset, false);
    assert.deepEqual(await readBack(offset, 256 * 1024), block(1, 256 * 1024)); // now cached
    // From an odd offset of a larger buffer: the data itself is not aligned in memory.
    const source = new Uint8Array(256 * 1024 + 3);
    source.set(block(2, 256 * 1024), 3);
    await writeBulk(source, 3, 256 * 1024, offset);
    assert.deepEqual(await readBack(offset, 256 * 1024), block(2, 256 * 1024));
    assert.deepEqual(
      new Uint8Array(
        fs.readFileSync(path.join(dir, "v.img")).subarray(offset, offset + 256 * 1024),
      ),
      block(2, 256 * 1024),
    );
  });

  test("page-aligned memory goes to the disk as it is, and lands right", async (t) => {
    const aligned = native?.alignedBuffer;
    if (aligned === undefined) return t.skip("the native addon is not built");
    const offset = 4 * 1024 * 1024;
    const memory = Buffer.from(aligned(1024 * 1024 + 8192));
    // A page-aligned view inside the aligned memory, as a received resync reply's data is.
    memory.set(block(5, 1024 * 1024), 4096);
    await writeBulk(memory, 4096, 1024 * 1024, offset);
    assert.deepEqual(await readBack(offset, 1024 * 1024), block(5, 1024 * 1024));
    assert.throws(() => aligned(0), RangeError);
  });

  test("small or unaligned bulk writes are ordinary writes", async () => {
    await writeBulk(block(3, 4096), 0, 4096, 2 * 1024 * 1024);
    assert.deepEqual(await readBack(2 * 1024 * 1024, 4096), block(3, 4096));
    await writeBulk(block(4, 64 * 1024 + 512), 0, 64 * 1024 + 512, 3 * 1024 * 1024 + 512);
    assert.deepEqual(
      await readBack(3 * 1024 * 1024 + 512, 64 * 1024 + 512),
      block(4, 64 * 1024 + 512),
    );
  });
});
