//! Volume sizes as LINSTOR's client reads them: a number with an optional unit, binary
//! multiples, GiB when no unit is given; the API takes KiB.

import { ConfigError } from "../../stdx/errors.js";
import { KiB, GiB, parseSize } from "../../stdx/units.js";

/** Parses "1G", "100M", "512MiB" or "20" (GiB) into KiB, rounding bytes up to whole KiB. */
export function parseSizeKib(text: string): number {
  const bare = /^\s*\d+(\.\d+)?\s*$/.test(text);
  let bytes: number;
  try {
    bytes = bare ? Number(text) * GiB : parseSize(text);
  } catch (err) {
    throw new ConfigError(
      `bad size "${text}": use a number with an optional unit (K, M, G, T; no unit means GiB)`,
      { cause: err },
    );
  }
  if (!Number.isSafeInteger(bytes))
    throw new ConfigError(`size "${text}" is not a whole number of bytes`);
  return Math.ceil(bytes / KiB);
}
