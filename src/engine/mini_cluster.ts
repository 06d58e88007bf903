//! A tiny synchronous harness for the engine's own unit tests: N replicas, in-memory disks
//! with a volatile cache (writes become durable on flush), persisted metadata, and FIFO
//! links that break as a whole. It is deliberately simple and hand-driven; the seeded
//! fault-injecting simulator lives in src/testing.
//!
//! Model: IO completes only when the test calls `completeIo`/`settle`, messages move only on
//! `deliver`/`settle`, so a test can stop at any interleaving it wants to examine.

import { assert } from "../stdx/assert.js";
import { applyMetadataRecord, clonePersistedMeta, createPersistedMeta } from "./meta.js";
import { Replica } from "./replica.js";
import type {
  AdminCommand,
  Effect,
  Event,
  NodeId,
  PeerMessage,
  PersistedMeta,
  ResourceConfig,
} from "./types.js";
import { blockSizeBytes } from "./types.js";

interface PendingIo {
  readonly node: NodeId;
  readonly effect: Extract<
    Effect,
    { type: "diskRead" | "diskWrite" | "diskFlush" | "metadataWrite" }
  >;
}

export interface Completion {
  readonly ok: boolean;
  readonly error?: string;
  readonly data?: Uint8Array;
}

export class MiniCluster {
  readonly config: ResourceConfig;
  readonly replicas: (Replica | undefined)[] = [];
  /** Per node: what reads see (cache included) and what survives a crash. */
  readonly diskData: Uint8Array[] = [];
  readonly diskDurable: Uint8Array[] = [];
  readonly meta: PersistedMeta[] = [];
  readonly pendingIo: PendingIo[] = [];
  /** Links: key "a-b" (a<b) while connected. Queues: key "from>to". */
  private readonly links = new Set<string>();
  private readonly queues = new Map<string, PeerMessage[]>();
  private readonly wants = new Set<string>();
  private readonly blocked = new Set<string>();
  readonly completions = new Map<number, Completion>();
  readonly admin = new Map<number, Completion>();
  readonly log: string[] = [];
  private requestIdNext = 1;
  private commandIdNext = 1;
  /** Fail the next disk IO on a node (by effect type). */
  readonly failNext: { node: NodeId; type: string }[] = [];

  constructor(config: ResourceConfig) {
    this.config = config;
    for (const n of config.nodes) {
      const bytes = n.disk === "diskful" ? config.sizeBlocks * blockSizeBytes : 0;
      this.diskData[n.id] = new Uint8Array(bytes);
      this.diskDurable[n.id] = new Uint8Array(bytes);
      this.meta[n.id] = createPersistedMeta(config.sizeBlocks, n.disk === "diskful");
      this.replicas[n.id] = new Replica(config, n.id);
      this.step(n.id, { type: "start" });
    }
  }

  node(id: NodeId): Replica {
    const r = this.replicas[id];
    assert(r !== undefined, `node ${id} is up`);
    return r;
  }

  step(id: NodeId, event: Event): void {
    const effects = this.node(id).step(event).slice();
    for (const e of effects) this.apply(id, e);
  }

  private apply(id: NodeId, e: Effect): void {
    switch (e.type) {
      case "diskRead":
      case "diskWrite":
      case "diskFlush":
      case "metadataWrite":
        this.pendingIo.push({ node: id, effect: e });
        return;
      case "send": {
        const key = `${id}>${e.to}`;
        if (!this.links.has(linkKey(id, e.to))) return;
        let q = this.queues.get(key);
        if (q === undefined) this.queues.set(key, (q = []));
        q.push(e.message);
        return;
      }
      case "connectPeer":
        this.wants.add(`${id}>${e.peer}`);
        return;
      case "disconnectPeer":
        if (!e.reconnect) this.wants.delete(`${id}>${e.peer}`);
        this.breakLink(id, e.peer);
        return;
      case "completeRequest":
        this.completions.set(e.requestId, pick(e));
        return;
      case "adminCompleted":
        this.admin.set(e.commandId, pick(e));
        return;
      case "stateChanged":
        this.log.push(`${id}: ${JSON.stringify(e.change)}`);
        return;
      case "dataDone":
        return;
    }
  }

  /** Brings up every link both sides want and the network allows. */
  connectAll(): void {
    for (const a of this.config.nodes) {
      for (const b of this.config.nodes) {
        if (a.id >= b.id) continue;
        const key = linkKey(a.id, b.id);
        if (this.links.has(key) || this.blocked.has(key)) continue;
        if (this.replicas[a.id] === undefined || this.replicas[b.id] === undefined) continue;
        if (!this.wants.has(`${a.id}>${b.id}`) || !this.wants.has(`${b.id}>${a.id}`)) continue;
        this.links.add(key);
        this.step(a.id, { type: "peerConnected", peer: b.id });
        this.step(b.id, { type: "peerConnected", peer: a.id });
      }
    }
  }

  breakLink(a: NodeId, b: NodeId): void {
    const key = linkKey(a, b);
    if (!this.links.has(key)) return;
    this.links.delete(key);
    this.queues.delete(`${a}>${b}`);
    this.queues.delete(`${b}>${a}`);
    if (this.replicas[a] !== undefined) this.step(a, { type: "peerDisconnected", peer: b });
    if (this.replicas[b] !== undefined) this.step(b, { type: "peerDisconnected", peer: a });
  }

  /** Cuts `group` off from everyone else. */
  partition(group: readonly NodeId[]): void {
    for (const a of this.config.nodes) {
      for (const b of this.config.nodes) {
        if (a.id >= b.id) continue;
        if (group.includes(a.id) !== group.includes(b.id)) {
          this.blocked.add(linkKey(a.id, b.id));
          this.breakLink(a.id, b.id);
        }
      }
    }
  }

  heal(): void {
    this.blocked.clear();
    this.connectAll();
  }

  isLinked(a: NodeId, b: NodeId): boolean {
    return this.links.has(linkKey(a, b));
  }

  /** Delivers queued messages (all links, FIFO per link); returns how many moved. */
  deliver(filter?: (from: NodeId, to: NodeId, m: PeerMessage) => boolean): number {
    let moved = 0;
    for (const [key, q] of [...this.queues]) {
      const [from, to] = key.split(">").map(Number) as [number, number];
      while (q.length > 0) {
        if (filter !== undefined && !filter(from, to, q[0]!)) break;
        const m = q.shift()!;
        moved++;
        this.step(to, { type: "peerMessage", from, message: m });
        if (this.queues.get(key) !== q) break;
      }
    }
    return moved;
  }

  /** Completes pending IO (optionally only some); returns how many completed. */
  completeIo(filter?: (io: PendingIo) => boolean): number {
    let done = 0;
    const batch = this.pendingIo.splice(0);
    const keep: PendingIo[] = [];
    for (const io of batch) {
      if (filter !== undefined && !filter(io)) {
        keep.push(io);
        continue;
      }
      if (this.replicas[io.node] === undefined) continue;
      done++;
      this.finishIo(io);
    }
    this.pendingIo.unshift(...keep);
    return done;
  }

  private finishIo(io: PendingIo): void {
    const id = io.node;
    const e = io.effect;
    const failAt = this.failNext.findIndex((f) => f.node === id && f.type === e.type);
    const fail = failAt >= 0;
    if (fail) this.failNext.splice(failAt, 1);
    switch (e.type) {
      case "metadataWrite":
        if (!fail) applyMetadataRecord(this.meta[id]!, e.record);
        if (!fail && e.record.kind === "resize") this.growDisk(id, e.record.sizeBlocks);
        return this.step(id, { type: "metadataCompleted", ioId: e.ioId, ok: !fail });
      case "diskWrite":
        if (!fail) this.diskData[id]!.set(e.data, e.offsetBytes);
        return this.step(id, {
          type: "diskCompleted",
          ioId: e.ioId,
          ok: !fail,
          ...(fail ? { error: "EIO" } : {}),
        });
      case "diskFlush":
        if (!fail) this.diskDurable[id]!.set(this.diskData[id]!);
        return this.step(id, { type: "diskCompleted", ioId: e.ioId, ok: !fail });
      case "diskRead": {
        if (fail)
          return this.step(id, { type: "diskCompleted", ioId: e.ioId, ok: false, error: "EIO" });
        const data = this.diskData[id]!.slice(e.offsetBytes, e.offsetBytes + e.lengthBytes);
        return this.step(id, { type: "diskCompleted", ioId: e.ioId, ok: true, data });
      }
    }
  }

  /**
   * The backing device grew (online resize): the new blocks hold a node-specific pattern
   * (0xe0 + node id), as a real grown device holds whatever was there, so a test sees
   * whether the resync copied them.
   */
  private growDisk(id: NodeId, sizeBlocks: number): void {
    for (const disk of [this.diskData, this.diskDurable]) {
      const old = disk[id]!;
      if (old.length >= sizeBlocks * blockSizeBytes) continue;
      const grown = new Uint8Array(sizeBlocks * blockSizeBytes).fill(0xe0 + id);
      grown.set(old);
      disk[id] = grown;
    }
  }

  /** Moves messages and completes IO until nothing is left (bounded). */
  settle(roundsMax = 10_000): void {
    for (let i = 0; i < roundsMax; i++) {
      this.connectAll();
      const moved = this.deliver() + this.completeIo();
      if (moved === 0) return;
    }
    assert(false, "cluster did not settle");
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const n of this.config.nodes)
        if (this.replicas[n.id] !== undefined) this.step(n.id, { type: "tick" });
      this.settle();
    }
  }

  /** Ticks and settles until `done` holds or `ticksMax` pass. */
  runUntil(done: () => boolean, ticksMax = 10_000): boolean {
    for (let i = 0; i < ticksMax; i++) {
      this.settle();
      if (done()) return true;
      this.tick();
    }
    return done();
  }

  adminCmd(id: NodeId, command: AdminCommand): number {
    const commandId = this.commandIdNext++;
    this.step(id, { type: "admin", commandId, command });
    return commandId;
  }

  /** Runs an admin command to completion; returns its result. */
  adminSync(id: NodeId, command: AdminCommand): Completion {
    const c = this.adminCmd(id, command);
    this.settle();
    const r = this.admin.get(c);
    assert(r !== undefined, "admin command completed");
    return r;
  }

  write(id: NodeId, block: number, fill: number, blocks = 1, fua = false): number {
    const requestId = this.requestIdNext++;
    const data = new Uint8Array(blocks * blockSizeBytes).fill(fill);
    this.step(id, {
      type: "clientWrite",
      requestId,
      offsetBytes: block * blockSizeBytes,
      data,
      fua,
    });
    return requestId;
  }

  read(id: NodeId, block: number, blocks = 1): number {
    const requestId = this.requestIdNext++;
    this.step(id, {
      type: "clientRead",
      requestId,
      offsetBytes: block * blockSizeBytes,
      lengthBytes: blocks * blockSizeBytes,
    });
    return requestId;
  }

  flush(id: NodeId): number {
    const requestId = this.requestIdNext++;
    this.step(id, { type: "clientFlush", requestId });
    return requestId;
  }

  /** First byte of a block on a node's disk (cache included). */
  byteAt(id: NodeId, block: number): number {
    return this.diskData[id]![block * blockSizeBytes]!;
  }

  /** Crashes a node: volatile data and pending IO are lost, metadata persisted so far stays. */
  crash(id: NodeId): void {
    for (const n of this.config.nodes) if (n.id !== id) this.breakLink(id, n.id);
    for (const key of [...this.wants]) if (key.startsWith(`${id}>`)) this.wants.delete(key);
    this.replicas[id] = undefined;
    for (let i = this.pendingIo.length - 1; i >= 0; i--)
      if (this.pendingIo[i]!.node === id) this.pendingIo.splice(i, 1);
    this.diskData[id]!.set(this.diskDurable[id]!);
  }

  restart(id: NodeId): void {
    assert(this.replicas[id] === undefined, "node is down");
    this.replicas[id] = new Replica(this.config, id, clonePersistedMeta(this.meta[id]!));
    this.step(id, { type: "start" });
  }

  sameData(a: NodeId, b: NodeId): boolean {
    const x = this.diskData[a]!;
    const y = this.diskData[b]!;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

function pick(e: { ok: boolean; error?: string; data?: Uint8Array }): Completion {
  const c: { ok: boolean; error?: string; data?: Uint8Array } = { ok: e.ok };
  if (e.error !== undefined) c.error = e.error;
  if (e.data !== undefined) c.data = e.data;
  return c;
}
