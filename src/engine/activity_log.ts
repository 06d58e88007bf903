//! The activity log: the set of "hot" extents (alExtentBlocks blocks each, 4 MiB in
//! production) where writes may be in flight or not yet durable. Rule: a data write to an
//! extent is issued only after a transaction naming that extent is persisted; after a
//! Primary crashes, exactly the logged extents are marked out of sync for every peer.
//!
//! Invariants:
//! - at most `capacity` extents are active;
//! - an extent with writes in flight (refs > 0) is never evicted;
//! - an extent is evicted only once clean: a flush completed after its last write finished,
//!   so no acknowledged data of an extent that leaves the log sits in a volatile cache;
//! - transactions carry increasing sequence numbers; `txSeq` of an extent is the
//!   transaction that added it.

import { assert } from "../stdx/assert.js";

interface Extent {
  refs: number;
  /** Transaction that added the extent; writes to it wait until this one is persisted. */
  txSeq: number;
  /** Value of `writesDone` when a write to it last finished; compare with `flushedMark`. */
  dirtyMark: number;
  /** LRU order: larger = used more recently. */
  lastUse: number;
}

export type AlActivation =
  /** All extents active; the write may go once transaction `txSeq` is persisted. */
  | { readonly kind: "ready"; readonly txSeq: number }
  /** A new transaction is needed (the caller persists `extents`, seq `txSeq`). */
  | { readonly kind: "transaction"; readonly txSeq: number }
  /** No room: every victim candidate is busy or dirty; `needFlush` if a flush would help. */
  | { readonly kind: "blocked"; readonly needFlush: boolean };

export class ActivityLog {
  readonly capacity: number;
  readonly extentBlocks: number;
  private readonly extents = new Map<number, Extent>();
  private useCounter = 0;
  /** Number of the last transaction created. */
  txSeqLast: number;
  /** Counts finished writes; an extent is clean when dirtyMark <= flushedMark. */
  private writesDone = 0;
  private flushedMark = 0;

  constructor(capacity: number, extentBlocks: number, persisted: readonly number[], txSeq: number) {
    assert(capacity >= 1 && extentBlocks >= 1, "AL geometry");
    this.capacity = capacity;
    this.extentBlocks = extentBlocks;
    this.txSeqLast = txSeq;
    // Extents that were hot at the crash stay logged until evicted normally.
    for (const e of persisted.slice(0, capacity)) {
      this.extents.set(e, { refs: 0, txSeq: txSeq, dirtyMark: 0, lastUse: ++this.useCounter });
    }
  }

  firstExtent(firstBlock: number): number {
    return Math.floor(firstBlock / this.extentBlocks);
  }

  lastExtent(firstBlock: number, blockCount: number): number {
    return Math.floor((firstBlock + blockCount - 1) / this.extentBlocks);
  }

  /**
   * Reserves the extents of a write. On "ready" or "transaction" the references are taken
   * and must be released with `release`. On "blocked" nothing changed.
   */
  activate(firstBlock: number, blockCount: number): AlActivation {
    assert(blockCount >= 1, "write of at least one block");
    const first = this.firstExtent(firstBlock);
    const last = this.lastExtent(firstBlock, blockCount);
    let missing = 0;
    for (let e = first; e <= last; e++) if (!this.extents.has(e)) missing++;
    if (missing > 0) {
      const room = this.capacity - this.extents.size;
      if (missing > room) {
        const evict = this.pickVictims(missing - room, first, last);
        if (evict.kind === "blocked") return evict;
        for (const v of evict.victims) this.extents.delete(v);
      }
      this.txSeqLast++;
    }
    let txSeq = 0;
    for (let e = first; e <= last; e++) {
      let x = this.extents.get(e);
      if (x === undefined) {
        x = { refs: 0, txSeq: this.txSeqLast, dirtyMark: 0, lastUse: 0 };
        this.extents.set(e, x);
      }
      x.refs++;
      x.lastUse = ++this.useCounter;
      if (x.txSeq > txSeq) txSeq = x.txSeq;
    }
    assert(this.extents.size <= this.capacity, "AL within capacity");
    return missing > 0 ? { kind: "transaction", txSeq: this.txSeqLast } : { kind: "ready", txSeq };
  }

  private pickVictims(
    needed: number,
    first: number,
    last: number,
  ): { kind: "ok"; victims: number[] } | { kind: "blocked"; needFlush: boolean } {
    const clean: [number, number][] = [];
    let dirtyIdle = 0;
    for (const [e, x] of this.extents) {
      if (x.refs > 0 || (e >= first && e <= last)) continue;
      if (x.dirtyMark <= this.flushedMark) clean.push([x.lastUse, e]);
      else dirtyIdle++;
    }
    if (clean.length < needed) return { kind: "blocked", needFlush: dirtyIdle > 0 };
    clean.sort((a, b) => a[0] - b[0]);
    return { kind: "ok", victims: clean.slice(0, needed).map((c) => c[1]) };
  }

  /** A write to these blocks finished (its data may still sit in a volatile cache). */
  release(firstBlock: number, blockCount: number): void {
    this.writesDone++;
    const first = this.firstExtent(firstBlock);
    const last = this.lastExtent(firstBlock, blockCount);
    for (let e = first; e <= last; e++) {
      const x = this.extents.get(e);
      assert(x !== undefined && x.refs > 0, "release of an active extent");
      x.refs--;
      x.dirtyMark = this.writesDone;
    }
  }

  /** Call when a flush is issued; pass the token back to `flushDone`. */
  flushStart(): number {
    return this.writesDone;
  }

  flushDone(token: number): void {
    if (token > this.flushedMark) this.flushedMark = token;
  }

  /**
   * Empties the log for a clean detach (nothing in flight, everything flushed); returns the
   * sequence number of the (empty) transaction to persist.
   */
  clear(): number {
    for (const x of this.extents.values()) assert(x.refs === 0, "clear with writes in flight");
    this.extents.clear();
    return ++this.txSeqLast;
  }

  /** The active extents (for transactions and inspection), ascending. */
  list(): number[] {
    return [...this.extents.keys()].sort((a, b) => a - b);
  }

  has(extent: number): boolean {
    return this.extents.has(extent);
  }

  get size(): number {
    return this.extents.size;
  }
}
