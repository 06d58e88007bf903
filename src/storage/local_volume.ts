//! A volume on this machine: a regular file (sparse by default) or a block device.
//!
//! Durability model: FLUSH is fdatasync on the shared descriptor, which covers every write
//! that completed before it, from any connection (flush_coalescer.ts decides which fdatasync
//! answers which flush: concurrent flushes share one, and a client that flushes after every
//! write finds its sync already started); a FUA write goes through a second
//! descriptor opened with O_DSYNC, so it is durable when the write call returns. TRIM punches
//! holes and WRITE_ZEROES zeroes a range with fallocate (BLKDISCARD / BLKZEROOUT on block
//! devices) on the libuv thread pool, and falls back to writing zeroes where the filesystem
//! cannot.

import * as fs from "node:fs";
import { constants as osConstants } from "node:os";
import type { BlockDevice, IoCallback, ZeroOptions } from "./block_device.js";
import { errnoError, native, RangeOp, type RangeOpCode } from "./native.js";
import { IoBatcher } from "./io_batch.js";
import { FlushCoalescer } from "./flush_coalescer.js";
import { dirtyPageMonitor, type DirtyPageMonitor } from "../io/dirty_pages.js";
import { ConfigError, DiskIoError } from "../stdx/errors.js";

export interface LocalVolumeOptions {
  path: string;
  /** Size in bytes for a file that does not exist yet (created sparse), or to grow it to. */
  createSizeBytes?: number;
  readOnly?: boolean;
}

const ZERO_CHUNK_BYTES = 1024 * 1024;
/**
 * Larger writes go to the thread pool even when they could go inline, so that one write
 * never holds the event loop for long. Up to this size (128 KiB sequential writes included),
 * the copy on the event loop costs less CPU than the hand-off to a worker and back: on a
 * two-core machine shared with the client, there is no idle core for the pool to use.
 */
const inlineWriteBytesMax = Number(process.env["MIRRA_INLINE_WRITE_BYTES_MAX"] ?? 512 * 1024);
/**
 * Buffered writes go to the file in pieces of at most this size (here and in the addon's
 * batch): the page cache sizes its folios by the write (ext4 on Linux 6.x), and every
 * later small write into a folio walks all of its buffer heads (ext4_block_write_begin), as
 * does its writeback. After a volume was written in 1 MiB pieces, a 4 KiB random write cost
 * 2 to 3 times the CPU, most of it there. The addon's batch uses the same size and says it.
 */
const writePieceBytes = native?.writePieceBytes ?? 32 * 1024;
/** An inline write slower than this backs off to the thread pool (1 ms). */
const INLINE_WRITE_SLOW_NS = 1_000_000n;
/** From this size up, an inline write counts its thread's voluntary context switches. */
const SWITCH_CHECK_BYTES_MIN = 64 * 1024;
let zeroChunk: Uint8Array | undefined;
/**
 * Reads up to this size try the page cache on the event loop (RWF_NOWAIT). A larger copy
 * (a 1 MiB resync read) holds the loop longer than a pool round trip costs.
 */
const nowaitReadBytesMax = 128 * 1024;
/** O_DIRECT offsets and lengths: the page size, a multiple of every logical block size. */
const directAlignBytes = 4096;
/** Bulk writes below this size stay buffered: O_DIRECT's device round trip costs more. */
const bulkDirectBytesMin = 32 * 1024;

export class LocalVolume implements BlockDevice {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  readonly canFastZero: boolean;
  readonly path: string;
  private readonly isBlockDevice: boolean;
  private fd: number;
  private fdSync: number;
  /** The same file opened with O_DIRECT for bulk writes (resync), or -1 where refused. */
  private readonly fdDirect: number;
  private closed = false;
  /** Try RWF_NOWAIT IO on the event loop first (files only: devices may block in the driver). */
  private readonly tryNowait: boolean;
  private tryNowaitWrite: boolean;
  /** Gathers IO into few thread-pool jobs (see io_batch.ts); undefined without the addon. */
  private readonly batcher: IoBatcher | undefined;
  /** Decides when buffered writes may skip the pool; undefined for devices and read-only. */
  private readonly dirtyPages: DirtyPageMonitor | undefined;
  /** Which fdatasync answers which FLUSH (see flush_coalescer.ts). */
  private readonly flushes: FlushCoalescer;

  private constructor(
    path: string,
    fd: number,
    fdSync: number,
    fdDirect: number,
    sizeBytes: number,
    readOnly: boolean,
    isBlock: boolean,
  ) {
    this.path = path;
    this.fd = fd;
    this.fdSync = fdSync;
    this.fdDirect = fdDirect;
    this.sizeBytes = sizeBytes;
    this.readOnly = readOnly;
    this.isBlockDevice = isBlock;
    this.canTrim = native !== undefined;
    this.canFastZero = native !== undefined;
    this.tryNowait = native !== undefined && !isBlock && process.env["MIRRA_NOWAIT"] !== "0";
    this.tryNowaitWrite = this.tryNowait && !readOnly;
    this.dirtyPages =
      !isBlock && !readOnly && process.env["MIRRA_INLINE_WRITES"] !== "0"
        ? dirtyPageMonitor()
        : undefined;
    this.flushes = new FlushCoalescer({
      sync: (cb) => {
        if (this.batcher) this.batcher.fdatasync(this.fd, cb);
        else fs.fdatasync(this.fd, cb);
      },
      flushAhead: process.env["MIRRA_FLUSH_AHEAD"] !== "0",
    });
    const flushes = this.flushes;
    this.batcher =
      IoBatcher.available() && process.env["MIRRA_IO_BATCH"] !== "0"
        ? new IoBatcher(() => flushes.written())
        : undefined;
  }

  /** Opens (or creates, sparse) the backing file or device. Startup only: synchronous calls. */
  static open(options: LocalVolumeOptions): LocalVolume {
    const { path } = options;
    const readOnly = options.readOnly ?? false;
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw wrapOpenError(path, err);
    }
    if (!stat) {
      if (readOnly)
        throw new ConfigError(`${path} does not exist, and a read-only export cannot create it`);
      if (!options.createSizeBytes)
        throw new ConfigError(`${path} does not exist: give --size to create it`);
      try {
        fs.writeFileSync(path, new Uint8Array(0), { flag: "wx" });
        fs.truncateSync(path, options.createSizeBytes);
        stat = fs.statSync(path);
      } catch (err) {
        throw wrapOpenError(path, err);
      }
    }
    const isBlock = stat.isBlockDevice();
    if (!isBlock && !stat.isFile())
      throw new ConfigError(`${path} is neither a regular file nor a block device`);
    const flags = readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
    let fd: number;
    let fdSync: number;
    try {
      fd = fs.openSync(path, flags);
      fdSync = readOnly ? fd : fs.openSync(path, flags | fs.constants.O_DSYNC);
    } catch (err) {
      throw wrapOpenError(path, err);
    }
    let size = isBlock ? blockDeviceSize(stat.rdev) : stat.size;
    if (!isBlock && !readOnly && options.createSizeBytes && options.createSizeBytes > size) {
      fs.ftruncateSync(fd, options.createSizeBytes);
      size = options.createSizeBytes;
    }
    if (size === 0) throw new ConfigError(`${path} is empty: give --size to grow it`);
    return new LocalVolume(path, fd, fdSync, openDirect(path, readOnly), size, readOnly, isBlock);
  }

  read(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    cb: IoCallback,
  ): void {
    if (this.tryNowait && native && length <= nowaitReadBytesMax) {
      // Page-cache hit: done without a thread-pool round trip; anything else goes to the pool.
      const n = native.preadNowait(this.fd, buf, bufOffset, length, offsetBytes);
      if (n === length) {
        process.nextTick(cb, null);
        return;
      }
    }
    if (this.batcher) {
      this.batcher.read(this.fd, buf, bufOffset, length, offsetBytes, cb);
      return;
    }
    fs.read(this.fd, buf, bufOffset, length, offsetBytes, (err, bytesRead) => {
      // A short read can only mean the file shrank behind our back: the rest reads as zeroes.
      if (!err && bytesRead < length) buf.fill(0, bufOffset + bytesRead, bufOffset + length);
      cb(err);
    });
  }

  write(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    fua: boolean,
    cb: IoCallback,
  ): void {
    if (!fua) {
      const done = this.writeNow(buf, bufOffset, length, offsetBytes);
      if (done !== false) {
        process.nextTick(cb, done);
        return;
      }
    }
    if (this.batcher) {
      this.batcher.write(fua ? this.fdSync : this.fd, buf, bufOffset, length, offsetBytes, cb);
      return;
    }
    fs.write(fua ? this.fdSync : this.fd, buf, bufOffset, length, offsetBytes, (err, written) => {
      this.flushes.written();
      if (!err && written !== length) {
        // pwrite on a regular file writes everything or fails; anything else is a device error.
        cb(errnoError(osConstants.errno.EIO, "pwrite (short write)"));
        return;
      }
      cb(err);
    });
  }

  /**
   * A large write nobody will read back soon (resync data): written around the page cache
   * with O_DIRECT where the file system allows it, the way DRBD's resync goes to the backing
   * device. Copying into the page cache is the slowest part of a buffered write on a virtual
   * machine, and resync data would only push the application's pages out. Anything else
   * (small, unaligned, no O_DIRECT, no addon) is an ordinary write.
   */
  writeBulk(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
    cb: IoCallback,
  ): void {
    const aligned = offsetBytes % directAlignBytes === 0 && length % directAlignBytes === 0;
    if (this.fdDirect < 0 || !this.batcher || !aligned || length < bulkDirectBytesMin) {
      this.write(buf, bufOffset, length, offsetBytes, false, cb);
      return;
    }
    this.batcher.writeDirect(this.fdDirect, buf, bufOffset, length, offsetBytes, cb);
  }

  /**
   * Writes now, on the event loop, if that cannot block: a non-blocking RWF_NOWAIT write
   * where the filesystem supports it, else a whole-page buffered write while dirty memory is
   * below the kernel's free-run point (see io/dirty_pages.ts). Returns null when written, the
   * error when it failed, or false, having written nothing, when the caller must use write().
   */
  writeNow(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    offsetBytes: number,
  ): NodeJS.ErrnoException | null | false {
    if (this.tryNowaitWrite && native && length <= writePieceBytes) {
      const n = native.pwriteNowait(this.fd, buf, bufOffset, length, offsetBytes);
      if (n === length) {
        this.flushes.written();
        return null;
      }
      // ext4 and others refuse non-blocking buffered writes outright: stop asking.
      if (n === -osConstants.errno.EOPNOTSUPP) this.tryNowaitWrite = false;
      // A partial write is fine to redo whole: pwrite of the same bytes is idempotent.
    }
    if (length > inlineWriteBytesMax) return false;
    if (!this.dirtyPages || !this.dirtyPages.mayWriteInline(offsetBytes, length)) return false;
    // For a large write, one syscall more tells throttling from preemption (see below).
    const switches = length >= SWITCH_CHECK_BYTES_MIN ? native?.threadVoluntarySwitches : undefined;
    const switchesBefore = switches ? switches() : 0;
    const started = process.hrtime.bigint();
    let written: number;
    try {
      written = 0;
      while (written < length) {
        const n = Math.min(writePieceBytes, length - written);
        if (fs.writeSync(this.fd, buf, bufOffset + written, n, offsetBytes + written) !== n) break;
        written += n;
      }
    } catch (err) {
      this.flushes.written();
      return err as NodeJS.ErrnoException;
    }
    this.flushes.written();
    // A slow inline write means the kernel started to push back: stop until the next sample.
    // Unless the write never slept: then it was only preempted (a busy machine), and the pool
    // would not have made it any faster, only dearer.
    if (
      process.hrtime.bigint() - started > INLINE_WRITE_SLOW_NS &&
      (!switches || switches() !== switchesBefore)
    )
      this.dirtyPages.backOff();
    return written === length ? null : false; // a short write is redone whole through the pool
  }

  flush(cb: IoCallback): void {
    this.flushes.flush(cb);
  }

  /** fdatasync calls started for flushes so far (flush-ahead included). */
  get syncsStarted(): number {
    return this.flushes.syncsStarted;
  }

  trim(offsetBytes: number, length: number, fua: boolean, cb: IoCallback): void {
    const op = this.isBlockDevice ? RangeOp.blkDiscard : RangeOp.punchHole;
    const finish = this.flushedIf(fua, cb);
    // TRIM is advisory: a filesystem that cannot punch holes still answers success.
    this.rangeOp(op, offsetBytes, length, (err) => finish(err && !isUnsupported(err) ? err : null));
  }

  writeZeroes(offsetBytes: number, length: number, options: ZeroOptions, cb: IoCallback): void {
    const finish = this.flushedIf(options.fua, cb);
    const op = this.isBlockDevice
      ? RangeOp.blkZeroOut
      : options.noHole
        ? RangeOp.zeroRange
        : RangeOp.punchHole;
    this.rangeOp(op, offsetBytes, length, (err) => {
      if (!err) return finish(null);
      if (!isUnsupported(err)) return finish(err);
      if (options.fastZero) return cb(errnoError(osConstants.errno.EOPNOTSUPP, "fast zero"));
      this.writeZeroBytes(offsetBytes, length, finish);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.readOnly) {
      await new Promise<void>((resolve) => this.flushes.flush(() => resolve()));
      // A flush-ahead still running must not meet a closed (or reused) descriptor.
      await new Promise<void>((resolve) => this.flushes.whenIdle(resolve));
    }
    if (this.fdSync !== this.fd) fs.closeSync(this.fdSync);
    if (this.fdDirect >= 0) fs.closeSync(this.fdDirect);
    fs.closeSync(this.fd);
  }

  /** `cb`, preceded by a flush when `fua` asks for durability (and the operation succeeded). */
  private flushedIf(fua: boolean, cb: IoCallback): IoCallback {
    return fua ? (err) => (err ? cb(err) : this.flush(cb)) : cb;
  }

  private rangeOp(op: RangeOpCode, offsetBytes: number, length: number, cb: IoCallback): void {
    if (!native) {
      cb(errnoError(osConstants.errno.EOPNOTSUPP, "fallocate (native addon not built)"));
      return;
    }
    native.rangeOp(op, this.fd, offsetBytes, length, (errno) => {
      this.flushes.modified();
      cb(errno === 0 ? null : errnoError(errno, "fallocate"));
    });
  }

  /** The slow path of WRITE_ZEROES: one megabyte of zeroes at a time. */
  private writeZeroBytes(offsetBytes: number, length: number, cb: IoCallback): void {
    zeroChunk ??= new Uint8Array(ZERO_CHUNK_BYTES);
    const chunk = zeroChunk;
    const step = (at: number): void => {
      if (at >= offsetBytes + length) return cb(null);
      const n = Math.min(ZERO_CHUNK_BYTES, offsetBytes + length - at);
      fs.write(this.fd, chunk, 0, n, at, (err) => {
        this.flushes.modified();
        if (err) cb(err);
        else step(at + n);
      });
    };
    step(offsetBytes);
  }
}

/** The filesystem or device cannot do this range operation at all (as opposed to failing). */
function isUnsupported(err: NodeJS.ErrnoException): boolean {
  return err.code === "EOPNOTSUPP" || err.code === "ENOTSUP" || err.code === "ENOTTY";
}

/**
 * The backing file opened again with O_DIRECT for bulk writes, or -1: tmpfs and some other
 * file systems refuse O_DIRECT (EINVAL), and MIRRA_DIRECT_RESYNC=0 turns it off for A/B runs.
 */
function openDirect(path: string, readOnly: boolean): number {
  if (readOnly || !native || process.env["MIRRA_DIRECT_RESYNC"] === "0") return -1;
  try {
    return fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
  } catch {
    return -1;
  }
}

function wrapOpenError(path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new DiskIoError(`cannot open ${path}: ${code ?? String(err)}`, code, { cause: err });
}

/** A block device's size from sysfs (fstat reports 0 for devices). */
function blockDeviceSize(rdev: number): number {
  const major = (rdev >> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, "utf8").trim());
  return sectors * 512;
}
