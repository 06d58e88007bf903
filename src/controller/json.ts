//! JSON text for REST responses. `JSON.stringify` cannot write a BigInt, and a JavaScript
//! number cannot hold a LINSTOR `ret_code` (they exceed 2^53), so responses are written here:
//! a BigInt becomes a bare signed integer, exactly. Object keys whose value is `undefined` are
//! left out, as Java's `NON_EMPTY` leaves out nulls.

import { assert } from "../stdx/assert.js";

export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue | undefined };

/** Serializes `value`; a non-finite number is a bug in the caller, not bad input. */
export function toJson(value: JsonValue): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      assert(Number.isFinite(value), `toJson: non-finite number ${value}`);
      return JSON.stringify(value);
    case "bigint":
      return value.toString();
    case "string":
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${(value as readonly JsonValue[]).map(toJson).join(",")}]`;
  }
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) parts.push(`${JSON.stringify(k)}:${toJson(v)}`);
  }
  return `{${parts.join(",")}}`;
}
