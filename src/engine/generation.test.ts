import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decideSync, type HandshakeSide, type SyncDecision } from "./generation.js";
import { splitBrainVictim } from "./split_brain.js";

function side(
  nodeId: number,
  current: number,
  extra: Partial<HandshakeSide> = {},
  bitmap: Record<number, number> = {},
  history: number[] = [],
): HandshakeSide {
  const bitmapUuids = new Array<number>(32).fill(0);
  for (const [k, v] of Object.entries(bitmap)) bitmapUuids[Number(k)] = v;
  return {
    nodeId,
    diskful: true,
    consistent: true,
    primary: false,
    crashedPrimary: false,
    bitsForOther: 0,
    uuids: { currentUuid: current, bitmapUuids, historyUuids: history },
    ...extra,
  };
}

const kindOf = (d: SyncDecision): string => d.kind + ("full" in d && d.full ? "-full" : "");

test("generation: decision table rows", () => {
  // @E5 equal generations, no bits: nothing to do.
  assert.equal(decideSync(side(0, 4), side(1, 4)).row, "@E5");
  // @A/@B: the primary moved on while the secondary was away.
  const pri = side(0, 64, {}, { 1: 4 }, [4]);
  const sec = side(1, 4);
  assert.deepEqual([kindOf(decideSync(pri, sec)), decideSync(pri, sec).row], ["source", "@A"]);
  assert.deepEqual([kindOf(decideSync(sec, pri)), decideSync(sec, pri).row], ["target", "@B"]);
  // @X both moved on from the same parent: split brain.
  const other = side(1, 65, {}, { 0: 4 }, [4]);
  assert.equal(decideSync(pri, other).row, "@X");
  assert.equal(decideSync(other, pri).row, "@X");
  // @F/@G: an older generation we know from history but do not track: full sync.
  const newer = side(0, 96, {}, { 1: 64 }, [64, 4]);
  assert.equal(kindOf(decideSync(newer, sec)), "source-full");
  assert.equal(kindOf(decideSync(sec, newer)), "target-full");
  // @U nothing in common.
  assert.equal(decideSync(side(0, 100), side(1, 200)).kind, "unrelated");
  // @J/@K inconsistent data is a full sync target.
  assert.equal(kindOf(decideSync(side(0, 4, { consistent: false }), side(1, 4))), "target-full");
  // @E2 a crashed primary resyncs its AL extents to the peer.
  assert.equal(
    decideSync(side(0, 4, { crashedPrimary: true, bitsForOther: 8 }), side(1, 4)).row,
    "@E2",
  );
  // @EU equal generations, bits on both sides: the UpToDate side is source, not the lower
  // node id (an Outdated node missed writes of a diskless Primary that kept the UUID).
  const outdated = side(0, 4, { upToDate: false, bitsForOther: 17 });
  const upToDate = side(1, 4, { upToDate: true, bitsForOther: 108 });
  assert.deepEqual(
    [kindOf(decideSync(outdated, upToDate)), decideSync(outdated, upToDate).row],
    ["target", "@EU"],
  );
  assert.equal(kindOf(decideSync(upToDate, outdated)), "source");
  // @D diskless sides never sync.
  assert.equal(decideSync(side(0, 4, { diskful: false }), side(1, 64)).row, "@D");
});

const uuidArb = fc.constantFrom(0, 4, 64, 65, 96, 97, 128);
const sideArb = (nodeId: number): fc.Arbitrary<HandshakeSide> =>
  fc
    .record({
      current: fc.constantFrom(4, 64, 65, 96, 97, 128),
      bitmapForOther: uuidArb,
      history: fc.array(fc.constantFrom(4, 64, 65, 96), { maxLength: 3 }),
      consistent: fc.boolean(),
      primary: fc.boolean(),
      crashedPrimary: fc.boolean(),
      bits: fc.integer({ min: 0, max: 3 }),
    })
    .map((r) =>
      side(
        nodeId,
        r.current,
        {
          consistent: r.consistent,
          primary: r.primary,
          crashedPrimary: r.crashedPrimary,
          bitsForOther: r.bits,
        },
        { [1 - nodeId]: r.bitmapForOther },
        r.history,
      ),
    );

test("generation: both sides reach mirrored decisions (property)", () => {
  fc.assert(
    fc.property(sideArb(0), sideArb(1), (a, b) => {
      const x = decideSync(a, b);
      const y = decideSync(b, a);
      const mirror: Record<string, string> = {
        source: "target",
        target: "source",
        none: "none",
        splitBrain: "splitBrain",
        unrelated: "unrelated",
      };
      assert.equal(y.kind, mirror[x.kind], `${x.row} vs ${y.row}`);
      if (x.kind === "source" && y.kind === "target") assert.equal(x.full, y.full);
    }),
    { numRuns: 3000 },
  );
});

test("split brain: policies name the same victim from both sides", () => {
  const a = {
    nodeId: 0,
    name: "a",
    primary: false,
    currentUuid: 64,
    changes: 3,
    discardMyData: false,
  };
  const b = {
    nodeId: 1,
    name: "b",
    primary: false,
    currentUuid: 97,
    changes: 0,
    discardMyData: false,
  };
  const p = (o: object) => ({
    afterSb0pri: "disconnect" as const,
    afterSb1pri: "disconnect" as const,
    afterSb2pri: "disconnect" as const,
    ...o,
  });
  assert.equal(splitBrainVictim(a, b, p({})), undefined);
  assert.equal(splitBrainVictim(a, b, p({ afterSb0pri: "discard-zero-changes" })), 1);
  assert.equal(splitBrainVictim(a, b, p({ afterSb0pri: "discard-younger-primary" })), 1);
  assert.equal(splitBrainVictim(a, b, p({ afterSb0pri: "discard-older-primary" })), 0);
  assert.equal(splitBrainVictim(a, b, p({ afterSb0pri: "discard-least-changes" })), 1);
  assert.equal(splitBrainVictim(a, b, p({ afterSb0pri: { discardNode: "a" } })), 0);
  assert.equal(splitBrainVictim({ ...a, discardMyData: true }, b, p({})), 0);
  const pa = { ...a, primary: true };
  assert.equal(splitBrainVictim(pa, b, p({ afterSb1pri: "discard-secondary" })), 1);
  assert.equal(
    splitBrainVictim(pa, { ...b, primary: true }, p({ afterSb2pri: "call-pri-lost-after-sb" })),
    undefined,
  );
  fc.assert(
    fc.property(
      fc.record({
        pa: fc.boolean(),
        pb: fc.boolean(),
        ca: fc.nat(3),
        cb: fc.nat(3),
        da: fc.boolean(),
        db: fc.boolean(),
      }),
      fc.constantFrom(
        "disconnect",
        "discard-younger-primary",
        "discard-older-primary",
        "discard-zero-changes",
        "discard-least-changes",
      ),
      fc.constantFrom("disconnect", "consensus", "discard-secondary", "call-pri-lost-after-sb"),
      (r, p0, p1) => {
        const x = { ...a, primary: r.pa, changes: r.ca, discardMyData: r.da };
        const y = { ...b, primary: r.pb, changes: r.cb, discardMyData: r.db };
        const pol = p({ afterSb0pri: p0, afterSb1pri: p1 });
        assert.equal(splitBrainVictim(x, y, pol), splitBrainVictim(y, x, pol));
      },
    ),
  );
});

test("generation: @JB a target mid bitmap resync joins a further source of its generation", () => {
  // n2 is Inconsistent under a bitmap resync toward 64 (its data outside the bits is on 4).
  const target = side(2, 4, { consistent: false, syncTowardUuid: 64, syncBaseUuid: 4 });
  const tracks = side(1, 64, { upToDate: true }, { 2: 4 }, [4]);
  assert.deepEqual(
    [kindOf(decideSync(target, tracks)), decideSync(target, tracks).row],
    ["target", "@JB"],
  );
  assert.deepEqual(
    [kindOf(decideSync(tracks, target)), decideSync(tracks, target).row],
    ["source", "@JB"],
  );
  // Same generation on both sides.
  const within = side(2, 4, { consistent: false, syncTowardUuid: 4, syncBaseUuid: 4 });
  assert.equal(decideSync(within, side(1, 4, { upToDate: true })).row, "@JB");
  // Mid full sync (no base), or a source that does not track the target: full sync.
  const full = side(2, 4, { consistent: false, syncTowardUuid: 4 });
  assert.equal(kindOf(decideSync(full, side(1, 4, { upToDate: true }))), "target-full");
  const untracked = side(1, 64, { upToDate: true }, {}, [4]);
  assert.equal(kindOf(decideSync(target, untracked)), "target-full");
});
