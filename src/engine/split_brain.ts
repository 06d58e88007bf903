//! Split-brain recovery policies (after-sb-0pri/1pri/2pri and manual discard-my-data). The
//! decision is made independently on both sides from the same exchanged facts, so each
//! rule is symmetric: it names the victim by node, never by "me". The victim becomes the
//! sync target of a bitmap resync (its changes are discarded); "disconnect" leaves both
//! sides StandAlone for an operator. Nothing is ever merged silently.

import type { AfterSb0pri, AfterSb1pri, AfterSb2pri, NodeId } from "./types.js";

export interface SbSide {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly primary: boolean;
  readonly currentUuid: number;
  /** Blocks this side changed since the split (its bits for the other side). */
  readonly changes: number;
  readonly discardMyData: boolean;
}

export interface SbPolicies {
  readonly afterSb0pri: AfterSb0pri;
  readonly afterSb1pri: AfterSb1pri;
  readonly afterSb2pri: AfterSb2pri;
}

/** The node whose data is discarded, or undefined to disconnect. */
export function splitBrainVictim(a: SbSide, b: SbSide, p: SbPolicies): NodeId | undefined {
  if (a.discardMyData !== b.discardMyData) return a.discardMyData ? a.nodeId : b.nodeId;
  if (a.discardMyData && b.discardMyData) return undefined;
  const primaries = (a.primary ? 1 : 0) + (b.primary ? 1 : 0);
  if (primaries === 0) return victim0pri(a, b, p.afterSb0pri);
  if (primaries === 1) {
    const [pri, sec] = a.primary ? [a, b] : [b, a];
    switch (p.afterSb1pri) {
      case "disconnect":
        return undefined;
      case "discard-secondary":
        return sec.nodeId;
      case "consensus":
      case "call-pri-lost-after-sb": {
        // We cannot reboot a primary (the pri-lost handler), so a primary victim disconnects.
        const v = victim0pri(a, b, p.afterSb0pri);
        return v === sec.nodeId && v !== pri.nodeId ? v : undefined;
      }
    }
  }
  // Two primaries: both sides wrote for applications; only an operator may choose.
  return undefined;
}

function victim0pri(a: SbSide, b: SbSide, policy: AfterSb0pri): NodeId | undefined {
  const younger = a.currentUuid > b.currentUuid ? a : b;
  const older = younger === a ? b : a;
  if (typeof policy === "object") {
    if (a.name === policy.discardNode) return a.nodeId;
    if (b.name === policy.discardNode) return b.nodeId;
    return undefined;
  }
  switch (policy) {
    case "disconnect":
      return undefined;
    case "discard-younger-primary":
      return younger.nodeId;
    case "discard-older-primary":
      return older.nodeId;
    case "discard-zero-changes":
      if (a.changes === 0 && b.changes === 0) return younger.nodeId;
      if (a.changes === 0) return a.nodeId;
      if (b.changes === 0) return b.nodeId;
      return undefined;
    case "discard-least-changes":
      if (a.changes === b.changes) return younger.nodeId;
      return a.changes < b.changes ? a.nodeId : b.nodeId;
  }
}
