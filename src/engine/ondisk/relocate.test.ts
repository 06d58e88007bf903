import { test } from "node:test";
import assert from "node:assert/strict";
import { MetadataError } from "../../stdx/errors.js";
import { createPersistedMeta } from "../meta.js";
import { encodeMetadataArea, readMetadataArea, type DecodedArea } from "./area.js";
import { internalDataBytes, metadataLayout, pageBytes } from "./layout.js";
import {
  grownCapacityBytes,
  locateArea,
  planMetadataGrow,
  type AreaState,
  type GrowPlan,
} from "./relocate.js";
import { encodeSuperblock } from "./superblock.js";

/** Small geometry: 4 KiB AL extents so tiny volumes still have many extents. */
const geometry = { nodeId: 0, peerSlots: 2, alExtents: 7, alExtentBytes: 4096 } as const;
const oldDeviceBytes = 2 * 1024 * 1024;
const newDeviceBytes = 8 * 1024 * 1024 + 512; // not page aligned: the area ends below it

/** A device with internal metadata: peer 1 has bits 3 and the last block, one AL tx. */
function freshDevice(): { device: Uint8Array; volumeBytes: number; state: AreaState } {
  const volumeBytes = internalDataBytes(oldDeviceBytes, geometry.alExtents, geometry.peerSlots);
  const meta = createPersistedMeta(volumeBytes / 4096, true);
  const blocks = volumeBytes / 4096;
  const bitmapUuids = meta.superblock.bitmapUuids.slice();
  bitmapUuids[1] = 0x990;
  meta.superblock = { ...meta.superblock, currentUuid: 0xabc0, historyUuids: [0x990], bitmapUuids };
  meta.bitmaps[1]![0] = 1 << 3;
  meta.bitmaps[1]![(blocks - 1) >> 3]! |= 1 << ((blocks - 1) & 7);
  meta.alTransactionSeq = 5;
  meta.alExtents = [1, 4];
  const area = encodeMetadataArea(meta, { ...geometry, volumeBytes, placement: "internal" });
  const device = new Uint8Array(oldDeviceBytes);
  device.set(area, oldDeviceBytes - area.length);
  const decoded = mustDecode(device, oldDeviceBytes);
  return {
    device,
    volumeBytes,
    state: {
      header: decoded.header,
      meta: decoded.meta,
      superblockSequence: decoded.superblockSequence,
      areaOffsetBytes: oldDeviceBytes - area.length,
    },
  };
}

function mustDecode(device: Uint8Array, deviceBytes: number, scanDownToBytes?: number) {
  const read = (o: number, n: number): Uint8Array => device.slice(o, o + n);
  const located = locateArea(read, deviceBytes, {
    nodeId: 0,
    placement: "internal",
    ...(scanDownToBytes !== undefined ? { scanDownToBytes } : {}),
  });
  if (located instanceof MetadataError) assert.fail(located.message);
  const r = readMetadataArea(device.subarray(0, located.endBytes), {
    deviceBytes,
    placement: "internal",
  });
  if (r instanceof MetadataError) assert.fail(r.message);
  return r;
}

function grown(device: Uint8Array): Uint8Array {
  const bigger = new Uint8Array(newDeviceBytes);
  bigger.set(device);
  return bigger;
}

function planFor(state: AreaState): GrowPlan {
  const capacity = grownCapacityBytes(state.header, state.areaOffsetBytes, newDeviceBytes, 0);
  assert.ok(capacity > state.header.volumeBytes, "the device grew enough");
  const plan = planMetadataGrow(state, capacity, newDeviceBytes);
  if (plan instanceof MetadataError) assert.fail(plan.message);
  return plan;
}

function applySteps(device: Uint8Array, plan: GrowPlan, steps: number): void {
  for (const step of plan.steps.slice(0, steps))
    for (const w of step.writes) device.set(w.data, w.offsetBytes);
}

function checkSameGeneration(d: DecodedArea, volumeBytes: number, oldBlocks: number): void {
  assert.equal(d.header.volumeBytes, volumeBytes);
  assert.equal(d.meta.superblock.currentUuid, 0xabc0);
  assert.deepEqual(d.meta.superblock.historyUuids, [0x990]);
  assert.equal(d.meta.superblock.bitmapUuids[1], 0x990);
  assert.equal(d.meta.alTransactionSeq, 5);
  assert.deepEqual(d.meta.alExtents, [1, 4]);
  const bits = d.meta.bitmaps[1]!;
  const set: number[] = [];
  for (let b = 0; b < volumeBytes / 4096; b++)
    if ((bits[b >> 3]! & (1 << (b & 7))) !== 0) set.push(b);
  // The grown part is clear: the engine, not the relocation, decides what to mark.
  assert.deepEqual(set, [3, oldBlocks - 1]);
}

test("grow: a crash after any step leaves exactly one consistent area", () => {
  const { device, volumeBytes, state } = freshDevice();
  const plan = planFor(state);
  const oldBlocks = volumeBytes / 4096;
  assert.equal(plan.steps.length, 4);
  for (let k = 0; k <= plan.steps.length; k++) {
    const dev = grown(device);
    applySteps(dev, plan, k);
    const d = mustDecode(dev, newDeviceBytes, volumeBytes);
    const moved = k >= 2;
    checkSameGeneration(d, moved ? plan.header.volumeBytes : volumeBytes, oldBlocks);
    assert.equal(d.header.sizeAgreed === true, moved, `after step ${k}`);
    if (k === 4) {
      const old = dev.subarray(
        state.areaOffsetBytes,
        state.areaOffsetBytes + state.header.areaBytes,
      );
      assert.ok(
        old.every((b) => b === 0),
        "the old area is erased",
      );
    }
  }
});

test("grow: a torn first superblock at the new end falls back to the old area", () => {
  const { device, volumeBytes, state } = freshDevice();
  const plan = planFor(state);
  const dev = grown(device);
  applySteps(dev, plan, 1);
  const w = plan.steps[1]!.writes[0]!;
  dev.set(w.data.subarray(0, 1000), w.offsetBytes); // torn: the checksum does not match
  const d = mustDecode(dev, newDeviceBytes, volumeBytes);
  checkSameGeneration(d, volumeBytes, volumeBytes / 4096);
  // Without a scan bound (create-md, dump-md) nothing is guessed: the end's state is refused.
  const r = readMetadataArea(dev, { placement: "internal" });
  assert.ok(r instanceof MetadataError);
});

test("grow: the moved area accepts later records and a second grow", () => {
  const { device, volumeBytes, state } = freshDevice();
  const plan = planFor(state);
  const dev = grown(device);
  applySteps(dev, plan, 4);
  const d = mustDecode(dev, newDeviceBytes);
  assert.equal(d.superblockSequence, plan.superblockSequence);
  // Both copies are valid: a torn next superblock write falls back to the other.
  assert.match(d.superblockSlots[0], /^valid/);
  assert.match(d.superblockSlots[1], /^valid/);
  assert.ok(d.header.volumeBytes > volumeBytes);
  assert.equal(
    grownCapacityBytes(d.header, plan.areaOffsetBytes, newDeviceBytes, 0),
    d.header.volumeBytes,
    "no further growth without a bigger device",
  );
});

test("grow: refuses a device that grew too little for the area to move", () => {
  const { state } = freshDevice();
  const small = oldDeviceBytes + pageBytes;
  assert.equal(
    grownCapacityBytes(state.header, state.areaOffsetBytes, small, 0),
    state.header.volumeBytes,
  );
  const r = planMetadataGrow(state, state.header.volumeBytes + 4096, small);
  assert.ok(r instanceof MetadataError);
  assert.match(r.message, /grew too little/);
});

test("locate: another node's superblock below the end is refused, not used", () => {
  const { device, volumeBytes, state } = freshDevice();
  const dev = grown(device);
  const foreign = encodeSuperblock(
    { ...state.header, nodeId: 3, slotNodeIds: [0, 1] },
    state.meta.superblock,
    0,
  );
  dev.set(foreign, oldDeviceBytes + 64 * pageBytes);
  const read = (o: number, n: number): Uint8Array => dev.slice(o, o + n);
  const r = locateArea(read, newDeviceBytes, { nodeId: 0, scanDownToBytes: volumeBytes });
  assert.ok(r instanceof MetadataError);
  assert.match(r.message, /node id 3.*refusing to guess/);
});

test("locate: external metadata grows in its own file", () => {
  const volumeBytes = 1024 * 1024;
  const meta = createPersistedMeta(volumeBytes / 4096, true);
  meta.bitmaps[1]![2] = 0xff;
  const params = { ...geometry, volumeBytes, placement: "external" as const };
  const area = encodeMetadataArea(meta, params);
  const layout = metadataLayout(volumeBytes, geometry.alExtents, geometry.peerSlots);
  assert.equal(area.length, layout.areaBytes);
  const decoded = readMetadataArea(area, { placement: "external" });
  if (decoded instanceof MetadataError) assert.fail(decoded.message);
  const state: AreaState = {
    header: decoded.header,
    meta: decoded.meta,
    superblockSequence: decoded.superblockSequence,
    areaOffsetBytes: 0,
  };
  const dataBytes = 64 * 1024 * 1024;
  const capacity = grownCapacityBytes(state.header, 0, area.length, dataBytes);
  assert.equal(capacity, dataBytes);
  const newLayout = metadataLayout(capacity, geometry.alExtents, geometry.peerSlots);
  const fileBytes = area.length + newLayout.areaBytes;
  const plan = planMetadataGrow(state, capacity, fileBytes);
  if (plan instanceof MetadataError) assert.fail(plan.message);
  const file = new Uint8Array(fileBytes);
  file.set(area);
  for (const step of plan.steps) for (const w of step.writes) file.set(w.data, w.offsetBytes);
  const r = readMetadataArea(file, { placement: "external", dataDeviceBytes: dataBytes });
  if (r instanceof MetadataError) assert.fail(r.message);
  assert.equal(r.header.volumeBytes, dataBytes);
  assert.equal(r.meta.bitmaps[1]![2], 0xff);
  assert.equal(r.meta.bitmaps[1]!.length, dataBytes / 4096 / 8);
});
