//! Batches file IO into few thread-pool jobs. Every job handed to libuv's pool costs two
//! context switches (wake a worker, then wake the event loop), which on this kind of virtual
//! machine costs more than copying a 4 KiB block. Requests submitted during one event-loop
//! callback (one socket read holds many NBD requests at depth 64) are gathered and run as a
//! few jobs of several operations each, through the native addon's ioBatch.
//!
//! Jobs are bounded in operations and bytes so that a batch still spreads over several
//! workers when the disk, not the CPU, is the limit.

import type { IoCallback } from "./block_device.js";
import { native, errnoError } from "./native.js";

const JOB_OPS_MAX = 16;
const JOB_BYTES_MAX = 1024 * 1024;

const KIND_READ = 0;
const KIND_WRITE = 1;
const KIND_FDATASYNC = 2;
/** A write on an O_DIRECT descriptor: the addon copies it into an aligned buffer first. */
const KIND_WRITE_DIRECT = 3;

type Op = [
  kind: number,
  fd: number,
  buf: Uint8Array | null,
  bufOffset: number,
  length: number,
  position: number,
];

interface Job {
  ops: Op[];
  callbacks: IoCallback[];
  results: Float64Array;
}

export class IoBatcher {
  private ops: Op[] = [];
  private callbacks: IoCallback[] = [];
  private scheduled = false;
  private readonly flushCallback = (): void => this.flush();

  /** `onWritten` hears of every write that completed (failed ones too), before its callback. */
  constructor(private readonly onWritten: () => void = () => {}) {}

  static available(): boolean {
    return native !== undefined;
  }

  read(
    fd: number,
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    cb: IoCallback,
  ): void {
    this.push([KIND_READ, fd, buf, bufOffset, length, position], cb);
  }

  write(
    fd: number,
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    cb: IoCallback,
  ): void {
    this.push([KIND_WRITE, fd, buf, bufOffset, length, position], cb);
  }

  /** A write on a descriptor opened with O_DIRECT; position and length multiples of 4096. */
  writeDirect(
    fd: number,
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    cb: IoCallback,
  ): void {
    this.push([KIND_WRITE_DIRECT, fd, buf, bufOffset, length, position], cb);
  }

  fdatasync(fd: number, cb: IoCallback): void {
    this.push([KIND_FDATASYNC, fd, null, 0, 0, 0], cb);
  }

  private push(op: Op, cb: IoCallback): void {
    this.ops.push(op);
    this.callbacks.push(cb);
    if (!this.scheduled) {
      this.scheduled = true;
      // After the current callback (one socket read's worth of requests), before any IO.
      process.nextTick(this.flushCallback);
    }
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.ops;
    const callbacks = this.callbacks;
    this.ops = [];
    this.callbacks = [];
    let start = 0;
    while (start < ops.length) {
      let end = start;
      let bytes = 0;
      while (
        end < ops.length &&
        end - start < JOB_OPS_MAX &&
        (end === start || bytes < JOB_BYTES_MAX)
      ) {
        bytes += ops[end]![4];
        end++;
      }
      this.submit({
        ops: start === 0 && end === ops.length ? ops : ops.slice(start, end),
        callbacks: start === 0 && end === ops.length ? callbacks : callbacks.slice(start, end),
        results: new Float64Array(end - start),
      });
      start = end;
    }
  }

  private submit(job: Job): void {
    native!.ioBatch(job.ops, job.results, () => complete(job, this.onWritten));
  }
}

function complete(job: Job, onWritten: () => void): void {
  for (let i = 0; i < job.ops.length; i++) {
    const op = job.ops[i]!;
    const r = job.results[i]!;
    const cb = job.callbacks[i]!;
    const write = op[0] === KIND_WRITE || op[0] === KIND_WRITE_DIRECT;
    if (write) onWritten();
    if (r < 0) {
      cb(errnoError(-r, op[0] === KIND_READ ? "pread" : write ? "pwrite" : "fdatasync"));
    } else if (op[0] === KIND_READ && r < op[4]) {
      // Past the end of a file that shrank behind our back: the rest reads as zeroes.
      op[2]!.fill(0, op[3] + r, op[3] + op[4]);
      cb(null);
    } else if (write && r < op[4]) {
      cb(errnoError(5, "pwrite (short write)"));
    } else {
      cb(null);
    }
  }
}
