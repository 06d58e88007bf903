import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolError } from "../../stdx/errors.js";
import type { UuidSet } from "../types.js";
import {
  encodeFrame,
  encodeFrameParts,
  frameHeaderBytes,
  messageCodes,
  messageFieldNames,
  payloadBytesMax,
  type WireMessage,
} from "./codec.js";
import { FrameParser } from "./parser.js";
import { diskStateNames, messageSpecs, roleNames } from "./schema.js";
import { authMessage, checkHello, helloFor, macEqual, rejectReason } from "./handshake.js";

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 2 ** 40 });
const mask = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const blocks = fc
  .integer({ min: 1, max: 3 })
  .chain((n) => fc.uint8Array({ minLength: n * 4096, maxLength: n * 4096 }));
const uuids: fc.Arbitrary<UuidSet> = fc.record({
  currentUuid: u64,
  bitmapUuids: fc.array(u64, { maxLength: 32 }),
  historyUuids: fc.array(u64, { maxLength: 8 }),
});
const pairs = fc.array(fc.tuple(small, small), { maxLength: 20 }).map((ps) => ps.flat());
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const name = fc.string({ maxLength: 40 });

/** One arbitrary per message type; typed so a new PeerMessage variant must be added here. */
const arbitraries: { [K in WireMessage["type"]]: fc.Arbitrary<Extract<WireMessage, { type: K }>> } =
  {
    hello: fc.record({
      type: fc.constant("hello"),
      protocolMin: fc.integer({ min: 0, max: 0xffff }),
      protocolMax: fc.integer({ min: 0, max: 0xffff }),
      nodeId: fc.integer({ min: 0, max: 31 }),
      peerNodeId: fc.integer({ min: 0, max: 31 }),
      featureFlags: fc.integer({ min: 0, max: 0xffffffff }),
      resourceName: name,
    }),
    authChallenge: fc.record({ type: fc.constant("authChallenge"), challenge: bytes32 }),
    authResponse: fc.record({ type: fc.constant("authResponse"), mac: bytes32 }),
    reject: fc.record({
      type: fc.constant("reject"),
      reason: fc.integer({ min: 0, max: 0xffff }),
      message: fc.string({ maxLength: 100 }),
    }),
    state: fc.record(
      {
        type: fc.constant("state"),
        role: fc.constantFrom(...roleNames),
        disk: fc.constantFrom(...diskStateNames),
        uuids,
        crashedPrimary: fc.boolean(),
        bitsForYou: u64,
        discardMyData: fc.boolean(),
        promotionSeq: u64,
        reply: fc.boolean(),
        connectedMask: mask,
        syncTowardUuid: u64,
        handshakeId: u64,
        judged: u64,
        streamId: u64,
        streamSeq: u64,
        syncBaseUuid: u64,
      },
      {
        requiredKeys: [
          "type",
          "role",
          "disk",
          "uuids",
          "crashedPrimary",
          "bitsForYou",
          "discardMyData",
          "promotionSeq",
          "reply",
          "connectedMask",
        ],
      },
    ),
    data: fc.record({
      type: fc.constant("data"),
      seq: u64,
      epoch: u64,
      firstBlock: small,
      data: blocks,
      ack: fc.constantFrom("none" as const, "recv" as const, "write" as const),
      targets: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    }),
    recvAck: fc.record({ type: fc.constant("recvAck"), seq: u64 }),
    writeAck: fc.record({ type: fc.constant("writeAck"), seq: u64 }),
    negAck: fc.record({ type: fc.constant("negAck"), seq: u64 }),
    barrier: fc.record({ type: fc.constant("barrier"), epoch: u64 }),
    barrierAck: fc.record({ type: fc.constant("barrierAck"), epoch: u64 }),
    readRequest: fc.record({
      type: fc.constant("readRequest"),
      id: u64,
      firstBlock: small,
      blockCount: small,
    }),
    readReply: fc.record(
      { type: fc.constant("readReply"), id: u64, ok: fc.boolean(), data: blocks },
      { requiredKeys: ["type", "id", "ok"] },
    ),
    promoteRequest: fc.record({ type: fc.constant("promoteRequest"), id: u64 }),
    promoteReply: fc.record({ type: fc.constant("promoteReply"), id: u64, granted: fc.boolean() }),
    bitmap: fc.record(
      {
        type: fc.constant("bitmap"),
        ranges: pairs,
        last: fc.boolean(),
        covered: pairs,
        coveredStreamId: u64,
        coveredStreamSeq: u64,
      },
      { requiredKeys: ["type", "ranges", "last"] },
    ),
    syncStart: fc.record({ type: fc.constant("syncStart"), uuids, full: fc.boolean() }),
    resyncRequest: fc.record({
      type: fc.constant("resyncRequest"),
      block: small,
      blockCount: small,
    }),
    checksumRequest: fc.record({
      type: fc.constant("checksumRequest"),
      block: small,
      blockCount: small,
      digest: fc.integer({ min: 0, max: 0xffffffff }),
    }),
    resyncReply: fc.record(
      {
        type: fc.constant("resyncReply"),
        block: small,
        ok: fc.boolean(),
        streamId: u64,
        streamSeq: u64,
        data: blocks,
      },
      { requiredKeys: ["type", "block", "ok"] },
    ),
    inSync: fc.record({ type: fc.constant("inSync"), block: small, blockCount: small }),
    resyncAck: fc.record({ type: fc.constant("resyncAck"), block: small, blockCount: small }),
    resyncDone: fc.record({ type: fc.constant("resyncDone") }),
    verifyRequest: fc.record({
      type: fc.constant("verifyRequest"),
      block: small,
      blockCount: small,
    }),
    verifyReply: fc.record({
      type: fc.constant("verifyReply"),
      block: small,
      blockCount: small,
      ok: fc.boolean(),
      digest: fc.integer({ min: 0, max: 0xffffffff }),
    }),
    verifyDone: fc.record({ type: fc.constant("verifyDone") }),
    peerAck: fc.record({
      type: fc.constant("peerAck"),
      firstBlock: small,
      blockCount: small,
      mask,
    }),
    ping: fc.record({ type: fc.constant("ping"), seq: u32 }),
    pingAck: fc.record({ type: fc.constant("pingAck"), seq: u32 }),
    resizeRequest: fc.record({ type: fc.constant("resizeRequest"), id: u32, sizeBlocks: small }),
    resizeReply: fc.record({ type: fc.constant("resizeReply"), id: u32, capacityBlocks: small }),
    resize: fc.record({
      type: fc.constant("resize"),
      id: u32,
      sizeBlocks: small,
      assumeClean: fc.boolean(),
    }),
    resizeAck: fc.record({ type: fc.constant("resizeAck"), id: u32, ok: fc.boolean() }),
  };

const anyMessage: fc.Arbitrary<WireMessage> = fc.oneof(
  ...Object.values(arbitraries).map((a) => a as fc.Arbitrary<WireMessage>),
);

function parseAll(chunks: readonly Uint8Array[]): WireMessage[] {
  const out: WireMessage[] = [];
  const parser = new FrameParser((m) => out.push(m));
  for (const c of chunks) parser.push(c);
  assert.equal(parser.bufferedBytes, 0, "nothing left over");
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("wire: the catalogue and the type codes agree; codes are unique", () => {
  const codes = new Set<number>();
  for (const spec of messageSpecs) {
    const type = spec.name as WireMessage["type"];
    assert.equal(messageCodes[type], spec.code, spec.name);
    assert.deepEqual(
      spec.fields.map((f) => f.name).sort(),
      Object.keys(messageFieldNames[type]).sort(),
      `${spec.name}: the catalogue carries exactly the fields of the type`,
    );
    assert.ok(!codes.has(spec.code));
    codes.add(spec.code);
    const blockFields = spec.fields.filter((f) => /blocks/i.test(f.type.kind));
    if (blockFields.length) assert.equal(spec.fields.at(-1), blockFields[0], "data field last");
  }
  assert.equal(codes.size, Object.keys(messageCodes).length);
});

for (const [type, arb] of Object.entries(arbitraries)) {
  test(`wire: ${type} round-trips (property)`, () => {
    fc.assert(
      fc.property(arb as fc.Arbitrary<WireMessage>, (msg) => {
        const frame = encodeFrame(msg);
        assert.deepStrictEqual(parseAll([frame]), [structuredClone(msg)]);
        assert.deepStrictEqual(concat(encodeFrameParts(msg)), frame);
      }),
      { numRuns: 40 },
    );
  });
}

test("wire: any split of a frame stream parses the same, down to single bytes", () => {
  fc.assert(
    fc.property(
      fc.array(anyMessage, { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 30 }),
      (msgs, cuts) => {
        const stream = concat(msgs.map(encodeFrame));
        const chunks: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(stream.slice(at, at + n));
          at += n;
        }
        assert.deepStrictEqual(parseAll(chunks), structuredClone(msgs));
      },
    ),
    { numRuns: 100 },
  );
  const msgs: WireMessage[] = [
    { type: "ping", seq: 0 },
    {
      type: "data",
      seq: 1,
      epoch: 2,
      firstBlock: 3,
      data: new Uint8Array(4096).fill(7),
      ack: "write",
    },
    { type: "bitmap", ranges: [1, 2], last: true },
  ];
  const stream = concat(msgs.map(encodeFrame));
  const byteByByte = Array.from(stream, (b) => new Uint8Array([b]));
  assert.deepStrictEqual(parseAll(byteByByte), msgs);
});

/** Feeds hostile bytes; only ProtocolError may escape, and buffering stays bounded. */
function feedHostile(chunks: readonly Uint8Array[]): void {
  const parser = new FrameParser(() => {});
  try {
    for (const c of chunks) {
      parser.push(c);
      assert.ok(parser.bufferedBytes <= frameHeaderBytes + payloadBytesMax);
    }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    assert.throws(() => parser.push(new Uint8Array([0])), ProtocolError, "stays failed");
  }
}

/**
 * Parses `stream` the way a peer link's socket reads it: into the parser's payload window
 * when one is open, else into a scratch slab after the bytes that received frames still view
 * (a new slab once fewer than `readMin` bytes are left). Each read takes at most the next cut.
 */
function parseLikeSocket(
  stream: Uint8Array,
  cuts: readonly number[],
  windowMin: number,
  slabBytes: number,
): WireMessage[] {
  const out: WireMessage[] = [];
  const parser = new FrameParser((m) => out.push(m));
  const readMin = Math.max(1, slabBytes >> 2);
  let slab = new Uint8Array(slabBytes);
  let kept = 0;
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const window = parser.payloadWindow(windowMin);
    if (window === undefined && slab.length - kept < readMin) {
      slab = new Uint8Array(slabBytes);
      kept = 0;
    }
    const into = window ?? slab.subarray(kept);
    const n = Math.min(cuts[i % cuts.length]!, into.length, stream.length - at);
    into.set(stream.subarray(at, at + n));
    at += n;
    if (window !== undefined) parser.filled(n);
    else {
      parser.push(into.subarray(0, n));
      if (parser.takeKept()) kept += n;
    }
  }
  assert.equal(parser.bufferedBytes, 0, "nothing left over");
  return out;
}

test("wire: reads into payload windows and a reused slab parse the same as fresh chunks", () => {
  fc.assert(
    fc.property(
      // Mostly messages with block data: those are the ones that keep views of a slab.
      fc.array(fc.oneof(anyMessage, arbitraries.data, arbitraries.resyncReply), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.array(fc.integer({ min: 1, max: 20000 }), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 64, max: 40000 }),
      (msgs, cuts, windowMin, chunkBytes) => {
        const stream = concat(msgs.map(encodeFrame));
        assert.deepStrictEqual(
          parseLikeSocket(stream, cuts, windowMin, chunkBytes),
          structuredClone(msgs),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test("wire: a payload window is the missing rest of the payload, and only that", () => {
  const msg: WireMessage = {
    type: "resyncReply",
    block: 8,
    ok: true,
    data: new Uint8Array(65536).fill(3),
  };
  const frame = encodeFrame(msg);
  const out: WireMessage[] = [];
  const parser = new FrameParser((m) => out.push(m));
  assert.equal(parser.payloadWindow(1), undefined, "no payload being gathered");
  parser.push(frame.subarray(0, 1000));
  const window = parser.payloadWindow(1)!;
  assert.equal(window.length, frame.length - 1000);
  assert.equal(parser.payloadWindow(window.length + 1), undefined, "less missing than asked");
  window.set(frame.subarray(1000, 5000));
  parser.filled(4000);
  assert.equal(parser.payloadWindow(1)!.length, frame.length - 5000);
  assert.throws(() => parser.filled(frame.length), /filled within the window/);
  parser.push(frame.subarray(5000));
  assert.deepStrictEqual(out, [structuredClone(msg)]);
  assert.equal(parser.takeKept(), false, "a gathered payload keeps no chunk");
  parser.push(encodeFrame(msg));
  assert.equal(parser.takeKept(), true, "a frame decoded in place keeps its chunk");
  assert.equal(parser.takeKept(), false, "and the flag resets");
  parser.push(encodeFrame({ type: "ping", seq: 1 }));
  assert.equal(parser.takeKept(), false, "a frame without block data keeps nothing");
});

test("wire fuzz: random bytes raise only ProtocolError", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), feedHostile),
    { numRuns: 500 },
  );
});

test("wire fuzz: mutated valid frames raise only ProtocolError, or decode", () => {
  fc.assert(
    fc.property(
      fc.array(anyMessage, { minLength: 1, maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.integer({ min: 1, max: 64 }),
      (msgs, mutations, chunk) => {
        const stream = concat(msgs.map(encodeFrame));
        for (const [at, value] of mutations) stream[at % stream.length] = value;
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < stream.length; i += chunk) chunks.push(stream.subarray(i, i + chunk));
        feedHostile(chunks);
      },
    ),
    { numRuns: 400 },
  );
});

test("wire: oversized and lying lengths are refused before any allocation", () => {
  const header = (code: number, payloadBytes: number): Uint8Array => {
    const h = new Uint8Array(12);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x4d495252);
    v.setUint8(4, 1);
    v.setUint8(5, code);
    v.setUint32(8, payloadBytes);
    return h;
  };
  const parser = new FrameParser(() => assert.fail("no message"));
  assert.throws(() => parser.push(header(0x11, 0xffffffff)), /exceeds/);
  const preAuth = new FrameParser(() => assert.fail("no message"));
  preAuth.limitPayload(4096);
  assert.throws(() => preAuth.push(header(0x11, 8192)), /exceeds 4096 at this stage/);
  // A bitmap claiming 2^32-1 ranges in a 5-byte payload.
  const lying = concat([header(0x1b, 5), new Uint8Array([0, 0xff, 0xff, 0xff, 0xff])]);
  assert.throws(() => new FrameParser(() => {}).push(lying), /do not fit/);
  // Block data that is not whole 4 KiB blocks.
  const odd = concat([
    header(0x18, 8 + 1 + 1 + 4 + 3),
    new Uint8Array(8),
    new Uint8Array([1, 1, 0, 0, 0, 3, 1, 2, 3]),
  ]);
  assert.throws(() => new FrameParser(() => {}).push(odd), ProtocolError);
  assert.throws(() => new FrameParser(() => {}).push(header(0x7f, 0)), /unknown message type 0x7f/);
  const badMagic = header(0x27, 0);
  badMagic[0] = 0x47; // "GET " from a stray HTTP client
  assert.throws(() => new FrameParser(() => {}).push(badMagic), /bad frame magic/);
  const trailing = concat([header(0x27, 5), new Uint8Array([0, 0, 0, 0, 0])]);
  assert.throws(() => new FrameParser(() => {}).push(trailing), /trailing/);
});

test("handshake: hello checks and the auth message", () => {
  const a = { resourceName: "r0", nodeId: 0, peerNodeId: 1 };
  const b = { resourceName: "r0", nodeId: 1, peerNodeId: 0 };
  const ok = checkHello(a, helloFor(b));
  assert.ok(ok.ok && ok.version === 2);
  const wrongRes = checkHello(a, helloFor({ ...b, resourceName: "r1" }));
  assert.ok(!wrongRes.ok && wrongRes.reason === rejectReason.resource);
  const wrongNode = checkHello(a, helloFor({ ...b, nodeId: 2 }));
  assert.ok(!wrongNode.ok && wrongNode.reason === rejectReason.nodeId);
  const future = checkHello(a, { ...helloFor(b), protocolMin: 3, protocolMax: 4 });
  assert.ok(!future.ok && future.reason === rejectReason.version);
  // Version 1 had pings without seq: its nodes are refused, not misunderstood.
  const past = checkHello(a, { ...helloFor(b), protocolMin: 1, protocolMax: 1 });
  assert.ok(!past.ok && past.reason === rejectReason.version);
  const challenge = new Uint8Array(32).fill(9);
  const m0 = authMessage(challenge, 0, "r0");
  const m1 = authMessage(challenge, 1, "r0");
  assert.ok(!macEqual(m0, m1), "the responder's node id is bound into the MAC input");
  assert.ok(macEqual(m0, authMessage(challenge, 0, "r0")));
  assert.throws(() => authMessage(new Uint8Array(3), 0, "r0"), ProtocolError);
});

test("wire: docs/protocol.md documents every message type with its code", async () => {
  const { readFileSync } = await import("node:fs");
  const doc = readFileSync(new URL("../../../../docs/protocol.md", import.meta.url), "utf8");
  for (const spec of messageSpecs) {
    const heading = `#### \`${spec.name}\` (0x${spec.code.toString(16).padStart(2, "0")})`;
    assert.ok(doc.includes(heading), `docs/protocol.md lacks "${heading}"`);
    for (const field of spec.fields) assert.ok(doc.includes(`\`${field.name}\``), field.name);
  }
});
