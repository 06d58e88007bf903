import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MetadataError } from "../../stdx/errors.js";
import { createPersistedMeta } from "../meta.js";
import type { MetadataRecord, PersistedMeta, SuperblockRecord } from "../types.js";
import { crc32c } from "./crc32c.js";
import {
  MetadataWriter,
  decodeMetadataArea,
  encodeMetadataArea,
  readMetadataArea,
  type DecodedArea,
  type MetadataAreaParams,
  type MetadataWrite,
} from "./area.js";
import { internalDataBytes, metadataLayout, pageBytes } from "./layout.js";
import { decodeSuperblock, encodeSuperblock, sbOffset, slotFree } from "./superblock.js";

const enc = new TextEncoder();

function mustRead(bytes: Uint8Array, params = {}): DecodedArea {
  const r = readMetadataArea(bytes, params);
  if (r instanceof MetadataError) assert.fail(r.message);
  return r;
}

function mustFail(bytes: Uint8Array, pattern: RegExp, params = {}): MetadataError {
  const r = decodeMetadataArea(bytes, params);
  assert.ok(r instanceof MetadataError, "expected a MetadataError");
  assert.match(r.message, pattern);
  return r;
}

/** Small geometry: 4 KiB AL extents so tiny volumes still have many extents. */
function paramsFor(volumeBytes: number, extra: Partial<MetadataAreaParams> = {}) {
  return {
    volumeBytes,
    nodeId: 0,
    peerSlots: 2,
    alExtents: 7,
    alExtentBytes: 4096,
    placement: "internal" as const,
    ...extra,
  };
}

const uuid = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const superblockArb: fc.Arbitrary<SuperblockRecord> = fc.record({
  currentUuid: uuid,
  bitmapUuids: fc.array(uuid, { minLength: 32, maxLength: 32 }),
  historyUuids: fc.array(uuid, { maxLength: 8 }),
  uuidCounter: uuid,
  consistent: fc.boolean(),
  wasUpToDate: fc.boolean(),
  primary: fc.boolean(),
  crashedPrimary: fc.boolean(),
});

test("crc32c: standard test vector", () => {
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  const whole = enc.encode("hello, world");
  assert.equal(crc32c(whole, crc32c(whole, 0, 0, 5), 5), crc32c(whole));
});

test("layout: regions are whole pages; internalDataBytes is the largest fit", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: 1, max: 65534 }),
      fc.integer({ min: 1, max: 32 }),
      (deviceBytes, alExtents, peers) => {
        const data = internalDataBytes(deviceBytes, alExtents, peers);
        assert.equal(data % 4096, 0);
        if (data === 0) return;
        const l = metadataLayout(data, alExtents, peers);
        for (const v of [l.alOffsetBytes, l.superblockOffsetBytes, l.areaBytes, l.alSlotBytes])
          assert.equal(v % pageBytes, 0);
        assert.ok(data + l.areaBytes <= deviceBytes);
        if (data + 4096 <= 2 ** 44) {
          const bigger = metadataLayout(data + 4096, alExtents, peers);
          assert.ok(data + 4096 + bigger.areaBytes > Math.floor(deviceBytes / 4096) * 4096);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test("area: encode/decode round trip (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 0, max: 31 }),
      superblockArb,
      fc.integer({ min: 0, max: 1000 }),
      fc.array(fc.nat(), { maxLength: 7 }),
      fc.array(fc.nat(), { maxLength: 200 }),
      (blocks, nodeId, superblock, alSeq, alRaw, bitsRaw) => {
        const meta = createPersistedMeta(blocks, true);
        meta.superblock = { ...superblock, bitmapUuids: superblock.bitmapUuids.slice() };
        const peerA = (nodeId + 1) % 32;
        const peerB = (nodeId + 7) % 32;
        const bu = meta.superblock.bitmapUuids as number[];
        bu.fill(0);
        bu[peerA] = 3;
        bu[peerB] = 5;
        meta.alTransactionSeq = alSeq;
        meta.alExtents = alSeq === 0 ? [] : [...new Set(alRaw.map((e) => e % blocks))];
        for (const b of bitsRaw)
          meta.bitmaps[b % 2 ? peerA : peerB]![((b >> 1) % blocks) >> 3]! |=
            1 << (((b >> 1) % blocks) & 7);
        for (const id of [peerA, peerB]) {
          const bits = meta.bitmaps[id]!;
          if (blocks % 8) bits[bits.length - 1]! &= (1 << (blocks % 8)) - 1;
        }
        const params = paramsFor(blocks * 4096, { nodeId });
        const area = encodeMetadataArea(meta, params);
        const decoded = mustRead(area, { placement: "internal", nodeId });
        const expected: PersistedMeta = {
          ...meta,
          bitmaps: meta.bitmaps.map((b, id) =>
            id === peerA || id === peerB ? b : new Uint8Array(0),
          ),
        };
        assert.deepEqual(decoded.meta, expected);
        assert.equal(decoded.superblockSequence, 1);
        assert.deepEqual(
          decoded.header.slotNodeIds,
          [peerA, peerB].sort((a, b) => a - b),
        );
      },
    ),
    { numRuns: 150 },
  );
});

test("superblock: every single-byte corruption of a slot is detected", () => {
  const meta = createPersistedMeta(64, true);
  const area = encodeMetadataArea(meta, paramsFor(64 * 4096));
  const layout = metadataLayout(64 * 4096, 7, 2);
  const newest = area.slice(
    layout.superblockOffsetBytes + 4096,
    layout.superblockOffsetBytes + 8192,
  );
  assert.ok(decodeSuperblock(newest).ok);
  for (let i = 0; i < newest.length; i++) {
    for (const flip of [0x01, 0x80, 0xff]) {
      newest[i]! ^= flip;
      assert.equal(decodeSuperblock(newest).ok, false, `byte ${i} ^ ${flip}`);
      newest[i]! ^= flip;
    }
  }
  // In the area, a corrupted newest copy falls back to the older one.
  const damaged = area.slice();
  damaged[layout.superblockOffsetBytes + 4096 + 100]! ^= 0x10;
  assert.equal(mustRead(damaged).superblockSequence, 0);
  damaged[layout.superblockOffsetBytes + 100]! ^= 0x10;
  mustFail(damaged, /both superblock copies of the metadata are corrupt/);
});

function applyWrites(area: Uint8Array, writes: readonly MetadataWrite[]): void {
  for (const w of writes) area.set(w.data, w.offsetBytes);
}

function writesOf(writer: MetadataWriter, record: MetadataRecord): MetadataWrite[] {
  const r = writer.encodeRecord(record);
  if (r instanceof MetadataError) assert.fail(r.message);
  return r;
}

test("activity log: a torn transaction is ignored and the previous one wins", () => {
  const volumeBytes = 256 * 4096;
  const area = encodeMetadataArea(createPersistedMeta(256, true), paramsFor(volumeBytes));
  const writer = MetadataWriter.fromDecoded(mustRead(area));
  applyWrites(area, writesOf(writer, { kind: "activityLog", transactionSeq: 1, extents: [3] }));
  const second = writesOf(writer, { kind: "activityLog", transactionSeq: 2, extents: [3, 9] });
  // Torn at a sector boundary: the first 512 bytes of the new slot reached the disk, the
  // rest did not. Only the header is written, so the extent list is stale: checksum fails.
  const torn = area.slice();
  torn.set(second[0]!.data.subarray(0, 20), second[0]!.offsetBytes);
  const recovered = mustRead(torn);
  assert.equal(recovered.meta.alTransactionSeq, 1);
  assert.deepEqual(recovered.meta.alExtents, [3]);
  assert.equal(recovered.alSlotsTorn, 1);
  applyWrites(area, second);
  assert.deepEqual(mustRead(area).meta.alExtents, [3, 9]);
  // Wrapping the ring: the newest of all valid slots wins.
  for (let seq = 3; seq <= 20; seq++)
    applyWrites(
      area,
      writesOf(writer, { kind: "activityLog", transactionSeq: seq, extents: [seq] }),
    );
  assert.deepEqual(mustRead(area).meta.alExtents, [20]);
  assert.equal(mustRead(area).meta.alTransactionSeq, 20);
});

test("activity log: a valid transaction in the wrong slot is refused, not guessed", () => {
  const area = encodeMetadataArea(createPersistedMeta(64, true), paramsFor(64 * 4096));
  const writer = MetadataWriter.fromDecoded(mustRead(area));
  const [w] = writesOf(writer, { kind: "activityLog", transactionSeq: 1, extents: [1] });
  area.set(w!.data, w!.offsetBytes + writer.layout.alSlotBytes);
  mustFail(area, /misdirected write/);
});

test("superblock: a torn write falls back to the other copy", () => {
  const area = encodeMetadataArea(createPersistedMeta(64, true), paramsFor(64 * 4096));
  const writer = MetadataWriter.fromDecoded(mustRead(area));
  const sb = { ...writer.meta.superblock, currentUuid: 99, uuidCounter: 5 };
  const [w] = writesOf(writer, { kind: "superblock", superblock: sb });
  assert.equal(writer.superblockSequence, 2);
  const torn = area.slice();
  torn.set(w!.data.subarray(0, 512), w!.offsetBytes);
  const back = mustRead(torn);
  assert.equal(back.superblockSequence, 1);
  assert.equal(back.meta.superblock.currentUuid, 4);
  applyWrites(area, [w!]);
  assert.equal(mustRead(area).meta.superblock.currentUuid, 99);
  assert.equal(mustRead(area).superblockSequence, 2);
});

test("writer: any record sequence reads back as the engine's model (property)", () => {
  const blocks = 40000; // Two bitmap pages per slot.
  const recordArb: fc.Arbitrary<MetadataRecord> = fc.oneof(
    fc.record({
      kind: fc.constant("bitmap" as const),
      peer: fc.constantFrom(1, 2, 3),
      firstBlock: fc.integer({ min: 0, max: blocks - 1 }),
      blockCount: fc.integer({ min: 0, max: 40000 }),
      value: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant("superblock" as const),
      superblock: superblockArb,
    }),
    fc.record({
      kind: fc.constant("activityLog" as const),
      transactionSeq: fc.constant(0),
      extents: fc.uniqueArray(fc.integer({ min: 0, max: blocks - 1 }), { maxLength: 7 }),
    }),
  );
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 12 }), (records) => {
      const model: PersistedMeta = createPersistedMeta(blocks, true);
      const area = encodeMetadataArea(model, paramsFor(blocks * 4096, { peerSlots: 3 }));
      const writer = MetadataWriter.fromDecoded(mustRead(area));
      let alSeq = 0;
      let counter = 0;
      for (const raw of records) {
        let record = raw;
        if (record.kind === "activityLog") record = { ...record, transactionSeq: ++alSeq };
        if (record.kind === "superblock")
          record = {
            superblock: { ...record.superblock, uuidCounter: ++counter },
            kind: "superblock",
          };
        applyWrites(area, writesOf(writer, record));
      }
      const back = mustRead(area);
      assert.deepEqual(back.meta, writer.meta);
    }),
    { numRuns: 60 },
  );
});

test("writer: bits for a peer with no free slot are refused", () => {
  const meta = createPersistedMeta(64, true);
  const area = encodeMetadataArea(meta, paramsFor(64 * 4096, { peerSlots: 1 }));
  const writer = MetadataWriter.fromDecoded(mustRead(area));
  const rec = (peer: number): MetadataRecord => ({
    kind: "bitmap",
    peer,
    firstBlock: 0,
    blockCount: 8,
    value: true,
  });
  const first = writesOf(writer, rec(5));
  assert.equal(first.length, 2, "slot binding (superblock) then the bitmap page");
  applyWrites(area, first);
  assert.deepEqual(mustRead(area).header.slotNodeIds, [5]);
  const r = writer.encodeRecord(rec(6));
  assert.ok(r instanceof MetadataError);
  assert.match(r.message, /all 1 peer slots/);
});

test("foreign data is refused with a clear message", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 8192, maxLength: 20000 }), (bytes) => {
      assert.ok(decodeMetadataArea(bytes) instanceof MetadataError);
    }),
    { numRuns: 100 },
  );
  mustFail(new Uint8Array(1 << 20), /no metadata found .*create-md/);
  mustFail(new Uint8Array(100), /too small/);
  // An ext4 image: superblock magic 0xEF53 at byte 1080, inode tables, some text.
  const ext4 = new Uint8Array(1 << 20);
  ext4[1080] = 0x53;
  ext4[1081] = 0xef;
  for (let i = 4096; i < ext4.length; i += 97) ext4[i] = i & 0xff;
  mustFail(ext4, /foreign data/);
});

test("refusals: unknown version, shrunk device, wrong placement or node id", () => {
  const volumeBytes = 64 * 4096;
  const area = encodeMetadataArea(createPersistedMeta(64, true), paramsFor(volumeBytes));
  const layout = metadataLayout(volumeBytes, 7, 2);
  const v2 = area.slice();
  for (const seq of [0, 1]) {
    const slot = v2.subarray(
      layout.superblockOffsetBytes + seq * 4096,
      layout.superblockOffsetBytes + (seq + 1) * 4096,
    );
    const view = new DataView(slot.buffer, slot.byteOffset, 4096);
    view.setUint32(sbOffset.version, 2, true);
    view.setUint32(sbOffset.checksum, crc32c(slot, 0, 0, sbOffset.checksum), true);
  }
  mustFail(v2, /different mirra format version/);
  mustFail(area, /was the device shrunk/, { deviceBytes: volumeBytes + area.length - 4096 });
  assert.ok(
    !(
      decodeMetadataArea(area, { deviceBytes: volumeBytes + area.length }) instanceof MetadataError
    ),
  );
  mustFail(area, /configured/, { placement: "external" });
  mustFail(area, /node id 0 but this node is configured as node id 3/, { nodeId: 3 });
  mustFail(area.subarray(4096), /describes a \d+-byte area/);
  // Checksum-valid but impossible content: a slot naming our own node id.
  const meta = createPersistedMeta(64, true);
  const header = mustRead(area).header;
  const bad = encodeSuperblock(header, meta.superblock, 7);
  bad[sbOffset.slotNodeIds] = 0;
  const view = new DataView(bad.buffer);
  view.setUint32(sbOffset.checksum, crc32c(bad, 0, 0, sbOffset.checksum), true);
  const r = decodeSuperblock(bad);
  assert.ok(!r.ok && r.problem === "invalid" && /own id/.test(r.detail));
  assert.equal(slotFree, 255);
});

test("docs/metadata.md lists every superblock and AL field at its offset", async () => {
  const { readFileSync } = await import("node:fs");
  const doc = readFileSync(new URL("../../../../docs/metadata.md", import.meta.url), "utf8");
  const { alOffset } = await import("./al_ring.js");
  for (const [name, offset] of [...Object.entries(sbOffset), ...Object.entries(alOffset)])
    assert.match(doc, new RegExp(`^\\| ${offset} \\|`, "m"), `${name} at ${offset}`);
});

test("fuzz: mutated areas, even with re-sealed checksums, decode or refuse, never throw", () => {
  const blocks = 300;
  const base = createPersistedMeta(blocks, true);
  base.alTransactionSeq = 3;
  base.alExtents = [1, 2, 5];
  base.bitmaps[1]![0] = 0xff;
  const params = paramsFor(blocks * 4096, { peerSlots: 2, slotNodeIds: [1, slotFree] });
  const area = encodeMetadataArea(base, params);
  const layout = metadataLayout(blocks * 4096, 7, 2);
  const reseal = (bytes: Uint8Array): void => {
    for (const seq of [0, 1]) {
      const at = layout.superblockOffsetBytes + seq * 4096;
      const slot = bytes.subarray(at, at + 4096);
      const view = new DataView(slot.buffer, slot.byteOffset, 4096);
      view.setUint32(sbOffset.checksum, crc32c(slot, 0, 0, sbOffset.checksum), true);
    }
  };
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      fc.boolean(),
      (mutations, inSuperblock, resealed) => {
        const bytes = area.slice();
        for (const [at, value] of mutations) {
          // Aim at the superblocks' used fields half of the time: that is where parsing is.
          const offset = inSuperblock
            ? layout.superblockOffsetBytes + (at % 2) * 4096 + (at % 504)
            : at % bytes.length;
          bytes[offset] = value;
        }
        if (resealed) reseal(bytes);
        const r = readMetadataArea(bytes, { deviceBytes: blocks * 4096 + bytes.length });
        if (!(r instanceof MetadataError)) assert.equal(r.header.areaBytes, bytes.length);
      },
    ),
    { numRuns: 800 },
  );
});
