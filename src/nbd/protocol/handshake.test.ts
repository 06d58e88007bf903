import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import * as C from "./constants.js";
import { Handshake, type ExportCatalog, type ExportInfo, type HandshakeStep } from "./handshake.js";
import { goData, optionBytes } from "../test_client.js";
import { hostileBytes } from "../fuzz_input.js";

const disk: ExportInfo = {
  name: "disk",
  description: "a test disk",
  sizeBytes: 1 << 20,
  readOnly: false,
  canTrim: true,
  canFastZero: true,
};
const ro: ExportInfo = { ...disk, name: "ro", description: "", readOnly: true };
const catalog: ExportCatalog = {
  list: () => [disk, ro],
  find: (name) => (name === "" ? disk : [disk, ro].find((e) => e.name === name)),
};

const clientFlags = Buffer.from([0, 0, 0, C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES]);

function replyType(reply: Uint8Array): number {
  return Buffer.from(reply).readUInt32BE(12);
}

function run(...chunks: Uint8Array[]): HandshakeStep[] {
  const hs = new Handshake(catalog);
  return chunks.map((c) => hs.push(c));
}

describe("nbd handshake", () => {
  test("greeting carries NBDMAGIC, IHAVEOPT and fixed-newstyle + no-zeroes flags", () => {
    const g = Buffer.from(new Handshake(catalog).greeting());
    assert.equal(g.length, 18);
    assert.equal(g.readBigUInt64BE(0), C.NBDMAGIC);
    assert.equal(g.readBigUInt64BE(8), C.IHAVEOPT);
    assert.equal(g.readUInt16BE(16), C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES);
  });

  test("unknown client flags close the connection", () => {
    const [step] = run(Buffer.from([0, 0, 0, 0x80]));
    assert.equal(step!.outcome.kind, "close");
  });

  test("LIST answers one SERVER reply per export, then ACK", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_LIST));
    assert.deepEqual(step!.replies.map(replyType), [C.REP_SERVER, C.REP_SERVER, C.REP_ACK]);
    const first = Buffer.from(step!.replies[0]!);
    const nameLength = first.readUInt32BE(20);
    assert.equal(first.subarray(24, 24 + nameLength).toString(), "disk");
    assert.equal(first.subarray(24 + nameLength).toString(), "a test disk");
  });

  test("LIST with data is INVALID and haggling goes on", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_LIST, Buffer.from("x")));
    assert.deepEqual(step!.replies.map(replyType), [C.REP_ERR_INVALID]);
    assert.equal(step!.outcome.kind, "continue");
  });

  test("INFO reports size, flags and block sizes and stays in haggling", () => {
    const [, step] = run(
      clientFlags,
      optionBytes(C.OPT_INFO, goData("disk", [C.INFO_NAME, C.INFO_DESCRIPTION])),
    );
    const types = step!.replies.map((r) =>
      replyType(r) === C.REP_INFO ? Buffer.from(r).readUInt16BE(20) : -1,
    );
    assert.deepEqual(types, [
      C.INFO_EXPORT,
      C.INFO_BLOCK_SIZE,
      C.INFO_NAME,
      C.INFO_DESCRIPTION,
      -1,
    ]);
    const exp = Buffer.from(step!.replies[0]!);
    assert.equal(Number(exp.readBigUInt64BE(22)), disk.sizeBytes);
    const flags = exp.readUInt16BE(30);
    assert.ok(flags & C.FLAG_CAN_MULTI_CONN && flags & C.FLAG_SEND_FUA && flags & C.FLAG_SEND_TRIM);
    const bs = Buffer.from(step!.replies[1]!);
    assert.deepEqual(
      [bs.readUInt32BE(22), bs.readUInt32BE(26), bs.readUInt32BE(30)],
      [512, 4096, 32 * 1024 * 1024],
    );
    assert.equal(step!.outcome.kind, "continue");
  });

  test("GO to a read-only export enters transmission with READ_ONLY and no write features", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_GO, goData("ro")));
    assert.equal(step!.outcome.kind, "transmission");
    if (step!.outcome.kind !== "transmission") return;
    const f = step!.outcome.transmissionFlags;
    assert.ok(f & C.FLAG_READ_ONLY);
    assert.equal(f & (C.FLAG_SEND_TRIM | C.FLAG_SEND_WRITE_ZEROES), 0);
  });

  test("GO to an unknown export is ERR_UNKNOWN and haggling goes on", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_GO, goData("nope")));
    assert.deepEqual(step!.replies.map(replyType), [C.REP_ERR_UNKNOWN]);
    assert.equal(step!.outcome.kind, "continue");
  });

  test("GO with malformed data is ERR_INVALID", () => {
    const bad = goData("disk");
    bad.writeUInt32BE(999, 0);
    const [, step] = run(clientFlags, optionBytes(C.OPT_GO, bad));
    assert.deepEqual(step!.replies.map(replyType), [C.REP_ERR_INVALID]);
  });

  test("the empty name selects the default export", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_GO, goData("")));
    assert.equal(step!.outcome.kind === "transmission" && step!.outcome.export.name, "disk");
  });

  test("EXPORT_NAME answers size and flags, without zeroes when NO_ZEROES was agreed", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_EXPORT_NAME, Buffer.from("disk")));
    assert.equal(step!.replies[0]!.length, 10);
    const withZeroes = new Handshake(catalog);
    withZeroes.push(Buffer.from([0, 0, 0, 1]));
    const s = withZeroes.push(optionBytes(C.OPT_EXPORT_NAME, Buffer.from("disk")));
    assert.equal(s.replies[0]!.length, 134);
  });

  test("EXPORT_NAME for an unknown export closes (it cannot carry an error)", () => {
    const [, step] = run(clientFlags, optionBytes(C.OPT_EXPORT_NAME, Buffer.from("nope")));
    assert.equal(step!.outcome.kind, "close");
  });

  test("unsupported options get ERR_UNSUP, STARTTLS gets ERR_POLICY, ABORT gets ACK and closes", () => {
    const [, a, b, c] = run(
      clientFlags,
      optionBytes(C.OPT_LIST_META_CONTEXT, Buffer.alloc(8)),
      optionBytes(C.OPT_STARTTLS),
      optionBytes(C.OPT_ABORT),
    );
    assert.deepEqual(a!.replies.map(replyType), [C.REP_ERR_UNSUP]);
    assert.deepEqual(b!.replies.map(replyType), [C.REP_ERR_POLICY]);
    assert.deepEqual(c!.replies.map(replyType), [C.REP_ACK]);
    assert.equal(c!.outcome.kind, "close");
  });

  test("bad option magic and oversized option data close the connection", () => {
    const bad = optionBytes(C.OPT_LIST);
    bad[0] ^= 0xff;
    assert.equal(run(clientFlags, bad)[1]!.outcome.kind, "close");
    const huge = optionBytes(C.OPT_GO);
    huge.writeUInt32BE(C.OPTION_DATA_BYTES_MAX + 1, 12);
    assert.equal(run(clientFlags, huge)[1]!.outcome.kind, "close");
  });

  test("bytes after GO are kept for the transmission phase", () => {
    const hs = new Handshake(catalog);
    hs.push(clientFlags);
    const step = hs.push(
      Buffer.concat([optionBytes(C.OPT_GO, goData("disk")), Buffer.from([1, 2, 3])]),
    );
    assert.equal(step.outcome.kind, "transmission");
    assert.deepEqual([...hs.leftover()], [1, 2, 3]);
  });

  test("property: feeding a session byte by byte gives the same replies as in one piece", () => {
    const session = Buffer.concat([
      clientFlags,
      optionBytes(C.OPT_STRUCTURED_REPLY),
      optionBytes(C.OPT_LIST),
      optionBytes(C.OPT_INFO, goData("ro", [C.INFO_NAME])),
      optionBytes(C.OPT_GO, goData("disk")),
    ]);
    const whole = new Handshake(catalog).push(session);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: session.length }), { maxLength: 20 }),
        (cuts) => {
          const hs = new Handshake(catalog);
          const points = [...new Set(cuts)].sort((a, b) => a - b);
          const replies: Uint8Array[] = [];
          let last = 0;
          let outcome = "continue";
          for (const p of [...points, session.length]) {
            if (p === last) continue;
            const step = hs.push(session.subarray(last, p));
            replies.push(...step.replies);
            outcome = step.outcome.kind;
            last = p;
          }
          assert.equal(outcome, "transmission");
          assert.deepEqual(Buffer.concat(replies), Buffer.concat(whole.replies));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("fuzz: random and mutated input never throws and never buffers without bound", () => {
    const valid = Buffer.concat([
      clientFlags,
      optionBytes(C.OPT_STRUCTURED_REPLY),
      optionBytes(C.OPT_INFO, goData("disk", [1, 2, 3])),
      optionBytes(C.OPT_GO, goData("disk")),
    ]);
    const input = hostileBytes(valid, { randomBytesMax: 2048, mutationsMax: 8 });
    fc.assert(
      fc.property(input, fc.array(fc.nat(4096), { maxLength: 6 }), (bytes, cuts) => {
        const hs = new Handshake(catalog);
        let last = 0;
        for (const p of [
          ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b),
          bytes.length,
        ]) {
          const step = hs.push(bytes.subarray(last, p));
          last = p;
          if (step.outcome.kind !== "continue") break;
        }
        assert.ok(hs.leftover().length <= bytes.length);
      }),
      { numRuns: 3000 },
    );
  });
});
