//! Hostile input for the NBD fuzz tests: either random bytes, or a valid exchange with a few
//! bytes overwritten (which reaches deeper into the parsers than noise does). Test support.

import fc from "fast-check";

export interface HostileBytesOptions {
  /** Longest purely random input. */
  readonly randomBytesMax: number;
  /** Most bytes of the valid exchange to overwrite. */
  readonly mutationsMax: number;
  /** Shortest input (and fewest mutations). @default 0 */
  readonly minLength?: number;
}

export function hostileBytes(
  valid: Uint8Array,
  options: HostileBytesOptions,
): fc.Arbitrary<Uint8Array> {
  const min = options.minLength ?? 0;
  const mutated = fc
    .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
      minLength: min,
      maxLength: options.mutationsMax,
    })
    .map((mutations) => {
      const bytes = Uint8Array.from(valid);
      for (const [at, value] of mutations) bytes[at] = value;
      return bytes;
    });
  return fc.oneof(fc.uint8Array({ minLength: min, maxLength: options.randomBytesMax }), mutated);
}
