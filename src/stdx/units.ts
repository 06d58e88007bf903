//! Sizes as operators write them: "1G", "512MiB", "4k", "1048576". Binary multiples, as DRBD
//! and LINSTOR use them.

import { ConfigError } from "./errors.js";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const multipliers: Record<string, number> = {
  "": 1,
  b: 1,
  k: KiB,
  kb: KiB,
  kib: KiB,
  m: MiB,
  mb: MiB,
  mib: MiB,
  g: GiB,
  gb: GiB,
  gib: GiB,
  t: TiB,
  tb: TiB,
  tib: TiB,
  s: 512, // sectors, as in DRBD's size options
};

/** Parses a size such as "1G" or "4096" into bytes; throws ConfigError on anything else. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? m[2]!.toLowerCase() : "";
  const multiplier = multipliers[unit];
  if (!m || multiplier === undefined) {
    throw new ConfigError(`bad size "${text}": use a number with an optional unit (K, M, G, T)`);
  }
  const bytes = Number(m[1]) * multiplier;
  if (!Number.isSafeInteger(bytes))
    throw new ConfigError(`size "${text}" is not a whole number of bytes`);
  return bytes;
}

/** Formats bytes the way `parseSize` reads them back, e.g. 1073741824 → "1 GiB". */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ["TiB", TiB],
    ["GiB", GiB],
    ["MiB", MiB],
    ["KiB", KiB],
  ] as const) {
    if (bytes >= size) {
      const v = bytes / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}
