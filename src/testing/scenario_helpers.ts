//! Small verbs for scenario tests on a Cluster (the TestContext language): connect everything,
//! promote, write and wait, converge. Each throws an AssertionError with a readable reason when
//! the cluster does not get there within its bound, so a test body stays a few lines.

import { assert } from "../stdx/assert.js";
import { Replica, type NodeId } from "../engine/mod.js";
import type { AdminRequest, ClientRequest, Cluster } from "./cluster.js";

/** Whether the engine exposes what the simulator needs (the inspection view). */
export function engineReady(): boolean {
  const proto = Replica.prototype as unknown as {
    view?: unknown;
    canWrite?: unknown;
    peer?: unknown;
  };
  return (
    typeof proto.view === "function" ||
    (typeof proto.canWrite === "function" && typeof proto.peer === "function")
  );
}

export const engineMissing =
  "engine not ready: no inspection view (Replica.view() or Replica implementing ReplicaView) (see src/testing/REQUESTS.md)";

/**
 * Runs until every pair of live nodes is Connected and Established and every live diskful
 * node is UpToDate (and known so by its peers), or fails.
 */
export function connectAll(t: Cluster, ticksMax = 500): void {
  const ok = t.runUntil(() => {
    for (const node of t.nodes) {
      if (!node.up) continue;
      const view = node.view();
      if (view === null) return false;
      if (node.diskful && view.disk !== "UpToDate") return false;
      for (const p of view.peers) {
        const peer = t.node(p.peer);
        if (!peer.up) continue;
        if (p.connection !== "Connected" || p.replication !== "Established") return false;
        if (peer.diskful && p.peerDisk !== "UpToDate") return false;
      }
    }
    return true;
  }, ticksMax);
  assert(ok, `connectAll: not connected after ${ticksMax} ticks: ${describe(t)}`);
}

export function adminWait(
  t: Cluster,
  node: NodeId,
  request: AdminRequest,
  ticksMax = 300,
): AdminRequest {
  const ok = t.runUntil(() => request.done, ticksMax);
  assert(ok, `admin ${JSON.stringify(request.command)} on n${node} did not complete`);
  return request;
}

/**
 * Promotes `node` and waits until it accepts writes. A refusal is retried a few times, 20
 * ticks apart, as an operator (or auto-promote) would: a node in the middle of a handshake or
 * a short resync may refuse for a moment.
 */
export function promote(t: Cluster, node: NodeId, force = false): void {
  const command = force ? ({ type: "primary", force } as const) : ({ type: "primary" } as const);
  let request = adminWait(t, node, t.admin(node, command));
  for (let attempt = 1; attempt < 10 && !request.ok; attempt++) {
    t.run(20);
    request = adminWait(t, node, t.admin(node, command));
  }
  assert(request.ok, `promote n${node} failed: ${request.error}`);
  const ok = t.runUntil(() => t.node(node).view()?.canWrite() === true, 200);
  assert(ok, `n${node} promoted but cannot write: ${describe(t)}`);
}

export function demote(t: Cluster, node: NodeId): void {
  const request = adminWait(t, node, t.admin(node, { type: "secondary" }));
  assert(request.ok, `demote n${node} failed: ${request.error}`);
}

export function waitDone(t: Cluster, requests: readonly ClientRequest[], ticksMax = 1000): void {
  const ok = t.runUntil(() => requests.every((r) => r.done), ticksMax);
  assert(
    ok,
    `${requests.filter((r) => !r.done).length} requests still open after ${ticksMax} ticks`,
  );
}

/** Writes `count` single-block writes to distinct blocks from `first`, and waits for them. */
export function writeBlocks(
  t: Cluster,
  node: NodeId,
  first: number,
  count: number,
  step = 1,
): ClientRequest[] {
  const requests: ClientRequest[] = [];
  for (let i = 0; i < count; i++) requests.push(t.write(node, first + i * step, 1));
  waitDone(t, requests);
  return requests;
}

/** Runs until the cluster has converged (d), then checks it; fails with the blocker. */
export function converge(t: Cluster, ticksMax = 3000): void {
  let blocker: string | null = null;
  const ok = t.runUntil(() => (blocker = t.checkers.convergenceBlocker()) === null, ticksMax);
  assert(ok, `not converged after ${ticksMax} ticks: ${blocker}`);
  t.checkers.checkConverged();
}

/** One line per node: role, disk, peers' connection/replication/bitmap bits. */
export function describe(t: Cluster): string {
  return t.nodes
    .map((node) => {
      if (!node.up) return `n${node.id}: down`;
      const v = node.view();
      if (v === null) return `n${node.id}: no view`;
      const peers = v.peers
        .map(
          (p) => `n${p.peer}:${p.connection}/${p.replication}/${p.peerDisk}/${p.bitmap.count()}b`,
        )
        .join(" ");
      return `n${node.id}: ${v.role}/${v.disk}${v.canWrite() ? "/W" : ""} q=${v.quorum} uuid=${v.currentUuid} [${peers}]`;
    })
    .join("; ");
}
