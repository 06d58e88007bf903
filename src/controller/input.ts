//! Reading request bodies and queries, which are hostile input. Reading is lenient where
//! LINSTOR's clients need it (Jackson's coercions): a number may arrive as a string
//! ("place_count": "2"), a string field may arrive as a number, enum values in any case,
//! unknown fields and nulls are ignored. Anything else that does not fit is a parse error
//! (API_CALL_PARSE_ERROR, HTTP 400) naming the field, raised before anything changes.

import { apiError, parseError, type ObjectKind, type Operation } from "./api_call_rc.js";
import type { Props } from "./store/store.js";

export type Query = Record<string, string | string[] | undefined>;

/** Longest body the controller reads; LINSTOR requests are small. */
export const bodyBytesMax = 1024 * 1024;

/** Parses a request body that must be a JSON value; an empty body is `undefined`. */
export function parseBody(raw: string | undefined): unknown {
  if (raw === undefined || raw.trim() === "") return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw parseError(`The request body is not valid JSON: ${(err as Error).message}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** Reads fields of one JSON object; `path` names it in messages ("resource_definition."). */
export class ObjectReader {
  private constructor(
    private readonly value: Record<string, unknown>,
    private readonly path: string,
  ) {}

  /** The request body as an object; a missing body reads as `{}` when `optional`. */
  static body(raw: string | undefined, optional = false): ObjectReader {
    const v = parseBody(raw);
    if (v === undefined && optional) return new ObjectReader({}, "");
    return ObjectReader.of(v, "request body", "");
  }

  static of(v: unknown, what: string, path: string): ObjectReader {
    if (v === undefined) throw parseError(`The ${what} is missing; a JSON object is required.`);
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw parseError(`The ${what} must be a JSON object, not ${describe(v)}.`);
    }
    return new ObjectReader(v as Record<string, unknown>, path);
  }

  private field(key: string): string {
    return `'${this.path}${key}'`;
  }

  /** The raw value; null reads as absent. */
  raw(key: string): unknown {
    const v = Object.prototype.hasOwnProperty.call(this.value, key) ? this.value[key] : undefined;
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  private missing(key: string): never {
    throw parseError(`The field ${this.field(key)} is required.`);
  }

  str(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw parseError(`The field ${this.field(key)} must be a string, not ${describe(v)}.`);
  }

  strReq(key: string): string {
    return this.str(key) ?? this.missing(key);
  }

  int(key: string, min: number, max: number): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    let n: number | undefined;
    if (typeof v === "number") n = v;
    else if (typeof v === "string" && /^\s*[-+]?\d+\s*$/.test(v)) n = Number(v);
    if (n === undefined || !Number.isSafeInteger(n)) {
      throw parseError(`The field ${this.field(key)} must be an integer, not ${describe(v)}.`);
    }
    if (n < min || n > max) {
      throw parseError(`The field ${this.field(key)} must be between ${min} and ${max}, not ${n}.`);
    }
    return n;
  }

  intReq(key: string, min: number, max: number): number {
    return this.int(key, min, max) ?? this.missing(key);
  }

  num(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw parseError(`The field ${this.field(key)} must be a number, not ${describe(v)}.`);
    }
    return n;
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v === "boolean") return v;
    if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
    throw parseError(`The field ${this.field(key)} must be true or false, not ${describe(v)}.`);
  }

  strList(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      throw parseError(`The field ${this.field(key)} must be an array of strings.`);
    }
    return v.map((item, i) => {
      if (typeof item === "string") return item;
      if (typeof item === "number" || typeof item === "boolean") return String(item);
      throw parseError(
        `The field ${this.field(key)}[${i}] must be a string, not ${describe(item)}.`,
      );
    });
  }

  /** A string-to-string map; scalar values are coerced to strings. */
  props(key: string): Props | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) {
      throw parseError(`The field ${this.field(key)} must be an object of strings.`);
    }
    const out: Props = {};
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
      if (typeof item === "string") out[k] = item;
      else if (typeof item === "number" || typeof item === "boolean") out[k] = String(item);
      else {
        throw parseError(
          `The property ${this.field(key)}["${k}"] must be a string, not ${describe(item)}.`,
        );
      }
    }
    return out;
  }

  /** An integer-valued map (x_replicas_on_different_map). */
  intMap(key: string): Record<string, number> | undefined {
    const props = this.props(key);
    if (props === undefined) return undefined;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(props)) {
      const n = Number(v);
      if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) {
        throw parseError(`The field ${this.field(key)}["${k}"] must be an integer.`);
      }
      out[k] = n;
    }
    return out;
  }

  obj(key: string): ObjectReader | undefined {
    const v = this.raw(key);
    return v === undefined
      ? undefined
      : ObjectReader.of(v, `field ${this.field(key)}`, `${this.path}${key}.`);
  }

  objReq(key: string): ObjectReader {
    return this.obj(key) ?? this.missing(key);
  }

  /** Objects of an array field, each read with its index in the path. */
  objList(key: string): ObjectReader[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw parseError(`The field ${this.field(key)} must be an array.`);
    return v.map((item, i) =>
      ObjectReader.of(item, `field ${this.field(key)}[${i}]`, `${this.path}${key}[${i}].`),
    );
  }

  /** An enum value in any case, answered in the canonical (uppercase) spelling. */
  enumOf<T extends string>(
    key: string,
    values: readonly T[],
    onBad: { code: Parameters<typeof apiError>[0]; object: ObjectKind; operation: Operation },
  ): T | undefined {
    const s = this.str(key);
    if (s === undefined) return undefined;
    const found = values.find((v) => v.toLowerCase() === s.trim().toLowerCase());
    if (found === undefined) {
      throw apiError(
        onBad.code,
        onBad.object,
        onBad.operation,
        `The value '${s}' of ${this.field(key)} is not valid.`,
        { correction: `Use one of: ${values.join(", ")}.` },
      );
    }
    return found;
  }
}

/** Every value of a repeated query parameter (`?nodes=a&nodes=b`), as clients send them. */
export function queryList(q: Query, key: string): string[] {
  const v = q[key];
  const all = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return all.filter((s) => s !== "");
}

export function queryBool(q: Query, key: string): boolean {
  const v = queryList(q, key);
  return v.length > 0 && v[v.length - 1]!.toLowerCase() === "true";
}

export function queryInt(q: Query, key: string): number | undefined {
  const v = queryList(q, key);
  if (v.length === 0) return undefined;
  const s = v[v.length - 1]!;
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw parseError(`The query parameter '${key}' must be a non-negative integer, not '${s}'.`);
  }
  return Number(s);
}

/** `limit`/`offset` paging; `limit=0` (what golinstor always sends) means no limit. */
export function paginate<T>(items: T[], q: Query): T[] {
  const offset = queryInt(q, "offset") ?? 0;
  const limit = queryInt(q, "limit") ?? 0;
  return items.slice(offset, limit === 0 ? undefined : offset + limit);
}

/** `props=key` (the key is set) or `props=key=value`, every one must match. */
export function matchesProps(props: Props, q: Query): boolean {
  return queryList(q, "props").every((f) => {
    const eq = f.indexOf("=");
    if (eq < 0) return Object.prototype.hasOwnProperty.call(props, f);
    return props[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

/** A name filter (`nodes=`, `resources=`, ...), case-insensitive; empty means all. */
export function nameFilter(q: Query, key: string): (name: string) => boolean {
  const wanted = new Set(queryList(q, key).map((s) => s.toLowerCase()));
  return (name) => wanted.size === 0 || wanted.has(name.toLowerCase());
}
