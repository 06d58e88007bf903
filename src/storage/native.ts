//! Loads mirra's small native addon (native/mirra_native.c): fallocate and block-device
//! ioctls that Node has no call for. If the addon is missing (it is built by `npm install`),
//! mirra still works: TRIM becomes a no-op and zeroing writes zero bytes.

import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";

export const RangeOp = { punchHole: 0, zeroRange: 1, blkDiscard: 2, blkZeroOut: 3 } as const;
export type RangeOpCode = (typeof RangeOp)[keyof typeof RangeOp];

interface NativeBinding {
  /** Memory that starts on a 4096-byte boundary (for O_DIRECT without a bounce copy). */
  alignedBuffer?(bytes: number): ArrayBuffer;
  /** Synchronous RWF_NOWAIT IO: bytes done, or -errno (-EAGAIN when it would block). */
  preadNowait(
    fd: number,
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
  ): number;
  pwriteNowait(
    fd: number,
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
  ): number;
  /** Runs [kind, fd, buf, bufOffset, length, position] ops as one thread-pool job. */
  ioBatch(
    ops: readonly (readonly [number, number, Uint8Array | null, number, number, number])[],
    results: Float64Array,
    cb: () => void,
  ): void;
  /** The largest piece a buffered write goes to the file in (see local_volume.ts). */
  writePieceBytes?: number;
  /** The calling thread's voluntary context switches so far (getrusage), or -1. */
  threadVoluntarySwitches?(): number;
  rangeOp(
    op: number,
    fd: number,
    offset: number,
    length: number,
    cb: (errno: number) => void,
  ): void;
}

function load(): NativeBinding | undefined {
  const require = createRequire(import.meta.url);
  // dist/src/storage/native.js and src/storage/native.ts both sit three levels below the root.
  for (const path of [
    "../../../native/build/Release/mirra_native.node",
    "../../native/build/Release/mirra_native.node",
  ]) {
    try {
      return require(path) as NativeBinding;
    } catch {
      // Try the next location; absence is handled by the callers' fallbacks.
    }
  }
  return undefined;
}

export const native: NativeBinding | undefined = load();

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** A Node-style error (with `code`) for a raw errno from the addon. */
export function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? "EIO";
  const err: NodeJS.ErrnoException = new Error(`${syscall} failed: ${code}`);
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  return err;
}
