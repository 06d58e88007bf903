// The local backend on a real block device: a loop device over a file, served over NBD.
// Needs root and /dev/loop-control (present on CI's machines); skipped with the reason if not.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as C from "../../src/nbd/protocol/constants.js";
import { NbdServer } from "../../src/nbd/server.js";
import { LocalVolume } from "../../src/storage/local_volume.js";
import { createLogger } from "../../src/io/log.js";
import { TestClient } from "../../src/nbd/test_client.js";

function setUpLoop(file: string): string | undefined {
  try {
    return execFileSync("losetup", ["-f", "--show", file], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-blk-"));
const backing = path.join(dir, "backing.img");
fs.writeFileSync(backing, "");
fs.truncateSync(backing, 32 << 20);
const loop =
  process.getuid?.() === 0 && fs.existsSync("/dev/loop-control") ? setUpLoop(backing) : undefined;

describe(
  "local volume on a block device",
  { skip: loop ? false : "needs root and a free loop device" },
  () => {
    let server: NbdServer;
    let volume: LocalVolume;
    const sock = path.join(dir, "nbd.sock");

    before(async () => {
      volume = LocalVolume.open({ path: loop! });
      server = new NbdServer({
        exports: [{ name: "blk", device: volume }],
        logger: createLogger({ level: "error" }),
      });
      await server.listenUnix(sock);
    });

    after(async () => {
      await server?.close(1000);
      await volume?.close();
      if (loop) execFileSync("losetup", ["-d", loop]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test("size comes from the device, and data, zeroes and trims land on it", async () => {
      assert.equal(volume.sizeBytes, 32 << 20);
      const c = await TestClient.open({ path: sock });
      await c.go("blk");
      const data = Buffer.alloc(65536, 0x5a);
      c.send(C.CMD_WRITE, 1 << 20, data.length, 1n, C.CMD_FLAG_FUA, data);
      assert.equal((await c.reply()).error, 0);
      c.send(C.CMD_WRITE_ZEROES, (1 << 20) + 4096, 4096, 2n, C.CMD_FLAG_NO_HOLE);
      assert.equal((await c.reply()).error, 0);
      c.send(C.CMD_TRIM, 8 << 20, 1 << 20, 3n);
      assert.equal((await c.reply()).error, 0);
      c.send(C.CMD_FLUSH, 0, 0, 4n);
      assert.equal((await c.reply()).error, 0);
      c.close();
      // What the device holds is what the file behind the loop device holds.
      const fd = fs.openSync(backing, "r");
      const back = Buffer.alloc(65536);
      fs.readSync(fd, back, 0, back.length, 1 << 20);
      fs.closeSync(fd);
      const expected = Buffer.from(data);
      expected.fill(0, 4096, 8192);
      assert.ok(back.equals(expected));
    });
  },
);
