//! Watches the kernel's dirty page cache so that buffered writes can skip the thread pool
//! when they cannot block.
//!
//! Why: a buffered write of whole pages is a memory copy unless the kernel throttles the
//! writer (balance_dirty_pages). The kernel never throttles while dirty + writeback memory is
//! below its "free-run" point, halfway between the background and the foreground dirty
//! thresholds. Below that point, writing on the event loop costs one copy; through the pool
//! it costs the same copy plus two context switches, which on a virtual machine is twice the
//! CPU. So writers ask `inlineBudget()` and go inline only with headroom to spare.
//!
//! The sample is refreshed every `periodMs` from /proc, and bytes written inline since the last
//! sample count against the headroom, so a burst cannot overshoot between samples. Where /proc
//! cannot be read, the budget is zero: everything goes to the pool.
//!
//! The /proc files stay open and are re-read with one pread each on the event loop (tens of
//! microseconds, never waiting on a disk). Reading them with fs.promises.readFile cost about 25
//! thread-pool jobs per sample (open, stat, read, close for each file): 250 hand-offs a second
//! that queued in front of the device's own IO, a FLUSH among it.

import * as fs from "node:fs";

export interface DirtyPageSample {
  /** Dirty plus writeback bytes, system-wide. */
  dirtyBytes: number;
  /** The free-run point: below it the kernel does not throttle writers. */
  freerunBytes: number;
}

const PAGE_BYTES = 4096;

const PROC_FILES = [
  "/proc/meminfo",
  "/proc/sys/vm/dirty_ratio",
  "/proc/sys/vm/dirty_background_ratio",
  "/proc/sys/vm/dirty_bytes",
  "/proc/sys/vm/dirty_background_bytes",
] as const;
/** /proc/meminfo is about 1.5 KiB; a read that fills this buffer counts as a failure. */
const READ_BUFFER_BYTES = 64 * 1024;

const fieldPatterns = new Map<string, RegExp>();

function fieldPattern(field: string): RegExp {
  let re = fieldPatterns.get(field);
  if (!re) {
    re = new RegExp(`^${field.replace(/[()]/g, "\\$&")}:\\s+(\\d+) kB`, "m");
    fieldPatterns.set(field, re);
  }
  return re;
}

/** The vm.dirty_* sysctls (ratios in percent, bytes 0 when unset). */
export interface VmDirtySettings {
  ratio: number;
  backgroundRatio: number;
  bytes: number;
  backgroundBytes: number;
}

const VM_SETTINGS_EVERY = 10;

/** Parses /proc/meminfo text and the vm.dirty_* settings into a sample; pure. */
export function computeSample(meminfo: string, vm: VmDirtySettings): DirtyPageSample | undefined {
  const kib = (field: string): number | undefined => {
    const m = fieldPattern(field).exec(meminfo);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const free = kib("MemFree");
  const activeFile = kib("Active(file)");
  const inactiveFile = kib("Inactive(file)");
  const dirty = kib("Dirty");
  const writeback = kib("Writeback");
  if ([free, activeFile, inactiveFile, dirty, writeback].some((v) => v === undefined))
    return undefined;
  // The kernel's global_dirtyable_memory(): free pages plus the file cache.
  const dirtyable = free! + activeFile! + inactiveFile!;
  const thresh = vm.bytes > 0 ? vm.bytes : (dirtyable * vm.ratio) / 100;
  let bgThresh =
    vm.backgroundBytes > 0 ? vm.backgroundBytes : (dirtyable * vm.backgroundRatio) / 100;
  if (bgThresh >= thresh) bgThresh = thresh / 2;
  return { dirtyBytes: dirty! + writeback!, freerunBytes: (thresh + bgThresh) / 2 };
}

export class DirtyPageMonitor {
  private sample: DirtyPageSample | undefined;
  private inlineSinceSampleBytes = 0;
  private readonly timer: NodeJS.Timeout;
  /** The PROC_FILES, open; null before the first sample, undefined if they cannot be opened. */
  private fds: number[] | null | undefined = null;
  private readonly buf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /** The vm.dirty_* settings, re-read every VM_SETTINGS_EVERY samples (they rarely change). */
  private vm: VmDirtySettings | undefined;
  private samplesSinceVm = 0;

  /**
   * @param headroom fraction of the free-run point that inline writes may fill. @default 0.8
   * @param periodMs how often /proc is sampled. @default 100
   */
  constructor(
    private readonly headroom = 0.8,
    periodMs = 100,
  ) {
    this.timer = setInterval(() => this.refresh(), periodMs);
    this.timer.unref();
    // The first sample comes right after the caller's turn, as the first read used to.
    setImmediate(() => this.refresh()).unref();
  }

  /** Whether a whole-page buffered write of `length` bytes at `offsetBytes` may go inline now. */
  mayWriteInline(offsetBytes: number, length: number): boolean {
    if (!this.sample || offsetBytes % PAGE_BYTES !== 0 || length % PAGE_BYTES !== 0) return false;
    const projected = this.sample.dirtyBytes + this.inlineSinceSampleBytes + length;
    if (projected > this.sample.freerunBytes * this.headroom) return false;
    this.inlineSinceSampleBytes += length;
    return true;
  }

  /** Stops inline writes until the next sample (after an inline write was slow). */
  backOff(): void {
    this.sample = undefined;
  }

  close(): void {
    clearInterval(this.timer);
    if (this.fds) for (const fd of this.fds) fs.closeSync(fd);
    this.fds = undefined;
  }

  private refresh(): void {
    if (this.fds === null) this.fds = openAll();
    const fds = this.fds;
    if (!fds) {
      this.sample = undefined;
      return;
    }
    try {
      if (!this.vm || ++this.samplesSinceVm >= VM_SETTINGS_EVERY) {
        this.samplesSinceVm = 0;
        this.vm = {
          ratio: Number(this.readText(fds[1]!).trim()),
          backgroundRatio: Number(this.readText(fds[2]!).trim()),
          bytes: Number(this.readText(fds[3]!).trim()),
          backgroundBytes: Number(this.readText(fds[4]!).trim()),
        };
      }
      this.sample = computeSample(this.readText(fds[0]!), this.vm);
    } catch {
      this.vm = undefined;
      this.sample = undefined;
    }
    this.inlineSinceSampleBytes = 0;
  }

  /** The whole of a /proc file, read from its start. */
  private readText(fd: number): string {
    const n = fs.readSync(fd, this.buf, 0, this.buf.length, 0);
    if (n >= this.buf.length) throw new Error("/proc file larger than the read buffer");
    return this.buf.toString("latin1", 0, n);
  }
}

/** Opens every PROC_FILES entry, or none (undefined) if one cannot be opened. */
function openAll(): number[] | undefined {
  const fds: number[] = [];
  try {
    for (const path of PROC_FILES) fds.push(fs.openSync(path, "r"));
    return fds;
  } catch {
    for (const fd of fds) fs.closeSync(fd);
    return undefined;
  }
}

let shared: DirtyPageMonitor | undefined;

/** One monitor per process, started on first use. */
export function dirtyPageMonitor(): DirtyPageMonitor {
  shared ??= new DirtyPageMonitor();
  return shared;
}
