import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { hasQuorum, quorumVotesNeeded } from "./quorum.js";

test("quorum: votes needed per setting", () => {
  assert.equal(quorumVotesNeeded("off", 3), 0);
  assert.equal(quorumVotesNeeded("majority", 3), 2);
  assert.equal(quorumVotesNeeded("majority", 4), 3);
  assert.equal(quorumVotesNeeded("all", 3), 3);
  assert.equal(quorumVotesNeeded(2, 5), 2);
  assert.equal(hasQuorum("majority", 3, 1), false);
  assert.equal(hasQuorum("majority", 3, 2), true);
});

test("quorum: a 2+1 tiebreaker setup keeps quorum on the side with the tiebreaker", () => {
  // Two diskful nodes and one diskless tiebreaker: three voters.
  assert.equal(hasQuorum("majority", 3, 2), true); // diskful + tiebreaker
  assert.equal(hasQuorum("majority", 3, 1), false); // the lone diskful node
});

test("quorum: two disjoint partitions never both have quorum (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 32 }).chain((voters) =>
        fc.tuple(
          fc.constant(voters),
          fc.integer({ min: 0, max: voters }),
          fc.oneof(
            fc.constant("majority" as const),
            fc.constant("all" as const),
            fc.integer({
              min: Math.floor(voters / 2) + 1,
              max: Math.max(Math.floor(voters / 2) + 1, voters),
            }),
          ),
        ),
      ),
      ([voters, a, setting]) => {
        const b = voters - a;
        assert.ok(!(hasQuorum(setting, voters, a) && hasQuorum(setting, voters, b)));
      },
    ),
    { numRuns: 1000 },
  );
});
