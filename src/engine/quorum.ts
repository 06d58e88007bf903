//! Quorum maths. Every configured node votes: diskful nodes and diskless tiebreakers alike,
//! so a 2+1 setup (two diskful, one diskless) keeps quorum on whichever side the tiebreaker
//! sits. A partition may act only while it reaches the number of votes the setting demands;
//! for "majority" and any N > nodes/2 two disjoint partitions can never both have quorum.

import { assert } from "../stdx/assert.js";
import type { QuorumSetting } from "./types.js";

/** Votes needed out of `voters` for the given setting; 0 means quorum is off. */
export function quorumVotesNeeded(setting: QuorumSetting, voters: number): number {
  assert(voters >= 1, "at least one voter");
  if (setting === "off") return 0;
  if (setting === "majority") return Math.floor(voters / 2) + 1;
  if (setting === "all") return voters;
  assert(Number.isInteger(setting) && setting >= 1, "quorum N >= 1");
  return Math.min(setting, voters);
}

/** True when `reachable` votes (self included) satisfy the setting. */
export function hasQuorum(setting: QuorumSetting, voters: number, reachable: number): boolean {
  assert(reachable >= 0 && reachable <= voters, "reachable within voters");
  return reachable >= quorumVotesNeeded(setting, voters);
}
