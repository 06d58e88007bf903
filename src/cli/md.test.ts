import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const mainJs = path.join(path.dirname(fileURLToPath(import.meta.url)), "main.js");

function mirra(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: "utf8", timeout: 20000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "mirra-md-"));
}

test("md: create-md then dump-md, internal metadata", () => {
  const dir = tempDir();
  try {
    const backing = path.join(dir, "vol.img");
    const created = mirra("create-md", "--backing", backing, "--size", "64M", "--node-id", "2");
    assert.notEqual(created.code, 0, "missing --peers is refused");
    assert.match(created.stderr, /--peers/);
    assert.equal(fs.existsSync(backing), false, "nothing created on a usage error");
    const ok = mirra(
      "create-md",
      "--backing",
      backing,
      "--node-id",
      "2",
      "--peers",
      "2",
      "--size",
      "64M",
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /created internal metadata/);
    const dump = mirra("dump-md", "--backing", backing);
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /node id: +2/);
    assert.match(dump.stdout, /current uuid: +0x0000000000000004/);
    assert.match(dump.stdout, /0 of 1237 extents/);
    const json = JSON.parse(mirra("dump-md", "--backing", backing, "--json").stdout) as {
      nodeId: number;
      placement: string;
      volumeBytes: number;
      areaBytes: number;
    };
    assert.equal(json.nodeId, 2);
    assert.equal(json.placement, "internal");
    assert.ok(json.volumeBytes + json.areaBytes <= 64 * 1024 * 1024);
    // A valid area is never overwritten by accident.
    const again = mirra("create-md", "--backing", backing, "--node-id", "2", "--peers", "2");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds valid mirra metadata; use --force/);
    const forced = mirra(
      "create-md",
      "--backing",
      backing,
      "--node-id",
      "3",
      "--peers",
      "1",
      "--force",
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(mirra("dump-md", "--backing", backing).stdout, /node id: +3/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("md: external metadata, and a corrupted area gives a clear error and exit code 1", () => {
  const dir = tempDir();
  try {
    const backing = path.join(dir, "vol.img");
    const meta = path.join(dir, "vol.md");
    const ok = mirra(
      "create-md",
      "--backing",
      backing,
      "--meta",
      meta,
      "--size",
      "256M",
      "--node-id",
      "0",
      "--peers",
      "3",
      "--al-extents",
      "61",
    );
    assert.equal(ok.code, 0, ok.stderr);
    const json = JSON.parse(
      mirra("dump-md", "--backing", backing, "--meta", meta, "--json").stdout,
    ) as {
      volumeBytes: number;
      peerSlots: unknown[];
      activityLog: { alExtents: number };
    };
    assert.equal(json.volumeBytes, 256 * 1024 * 1024);
    assert.equal(json.peerSlots.length, 3);
    assert.equal(json.activityLog.alExtents, 61);
    // The operator forgets --meta: internal metadata is looked for and not found.
    const wrong = mirra("dump-md", "--backing", backing);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /no metadata found/);
    // Corrupt one byte in each superblock copy (the last 8 KiB of the file).
    const size = fs.statSync(meta).size;
    const fd = fs.openSync(meta, "r+");
    fs.writeSync(fd, new Uint8Array([0x5a]), 0, 1, size - 8192 + 300);
    fs.writeSync(fd, new Uint8Array([0x5a]), 0, 1, size - 4096 + 300);
    fs.closeSync(fd);
    const bad = mirra("dump-md", "--backing", backing, "--meta", meta);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /both superblock copies of the metadata are corrupt; refusing to guess/,
    );
    assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, "no stack trace for an operating error");
    // Foreign data: a file of text.
    const foreign = path.join(dir, "notes.txt");
    fs.writeFileSync(foreign, "x".repeat(100000));
    const f = mirra("dump-md", "--backing", foreign);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /foreign data/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
