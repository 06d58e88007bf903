//! Tier-1 errors: assertions catch programmer errors, stay on in production, and are never
//! caught. A failed assertion means mirra's own code is wrong, not that the input was bad.

export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws an AssertionError when `condition` is false. Nothing may catch it. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch the type system proves unreachable (exhaustive switches). */
export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
