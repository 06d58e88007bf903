import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { validatePeerMessage } from "./validate.js";
import type { PeerMessage } from "../types.js";

const limits = { sizeBlocks: 1000 };
const block = new Uint8Array(4096);

test("validate: messages inside the volume pass", () => {
  const ok: PeerMessage[] = [
    { type: "data", seq: 1, epoch: 1, firstBlock: 999, data: block, ack: "write" },
    { type: "readRequest", id: 1, firstBlock: 0, blockCount: 8 },
    { type: "bitmap", ranges: [0, 10, 990, 10], last: true },
    { type: "resyncReply", block: 5, ok: true, data: block },
    { type: "resyncReply", block: 5, ok: false },
    { type: "peerAck", firstBlock: 0, blockCount: 1000, mask: -1 },
    { type: "ping", seq: 0 },
  ];
  for (const m of ok) assert.equal(validatePeerMessage(m, limits), undefined, m.type);
});

test("validate: ranges past the end, partial blocks and odd bitmap runs are refused", () => {
  const bad: PeerMessage[] = [
    { type: "data", seq: 1, epoch: 1, firstBlock: 1000, data: block, ack: "write" },
    { type: "data", seq: 1, epoch: 1, firstBlock: 0, data: new Uint8Array(100), ack: "write" },
    { type: "readRequest", id: 1, firstBlock: 0, blockCount: 0 },
    { type: "readRequest", id: 1, firstBlock: 2 ** 60, blockCount: 1 },
    { type: "bitmap", ranges: [0, 10, 5], last: true },
    { type: "bitmap", ranges: [995, 10], last: true },
    { type: "bitmap", ranges: [], last: true, covered: [-1, 2] },
    { type: "resyncRequest", block: 999, blockCount: 2 },
    { type: "verifyReply", block: 0, blockCount: 9000, ok: true, digest: 0 },
    {
      type: "state",
      role: "Secondary",
      disk: "UpToDate",
      uuids: { current: 1, bitmapUuids: [], historyUuids: [] },
      crashedPrimary: false,
      bitsForYou: 1001,
      discardMyData: false,
      promotionSeq: 0,
      reply: false,
      connectedMask: 0,
    } as unknown as PeerMessage,
  ];
  for (const m of bad)
    assert.equal(typeof validatePeerMessage(m, limits), "string", JSON.stringify(m).slice(0, 80));
});

test("validate: property: an accepted range request stays inside the volume", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -5, max: 2000 }),
      fc.integer({ min: -5, max: 20000 }),
      (first, count) => {
        const m: PeerMessage = { type: "resyncRequest", block: first, blockCount: count };
        if (validatePeerMessage(m, limits) === undefined) {
          assert.ok(first >= 0 && count > 0 && first + count <= limits.sizeBlocks);
        }
      },
    ),
  );
});
