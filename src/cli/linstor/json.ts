//! JSON for the REST client. LINSTOR's `ret_code` is a signed 64-bit mask and every error,
//! warning and info code exceeds 2^53, so `JSON.parse` would corrupt it (and Node 20's
//! `JSON.parse` reviver cannot see the source text). This small parser reads integers that do
//! not fit a double exactly as BigInt; everything else is plain JSON. The writer prints both.

export type Json =
  null | boolean | number | bigint | string | Json[] | { [key: string]: Json | undefined };

export type JsonObject = { [key: string]: Json | undefined };

/** The reply was not JSON; `offset` is where reading stopped. */
export class JsonSyntaxError extends Error {
  override name = "JsonSyntaxError";
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.offset = offset;
  }
}

const numberPattern = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
/** Nesting bound: replies are shallow, and recursion must not overflow the stack on garbage. */
const depthMax = 256;

/** Parses JSON text; an integer outside ±(2^53-1) becomes a BigInt with its exact value. */
export function parseJson(text: string): Json {
  const reader = new JsonReader(text);
  const v = reader.value(0);
  reader.end();
  return v;
}

/** A recursive-descent reader over `text`; `i` is the offset of the next character. */
class JsonReader {
  private i = 0;
  constructor(private readonly text: string) {}

  end(): void {
    this.ws();
    if (this.i !== this.text.length) throw new JsonSyntaxError("trailing characters", this.i);
  }

  value(depth: number): Json {
    if (depth > depthMax) throw new JsonSyntaxError("nesting too deep", this.i);
    this.ws();
    const ch = this.text[this.i];
    if (ch === "{") return this.object(depth);
    if (ch === "[") return this.array(depth);
    if (ch === '"') return this.string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.number();
  }

  private ws(): void {
    while (this.i < this.text.length && " \t\n\r".includes(this.text[this.i]!)) this.i++;
  }

  private expect(ch: string): void {
    if (this.text[this.i] !== ch) throw new JsonSyntaxError(`expected '${ch}'`, this.i);
    this.i++;
  }

  /** True (and consumed) when the next character closes the container. */
  private closes(ch: string): boolean {
    this.ws();
    if (this.text[this.i] !== ch) return false;
    this.i++;
    return true;
  }

  private object(depth: number): JsonObject {
    this.expect("{");
    const obj: JsonObject = {};
    if (this.closes("}")) return obj;
    for (;;) {
      this.ws();
      const key = this.string();
      this.ws();
      this.expect(":");
      obj[key] = this.value(depth + 1);
      if (this.closes("}")) return obj;
      this.expect(",");
    }
  }

  private array(depth: number): Json[] {
    this.expect("[");
    const arr: Json[] = [];
    if (this.closes("]")) return arr;
    for (;;) {
      arr.push(this.value(depth + 1));
      if (this.closes("]")) return arr;
      this.expect(",");
    }
  }

  /** Finds the closing quote, then lets JSON.parse decode the escapes. */
  private string(): string {
    const start = this.i;
    this.expect('"');
    while (this.i < this.text.length && this.text[this.i] !== '"')
      this.i += this.text[this.i] === "\\" ? 2 : 1;
    this.expect('"');
    try {
      return JSON.parse(this.text.slice(start, this.i)) as string;
    } catch {
      throw new JsonSyntaxError("bad string", start);
    }
  }

  private number(): number | bigint {
    numberPattern.lastIndex = this.i;
    const m = numberPattern.exec(this.text);
    if (!m) throw new JsonSyntaxError("unexpected character", this.i);
    this.i += m[0].length;
    const n = Number(m[0]);
    const integer = m[1] === undefined && m[2] === undefined;
    return integer && !Number.isSafeInteger(n) ? BigInt(m[0]) : n;
  }
}

/** Writes JSON indented by two spaces, BigInts as bare integers; undefined keys are left out. */
export function formatJson(value: Json | undefined, indent = ""): string {
  if (value === undefined || value === null) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return JSON.stringify(value);
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + formatJson(v, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{}";
  const body = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`);
  return `{\n${body.join(",\n")}\n${indent}}`;
}

/** Narrowing helpers: replies are read leniently, a missing field reads as empty. */
export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function asArray(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : [];
}

export function asObjects(v: Json | undefined): JsonObject[] {
  return asArray(v).filter(isObject);
}

export function asString(v: Json | undefined): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return "";
}

export function asNumber(v: Json | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}
