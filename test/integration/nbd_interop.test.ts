//! Interop: `mirra serve` driven by NBD clients nobody here wrote — libnbd's nbdinfo, nbdcopy
//! and nbdsh, QEMU's qemu-img and fio's nbd engine — over TCP and over a Unix socket.
//!
//! One server with both listeners serves every export; each test uses its own export so tests
//! do not depend on one another's data. Every assertion is about bytes, flags and exit codes,
//! never about time. Data is deterministic (seeded AES-CTR), so a failure replays.
//!
//! What the NBD spec leaves to the server and mirra promises (checked here because mirra's
//! LocalVolume documents it): TRIM punches a hole in a sparse file, so the range reads back
//! as zeros and its blocks are freed; FUA and FLUSH reach the backing file, whose layout is
//! raw (volume offset = file offset).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  MiB,
  allocatedBytes,
  cleanupAll,
  describeResult,
  exportUri,
  lastJsonLine,
  makeTempDir,
  nbdsh,
  readRange,
  run,
  sha256File,
  startMirra,
  writePseudoRandomFile,
  type CommandResult,
  type MirraServer,
} from "./nbd_helpers.js";

const copySizeBytes = 256 * MiB;
const fioSizeBytes = 64 * MiB;
const roSizeBytes = 16 * MiB;
const scratchSizeBytes = 32 * MiB;

/** nbdinfo exits 0 for "yes", 2 for "no" on --can/--is; anything else is an error. */
const yes = 0;
const no = 2;

function assertOk(r: CommandResult, what: string): void {
  assert.ok(r.code === 0 && !r.timedOut, `${what} failed\n${describeResult(r)}`);
}

interface NbdinfoExport {
  "export-name": string;
  "export-size": number;
  is_read_only: boolean;
  can_flush: boolean;
  can_fua: boolean;
  can_trim: boolean;
  can_zero: boolean;
  can_multi_conn: boolean;
}

interface NbdinfoJson {
  protocol: string;
  structured: boolean;
  exports: NbdinfoExport[];
}

/** The same pattern nbdsh scripts build with `bytes((i * 7 + 3) % 251 for i in range(n))`. */
function pattern(n: number, reverse = false): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return reverse ? b.reverse() : b;
}

describe("NBD interop with stock clients", { timeout: 240_000 }, () => {
  let dir = "";
  let server: MirraServer;
  /** The default export's URI on each transport. */
  const base: Record<"tcp" | "unix", string> = { tcp: "", unix: "" };
  let sourceImage = "";
  let roImage = "";
  let roSha = "";
  let scratchFile = "";

  before(async () => {
    dir = await makeTempDir();
    sourceImage = join(dir, "source.img");
    roImage = join(dir, "ro.img");
    scratchFile = join(dir, "scratch.img");
    await writePseudoRandomFile(sourceImage, copySizeBytes, "mirra interop source");
    await writePseudoRandomFile(roImage, roSizeBytes, "mirra interop read-only");
    roSha = await sha256File(roImage);
    const file = (name: string): string => join(dir, name);
    server = await startMirra(
      [
        file("copy-tcp.img"),
        ...["--size", "256M", "--name", "copy-tcp"],
        ...["--socket", file("mirra.sock"), "--listen", "127.0.0.1:0"],
        ...["--export", `copy-unix=${file("copy-unix.img")},size=256M`],
        ...["--export", `fio-tcp=${file("fio-tcp.img")},size=64M`],
        ...["--export", `fio-unix=${file("fio-unix.img")},size=64M`],
        ...["--export", `ro=${roImage},ro`],
        ...["--export", `scratch=${scratchFile},size=32M`],
      ],
      2,
    );
    base.tcp = server.uris.find((u) => u.startsWith("nbd://")) ?? "";
    base.unix = server.uris.find((u) => u.startsWith("nbd+unix://")) ?? "";
    assert.ok(base.tcp && base.unix, `expected a TCP and a Unix URI, got ${server.uris.join(" ")}`);
  });

  after(cleanupAll);

  for (const transport of ["tcp", "unix"] as const) {
    test(`nbdinfo --list shows every named export with size and flags (${transport})`, async () => {
      const r = await run("nbdinfo", ["--list", "--json", base[transport]]);
      assertOk(r, "nbdinfo --list");
      const info = JSON.parse(r.stdout) as NbdinfoJson;
      assert.equal(info.protocol, "newstyle-fixed");
      assert.equal(info.structured, true, "structured replies negotiated");
      const byName = new Map(info.exports.map((e) => [e["export-name"], e]));
      assert.deepEqual([...byName.keys()].sort(), [
        "copy-tcp",
        "copy-unix",
        "fio-tcp",
        "fio-unix",
        "ro",
        "scratch",
      ]);
      const sizes: Record<string, number> = {
        "copy-tcp": copySizeBytes,
        "copy-unix": copySizeBytes,
        "fio-tcp": fioSizeBytes,
        "fio-unix": fioSizeBytes,
        ro: roSizeBytes,
        scratch: scratchSizeBytes,
      };
      for (const [name, size] of Object.entries(sizes)) {
        const e = byName.get(name)!;
        assert.equal(e["export-size"], size, `size of ${name}`);
        assert.equal(e.is_read_only, name === "ro", `read-only flag of ${name}`);
        assert.equal(e.can_flush, true, `can_flush of ${name}`);
        if (name !== "ro") {
          assert.equal(e.can_fua, true, `can_fua of ${name}`);
          assert.equal(e.can_trim, true, `can_trim of ${name}`);
          assert.equal(e.can_zero, true, `can_zero of ${name}`);
        }
        assert.equal(e.can_multi_conn, true, `can_multi_conn of ${name}`);
      }
    });
  }

  test("nbdinfo --can/--is/--size answer for a writable export", async () => {
    const uri = exportUri(base.tcp, "scratch");
    const expect: Array<[string[], number]> = [
      [["--can", "connect"], yes],
      [["--can", "read"], yes],
      [["--can", "write"], yes],
      [["--can", "flush"], yes],
      [["--can", "fua"], yes],
      [["--can", "trim"], yes],
      [["--can", "zero"], yes],
      [["--can", "multi-conn"], yes],
      [["--can", "structured-reply"], yes],
      [["--is", "read-only"], no],
    ];
    for (const [args, code] of expect) {
      const r = await run("nbdinfo", [...args, uri]);
      assert.equal(r.code, code, `nbdinfo ${args.join(" ")}\n${describeResult(r)}`);
    }
    const size = await run("nbdinfo", ["--size", uri]);
    assertOk(size, "nbdinfo --size");
    assert.equal(Number(size.stdout.trim()), scratchSizeBytes);
  });

  test("a read-only export says so, serves its file and refuses writes", async () => {
    const uri = exportUri(base.unix, "ro");
    assert.equal((await run("nbdinfo", ["--is", "read-only", uri])).code, yes);
    assert.equal((await run("nbdinfo", ["--can", "write", uri])).code, no);

    const out = join(dir, "ro-out.img");
    assertOk(await run("nbdcopy", [uri, out]), "nbdcopy out of the read-only export");
    assert.equal(await sha256File(out), roSha, "read-only export serves its file's bytes");

    const copyIn = await run("nbdcopy", [sourceImage, uri]);
    assert.notEqual(
      copyIn.code,
      0,
      `nbdcopy into a read-only export must fail\n${describeResult(copyIn)}`,
    );

    // libnbd refuses writes to a read-only export on its own; strict mode off makes it send
    // them, so the server's own refusal (EPERM, connection kept) is what is tested.
    const r = await nbdsh(
      uri,
      `
import json
h.set_strict_mode(0)
out = {}
for name, op in [("write", lambda: h.pwrite(b"x" * 4096, 0)),
                 ("trim", lambda: h.trim(4096, 0)),
                 ("zero", lambda: h.zero(4096, 0))]:
    try:
        op()
        out[name] = "ok"
    except nbd.Error as e:
        out[name] = str(e.errno)
out["read_after"] = len(h.pread(4096, 0))
print(json.dumps(out))
`,
    );
    assertOk(r, "nbdsh against the read-only export");
    const got = lastJsonLine<Record<string, string | number>>(r);
    assert.deepEqual(got, { write: "EPERM", trim: "EPERM", zero: "EPERM", read_after: 4096 });
    assert.equal(await sha256File(roImage), roSha, "the read-only file is unchanged");
  });

  for (const transport of ["tcp", "unix"] as const) {
    test(`nbdcopy 256 MiB in and back out is byte-identical; qemu-img agrees (${transport})`, async () => {
      const uri = exportUri(base[transport], `copy-${transport}`);
      assertOk(
        await run("nbdcopy", ["--flush", sourceImage, uri], { timeoutMs: 120_000 }),
        "nbdcopy in",
      );
      const out = join(dir, `copy-${transport}-out.img`);
      assertOk(await run("nbdcopy", [uri, out], { timeoutMs: 120_000 }), "nbdcopy out");
      assert.equal(
        await sha256File(out),
        await sha256File(sourceImage),
        "sha256 after a round trip",
      );
      const cmp = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", sourceImage, uri], {
        timeoutMs: 120_000,
      });
      assertOk(cmp, "qemu-img compare");
      assert.match(cmp.stdout, /Images are identical/);
    });
  }

  for (const transport of ["tcp", "unix"] as const) {
    test(`fio --ioengine=nbd randrw 70/30 qd64 with --verify=crc32c (${transport})`, async () => {
      const uri = exportUri(base[transport], `fio-${transport}`);
      const r = await run(
        "fio",
        [
          "--name=verify",
          "--ioengine=nbd",
          `--uri=${uri}`,
          "--rw=randrw",
          "--rwmixread=70",
          "--bs=4k",
          "--iodepth=64",
          `--size=${fioSizeBytes}`,
          "--verify=crc32c",
          "--verify_fatal=1",
          "--verify_state_save=0",
          "--randseed=20240611",
          "--output-format=json",
        ],
        { timeoutMs: 120_000 },
      );
      assertOk(r, "fio with verify");
      const doc = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as {
        jobs: Array<{ error: number; read: { io_bytes: number }; write: { io_bytes: number } }>;
      };
      const job = doc.jobs[0]!;
      assert.equal(job.error, 0);
      assert.ok(job.write.io_bytes > 0, "fio wrote");
      // The verify pass reads back every block written, so reads cover at least the writes.
      assert.ok(job.read.io_bytes >= job.write.io_bytes, "fio read back what it wrote");
    });
  }

  test("TRIM frees blocks and reads back zeros; WRITE_ZEROES reads back zeros", async () => {
    const uri = exportUri(base.tcp, "scratch");
    const fill = await nbdsh(
      uri,
      `
for i in range(8):
    h.pwrite(b"\\xab" * (1 << 20), i << 20)
h.flush()
`,
    );
    assertOk(fill, "nbdsh fill");
    const allocatedBefore = await allocatedBytes(scratchFile);
    assert.ok(allocatedBefore >= 8 * MiB, `8 MiB written, ${allocatedBefore} bytes allocated`);

    // [0,4M) trim, [4M,5M) untouched, [5M,6M) zero keeping allocation, [6M,8M) plain zero.
    const r = await nbdsh(
      uri,
      `
import json
h.trim(4 << 20, 0)
h.zero(1 << 20, 5 << 20, nbd.CMD_FLAG_NO_HOLE)
h.zero(2 << 20, 6 << 20)
h.flush()
def all_bytes(off, n, value):
    return all(h.pread(1 << 20, o) == bytes([value]) * (1 << 20) for o in range(off, off + n, 1 << 20))
print(json.dumps({
    "trimmed_zero": all_bytes(0, 4 << 20, 0),
    "untouched": all_bytes(4 << 20, 1 << 20, 0xab),
    "zero_no_hole": all_bytes(5 << 20, 1 << 20, 0),
    "zero": all_bytes(6 << 20, 2 << 20, 0),
}))
`,
    );
    assertOk(r, "nbdsh trim/zero");
    assert.deepEqual(lastJsonLine(r), {
      trimmed_zero: true,
      untouched: true,
      zero_no_hole: true,
      zero: true,
    });
    const freed = allocatedBefore - (await allocatedBytes(scratchFile));
    assert.ok(freed >= 4 * MiB, `TRIM of 4 MiB freed only ${freed} bytes of the sparse file`);
    const file = await readRange(scratchFile, 0, 8 * MiB);
    assert.ok(
      file.subarray(0, 4 * MiB).every((b) => b === 0),
      "trimmed range is zero in the file",
    );
    assert.ok(
      file.subarray(4 * MiB, 5 * MiB).every((b) => b === 0xab),
      "untouched range kept",
    );
    assert.ok(
      file.subarray(5 * MiB).every((b) => b === 0),
      "zeroed ranges are zero in the file",
    );
  });

  test("FUA and FLUSH reach the backing file; a second connection sees the writes", async () => {
    const uri = exportUri(base.unix, "scratch");
    const fuaOffset = 16 * MiB;
    const flushOffset = 17 * MiB;
    const r = await nbdsh(
      uri,
      `
import json
pat = bytes((i * 7 + 3) % 251 for i in range(65536))
h.pwrite(pat, ${fuaOffset}, nbd.CMD_FLAG_FUA)
h2 = nbd.NBD()
h2.connect_uri(h.get_uri())
seen_fua = h2.pread(len(pat), ${fuaOffset}) == pat
h.pwrite(pat[::-1], ${flushOffset})
h.flush()
seen_flush = h2.pread(len(pat), ${flushOffset}) == pat[::-1]
h2.shutdown()
print(json.dumps({"can_fua": h.can_fua(), "can_flush": h.can_flush(),
                  "can_multi_conn": h.can_multi_conn(),
                  "seen_fua": seen_fua, "seen_flush": seen_flush}))
`,
    );
    assertOk(r, "nbdsh FUA/flush");
    assert.deepEqual(lastJsonLine(r), {
      can_fua: true,
      can_flush: true,
      can_multi_conn: true,
      seen_fua: true,
      seen_flush: true,
    });
    assert.deepEqual(await readRange(scratchFile, fuaOffset, 65536), pattern(65536));
    assert.deepEqual(await readRange(scratchFile, flushOffset, 65536), pattern(65536, true));
  });

  test("out-of-range requests fail with an error and the connection stays usable", async () => {
    const uri = exportUri(base.tcp, "scratch");
    // Strict mode off: libnbd would otherwise reject these itself and never send them.
    const r = await nbdsh(
      uri,
      `
import json
h.set_strict_mode(0)
size = h.get_size()
out = {}
for name, op in [("read", lambda: h.pread(1024, size - 512)),
                 ("write", lambda: h.pwrite(b"y" * 1024, size - 512)),
                 ("trim", lambda: h.trim(1 << 20, size)),
                 ("zero", lambda: h.zero(1 << 20, size))]:
    try:
        op()
        out[name] = "ok"
    except nbd.Error as e:
        out[name] = "error"
out["read_after"] = len(h.pread(4096, 0))
print(json.dumps(out))
`,
    );
    assertOk(r, "nbdsh out-of-range");
    assert.deepEqual(lastJsonLine(r), {
      read: "error",
      write: "error",
      trim: "error",
      zero: "error",
      read_after: 4096,
    });
  });

  test("the server exits cleanly on SIGTERM", async () => {
    const status = await server.stop();
    assert.deepEqual(status, { code: 0, signal: null }, `exit status\n${server.stderr()}`);
  });
});
