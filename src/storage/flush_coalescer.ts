//! Decides which fdatasync answers a FLUSH, so that flushes share syncs and a client that
//! flushes after every write finds its sync already running.
//!
//! The rule (NBD's FLUSH, and DRBD's flush after a barrier): a flush may be answered by any
//! sync that *started* after every modification that had completed when the flush arrived,
//! from any connection. Modifications are counted as they complete; a sync remembers the count
//! when it was started. So a flush joins a sync already in flight when no modification
//! completed since it started, answers at once when the newest finished sync covers the
//! current count, and starts a sync otherwise.
//!
//! Flush-ahead: when the last few flushes each followed a single write (a database committing
//! one record at a time; fio's `--fsync=1`), the first write after a flush starts the sync at
//! once, before the client has even received the write's reply. The flush that follows joins
//! it, saving a client round trip and a hand-off to the thread pool. A wrong guess costs one
//! fdatasync, and the next flush that follows several writes ends the streak.
//!
//! A sync that fails with nobody waiting (a flush-ahead) keeps its error for the next flush:
//! the kernel reports a writeback error once per descriptor, so dropping it would let a later
//! sync claim data durable that was lost.

import type { IoCallback } from "./block_device.js";

/** Flushes in a row that each followed at most one write before flush-ahead starts. */
const FLUSH_AHEAD_STREAK = 3;

interface SyncInFlight {
  /** Modifications completed when this sync was started: all of them are covered. */
  readonly covers: number;
  readonly waiters: IoCallback[];
}

export interface FlushCoalescerOptions {
  /** Starts one fdatasync (or equivalent) and calls back when it is done. */
  sync: (cb: IoCallback) => void;
  /** Start syncs ahead of flushes for clients that flush after every write (default on). */
  flushAhead?: boolean;
  /** How a result reaches a waiter that cannot be answered synchronously. */
  defer?: (cb: IoCallback, err: NodeJS.ErrnoException | null) => void;
  /** When a flush-ahead starts: after the write's reply is on its way (default setImmediate). */
  later?: (fn: () => void) => void;
}

export class FlushCoalescer {
  private readonly sync: (cb: IoCallback) => void;
  private readonly flushAhead: boolean;
  private readonly defer: (cb: IoCallback, err: NodeJS.ErrnoException | null) => void;
  private readonly later: (fn: () => void) => void;
  private readonly startAhead = (): void => {
    this.aheadScheduled = false;
    // A flush that came in the meantime may have started the sync already.
    if (this.newest?.covers !== this.completed && this.durableThrough !== this.completed)
      this.start(null);
  };
  private aheadScheduled = false;
  /** Modifications (writes, trims, zeroes) completed so far. */
  private completed = 0;
  /** `covers` of the newest sync that succeeded; -1 until one has (older data may be dirty). */
  private durableThrough = -1;
  /** The sync started last, while it runs (a flush can only join the newest). */
  private newest: SyncInFlight | null = null;
  private inFlight = 0;
  /** The error of a sync nobody waited for, owed to the next flush. */
  private owedError: NodeJS.ErrnoException | null = null;
  /** Called once no sync runs any more (see whenIdle). */
  private idleWaiters: (() => void)[] = [];
  private writesSinceFlush = 0;
  private streak = 0;
  private started = 0;

  constructor(options: FlushCoalescerOptions) {
    this.sync = options.sync;
    this.flushAhead = options.flushAhead ?? true;
    this.defer = options.defer ?? ((cb, err) => process.nextTick(cb, err));
    this.later = options.later ?? ((fn) => setImmediate(fn));
  }

  /** Calls `cb` once no sync is running (at once if none is): before the descriptor closes. */
  whenIdle(cb: () => void): void {
    if (this.inFlight === 0) cb();
    else this.idleWaiters.push(cb);
  }

  /** Syncs started so far (for tests and metrics). */
  get syncsStarted(): number {
    return this.started;
  }

  /** A write has completed (successfully or not: counting too many only costs a sync). */
  written(): void {
    this.completed++;
    this.writesSinceFlush++;
    if (
      this.flushAhead &&
      this.writesSinceFlush === 1 &&
      this.streak >= FLUSH_AHEAD_STREAK &&
      !this.aheadScheduled
    ) {
      this.aheadScheduled = true;
      this.later(this.startAhead);
    }
  }

  /** A trim or zeroing has completed: it needs a sync too, but says nothing of the pattern. */
  modified(): void {
    this.completed++;
    this.writesSinceFlush += 2;
  }

  flush(cb: IoCallback): void {
    this.streak = this.writesSinceFlush <= 1 ? this.streak + 1 : 0;
    this.writesSinceFlush = 0;
    if (this.owedError) {
      const err = this.owedError;
      this.owedError = null;
      this.defer(cb, err);
      return;
    }
    if (this.durableThrough === this.completed) {
      this.defer(cb, null);
      return;
    }
    const newest = this.newest;
    if (newest && newest.covers === this.completed) newest.waiters.push(cb);
    else this.start(cb);
  }

  private start(waiter: IoCallback | null): void {
    const s: SyncInFlight = { covers: this.completed, waiters: waiter ? [waiter] : [] };
    this.newest = s;
    this.inFlight++;
    this.started++;
    this.sync((err) => this.finished(s, err));
  }

  private finished(s: SyncInFlight, err: NodeJS.ErrnoException | null): void {
    this.inFlight--;
    if (this.newest === s) this.newest = null;
    if (!err && s.covers > this.durableThrough) this.durableThrough = s.covers;
    if (err && s.waiters.length === 0) this.owedError = err;
    for (const cb of s.waiters) cb(err);
    if (this.inFlight === 0 && this.idleWaiters.length > 0)
      for (const cb of this.idleWaiters.splice(0)) cb();
  }
}
