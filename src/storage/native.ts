//! Loads mirra's small native addon (native/mirra_native.c): fallocate and block-device
//! ioctls that Node has no call for. If the addon is missing (it is built by `npm install`),
//! mirra still works: TRIM becomes a no-op and zeroing writes zero bytes.

import { createRequire } from "node:module";

export const RangeOp = { punchHole: 0, zeroRange: 1, blkDiscard: 2, blkZeroOut: 3 } as const;
export type RangeOpCode = (typeof RangeOp)[keyof typeof RangeOp];

interface NativeBinding {
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
