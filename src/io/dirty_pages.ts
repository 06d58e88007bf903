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
//! The sample is refreshed every `periodMs` from /proc (asynchronously), and bytes written
//! inline since the last sample count against the headroom, so a burst cannot overshoot
//! between samples. Where /proc cannot be read, the budget is zero: everything goes to the pool.

import * as fs from "node:fs";

export interface DirtyPageSample {
  /** Dirty plus writeback bytes, system-wide. */
  dirtyBytes: number;
  /** The free-run point: below it the kernel does not throttle writers. */
  freerunBytes: number;
}

const PAGE_BYTES = 4096;

function readNumber(path: string): Promise<number> {
  return fs.promises.readFile(path, "utf8").then((t) => Number(t.trim()));
}

/** Parses /proc/meminfo text and the vm.dirty_* settings into a sample; pure. */
export function computeSample(
  meminfo: string,
  vm: { ratio: number; backgroundRatio: number; bytes: number; backgroundBytes: number },
): DirtyPageSample | undefined {
  const kib = (field: string): number | undefined => {
    const m = new RegExp(`^${field.replace(/[()]/g, "\\$&")}:\\s+(\\d+) kB`, "m").exec(meminfo);
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
  private refreshing = false;

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
    this.refresh();
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
  }

  private refresh(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    Promise.all([
      fs.promises.readFile("/proc/meminfo", "utf8"),
      readNumber("/proc/sys/vm/dirty_ratio"),
      readNumber("/proc/sys/vm/dirty_background_ratio"),
      readNumber("/proc/sys/vm/dirty_bytes"),
      readNumber("/proc/sys/vm/dirty_background_bytes"),
    ])
      .then(([meminfo, ratio, backgroundRatio, bytes, backgroundBytes]) => {
        this.sample = computeSample(meminfo, { ratio, backgroundRatio, bytes, backgroundBytes });
        this.inlineSinceSampleBytes = 0;
      })
      .catch(() => {
        this.sample = undefined;
      })
      .finally(() => {
        this.refreshing = false;
      });
  }
}

let shared: DirtyPageMonitor | undefined;

/** One monitor per process, started on first use. */
export function dirtyPageMonitor(): DirtyPageMonitor {
  shared ??= new DirtyPageMonitor();
  return shared;
}
