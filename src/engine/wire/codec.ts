//! Frames of the peer protocol (docs/protocol.md): a 12-byte header, then a payload laid out
//! by the message catalogue in schema.ts. Big-endian, like NBD.
//!
//!   0  32 bits  magic 0x4D495252 ("MIRR")
//!   4   8 bits  frame version (1)
//!   5   8 bits  message type code
//!   6  16 bits  flags, zero
//!   8  32 bits  payload length, at most payloadBytesMax
//!
//! The decoder treats its input as hostile: every length is checked against the bytes that
//! remain BEFORE anything is allocated from it, so a frame never costs more memory than its
//! bounded payload, and the only error that escapes is ProtocolError. Encoding a message the
//! engine built wrongly (a float, a negative number, too many UUIDs) is a bug: assertion.

import { assert } from "../../stdx/assert.js";
import { ProtocolError } from "../../stdx/errors.js";
import type { PeerMessage, UuidSet } from "../types.js";
import { specByCode, specByName, type FieldSpec, type MessageSpec } from "./schema.js";

export const frameMagic = 0x4d495252;
export const frameVersion = 1;
export const frameHeaderBytes = 12;
/** Largest block payload of one message: 32 MiB, the largest NBD request mirra accepts. */
export const dataBytesMax = 32 * 1024 * 1024;
/** Largest payload: the data plus room for the fixed fields. */
export const payloadBytesMax = dataBytesMax + 4096;
/** UUIDs in a UuidSet: 32 bitmap slots and a history bound well above the engine's. */
export const bitmapUuidsMax = 32;
export const historyUuidsMax = 64;

export type HandshakeMessage =
  | {
      readonly type: "hello";
      readonly protocolMin: number;
      readonly protocolMax: number;
      readonly nodeId: number;
      readonly peerNodeId: number;
      readonly featureFlags: number;
      readonly resourceName: string;
    }
  | { readonly type: "authChallenge"; readonly challenge: Uint8Array }
  | { readonly type: "authResponse"; readonly mac: Uint8Array }
  | { readonly type: "reject"; readonly reason: number; readonly message: string };

export type WireMessage = PeerMessage | HandshakeMessage;

/**
 * Type codes by message name. Typed against PeerMessage so that a variant added to
 * src/engine/types.ts fails to compile here until it has a code and a schema entry.
 */
export const messageCodes: Record<WireMessage["type"], number> = {
  hello: 0x01,
  authChallenge: 0x02,
  authResponse: 0x03,
  reject: 0x04,
  state: 0x10,
  data: 0x11,
  recvAck: 0x12,
  writeAck: 0x13,
  negAck: 0x14,
  barrier: 0x15,
  barrierAck: 0x16,
  readRequest: 0x17,
  readReply: 0x18,
  promoteRequest: 0x19,
  promoteReply: 0x1a,
  bitmap: 0x1b,
  syncStart: 0x1c,
  resyncRequest: 0x1d,
  checksumRequest: 0x1e,
  resyncReply: 0x1f,
  inSync: 0x20,
  resyncAck: 0x21,
  resyncDone: 0x22,
  verifyRequest: 0x23,
  verifyReply: 0x24,
  verifyDone: 0x25,
  peerAck: 0x26,
  ping: 0x27,
  pingAck: 0x28,
  resizeRequest: 0x29,
  resizeReply: 0x2a,
  resize: 0x2b,
  resizeAck: 0x2c,
};

type FieldNames<T> = Record<Exclude<keyof T, "type">, true>;

/**
 * The fields of every message, as the TYPES declare them. An object literal of a Record type
 * must name every key and no other, so a field added to or removed from a PeerMessage
 * variant in src/engine/types.ts fails to compile here; a unit test then checks that the
 * catalogue in schema.ts carries exactly these fields.
 */
export const messageFieldNames: {
  [K in WireMessage["type"]]: FieldNames<Extract<WireMessage, { type: K }>>;
} = {
  hello: {
    protocolMin: true,
    protocolMax: true,
    nodeId: true,
    peerNodeId: true,
    featureFlags: true,
    resourceName: true,
  },
  authChallenge: { challenge: true },
  authResponse: { mac: true },
  reject: { reason: true, message: true },
  state: {
    role: true,
    disk: true,
    uuids: true,
    crashedPrimary: true,
    bitsForYou: true,
    discardMyData: true,
    promotionSeq: true,
    reply: true,
    connectedMask: true,
    syncTowardUuid: true,
    handshakeId: true,
    judged: true,
    streamId: true,
    streamSeq: true,
    syncBaseUuid: true,
  },
  data: { seq: true, epoch: true, firstBlock: true, data: true, ack: true, targets: true },
  recvAck: { seq: true },
  writeAck: { seq: true },
  negAck: { seq: true },
  barrier: { epoch: true },
  barrierAck: { epoch: true },
  readRequest: { id: true, firstBlock: true, blockCount: true },
  readReply: { id: true, ok: true, data: true },
  promoteRequest: { id: true },
  promoteReply: { id: true, granted: true },
  bitmap: {
    ranges: true,
    last: true,
    covered: true,
    coveredStreamId: true,
    coveredStreamSeq: true,
  },
  syncStart: { uuids: true, full: true },
  resyncRequest: { block: true, blockCount: true },
  checksumRequest: { block: true, blockCount: true, digest: true },
  resyncReply: { block: true, ok: true, streamId: true, streamSeq: true, data: true },
  inSync: { block: true, blockCount: true },
  resyncAck: { block: true, blockCount: true },
  resyncDone: {},
  verifyRequest: { block: true, blockCount: true },
  verifyReply: { block: true, blockCount: true, ok: true, digest: true },
  verifyDone: {},
  peerAck: { firstBlock: true, blockCount: true, mask: true },
  ping: { seq: true },
  pingAck: { seq: true },
  resizeRequest: { id: true, sizeBlocks: true },
  resizeReply: { id: true, capacityBlocks: true },
  resize: { id: true, sizeBlocks: true, assumeClean: true },
  resizeAck: { id: true, ok: true },
};

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function specOf(msg: WireMessage): MessageSpec {
  const spec = specByName.get(msg.type);
  assert(spec !== undefined && spec.code === messageCodes[msg.type], `spec for ${msg.type}`);
  return spec;
}

type Fields = Readonly<Record<string, unknown>>;

function fieldOf(msg: WireMessage, name: string): unknown {
  return (msg as unknown as Fields)[name];
}

// ----------------------------------------------------------------------------------------
// Encoding.

function u64Ok(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function listOf(v: unknown): readonly number[] {
  assert(Array.isArray(v), "list field");
  return v as readonly number[];
}

/** Bytes a field takes before any `blocks` data (which is sent by reference). */
function fieldBytes(field: FieldSpec, value: unknown): number {
  switch (field.type.kind) {
    case "u8":
    case "bool":
    case "enum":
      return 1;
    case "u16":
      return 2;
    case "u32":
    case "i32":
      return 4;
    case "u64":
      return 8;
    case "optU64":
      return value === undefined ? 1 : 9;
    case "optI32":
      return value === undefined ? 1 : 5;
    case "bytes32":
      return 32;
    case "uuids": {
      const u = value as UuidSet;
      return 8 + 1 + 8 * u.bitmapUuids.length + 1 + 8 * u.historyUuids.length;
    }
    case "u64list":
      return 4 + 8 * listOf(value).length;
    case "optU64list":
      return value === undefined ? 1 : 5 + 8 * listOf(value).length;
    case "blocks":
      return 4;
    case "optBlocks":
      return value === undefined ? 1 : 5;
    case "string":
      return 2 + utf8.encode(String(value)).length;
  }
}

class Writer {
  readonly view: DataView;
  offset = 0;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xff, "u8 field");
    this.view.setUint8(this.offset, v);
    this.offset += 1;
  }
  u16(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff, "u16 field");
    this.view.setUint16(this.offset, v);
    this.offset += 2;
  }
  u32(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, "u32 field");
    this.view.setUint32(this.offset, v);
    this.offset += 4;
  }
  i32(v: number): void {
    assert(Number.isInteger(v) && v >= -(2 ** 31) && v <= 0xffffffff, "i32 field");
    this.view.setInt32(this.offset, v | 0);
    this.offset += 4;
  }
  u64(v: unknown): void {
    assert(u64Ok(v), `u64 field holds a safe integer: ${String(v)}`);
    this.view.setUint32(this.offset, Math.floor(v / 2 ** 32));
    this.view.setUint32(this.offset + 4, v % 2 ** 32);
    this.offset += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.offset);
    this.offset += b.length;
  }
}

function writeU64List(w: Writer, field: FieldSpec, pairs: boolean, value: unknown): void {
  const list = listOf(value);
  assert(!pairs || list.length % 2 === 0, `${field.name}: pairs`);
  w.u32(list.length);
  for (const x of list) w.u64(x);
}

function writeBlocks(w: Writer, value: unknown): Uint8Array {
  assert(value instanceof Uint8Array, "block data is bytes");
  assert(value.length > 0 && value.length % 4096 === 0, "data is whole 4 KiB blocks");
  assert(value.length <= dataBytesMax, "data bound");
  w.u32(value.length);
  return value;
}

function writeField(w: Writer, field: FieldSpec, value: unknown): Uint8Array | undefined {
  const t = field.type;
  switch (t.kind) {
    case "u8":
      w.u8(value as number);
      return;
    case "u16":
      w.u16(value as number);
      return;
    case "u32":
      w.u32(value as number);
      return;
    case "i32":
      w.i32(value as number);
      return;
    case "u64":
      w.u64(value);
      return;
    case "optU64":
      w.u8(value === undefined ? 0 : 1);
      if (value !== undefined) w.u64(value);
      return;
    case "optI32":
      w.u8(value === undefined ? 0 : 1);
      if (value !== undefined) w.i32(value as number);
      return;
    case "bool":
      assert(typeof value === "boolean", `${field.name} is a boolean`);
      w.u8(value ? 1 : 0);
      return;
    case "enum": {
      const index = t.names.indexOf(value as string);
      assert(index >= 0, `${field.name}: unknown value ${String(value)}`);
      w.u8(index);
      return;
    }
    case "bytes32":
      assert(value instanceof Uint8Array && value.length === 32, `${field.name}: 32 bytes`);
      w.raw(value);
      return;
    case "uuids": {
      const u = value as UuidSet;
      assert(u.bitmapUuids.length <= bitmapUuidsMax, "bitmap UUIDs bound");
      assert(u.historyUuids.length <= historyUuidsMax, "history UUIDs bound");
      w.u64(u.currentUuid);
      w.u8(u.bitmapUuids.length);
      for (const x of u.bitmapUuids) w.u64(x);
      w.u8(u.historyUuids.length);
      for (const x of u.historyUuids) w.u64(x);
      return;
    }
    case "optU64list":
      w.u8(value === undefined ? 0 : 1);
      if (value !== undefined) writeU64List(w, field, t.pairs ?? false, value);
      return;
    case "u64list":
      writeU64List(w, field, t.pairs ?? false, value);
      return;
    case "optBlocks":
      w.u8(value === undefined ? 0 : 1);
      return value === undefined ? undefined : writeBlocks(w, value);
    case "blocks":
      return writeBlocks(w, value);
    case "string": {
      const b = utf8.encode(value as string);
      assert(b.length <= t.maxBytes, `${field.name}: at most ${t.maxBytes} bytes`);
      w.u16(b.length);
      w.raw(b);
      return;
    }
  }
}

/**
 * Encodes a frame as [head] or [head, data]: the block data of a data-carrying message is
 * returned by reference (not copied), for a vectored socket write.
 */
export function encodeFrameParts(msg: WireMessage): Uint8Array[] {
  const spec = specOf(msg);
  let headBytes = frameHeaderBytes;
  for (const field of spec.fields) headBytes += fieldBytes(field, fieldOf(msg, field.name));
  const head = new Uint8Array(headBytes);
  const w = new Writer(head);
  w.u32(frameMagic);
  w.u8(frameVersion);
  w.u8(spec.code);
  w.u16(0);
  w.u32(0); // Payload length, patched below once the data is known.
  let data: Uint8Array | undefined;
  for (const field of spec.fields) {
    const out = writeField(w, field, fieldOf(msg, field.name));
    if (out !== undefined) data = out;
  }
  assert(w.offset === headBytes, "encoded size matches the computed size");
  const payloadBytes = headBytes - frameHeaderBytes + (data?.length ?? 0);
  assert(payloadBytes <= payloadBytesMax, "payload bound");
  w.view.setUint32(8, payloadBytes);
  return data === undefined ? [head] : [head, data];
}

/** Encodes a frame into one buffer (copies block data; see encodeFrameParts). */
export function encodeFrame(msg: WireMessage): Uint8Array {
  const parts = encodeFrameParts(msg);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts[0]!.length + parts[1]!.length);
  out.set(parts[0]!);
  out.set(parts[1]!, parts[0]!.length);
  return out;
}

// ----------------------------------------------------------------------------------------
// Decoding.

class Reader {
  private readonly view: DataView;
  offset = 0;
  constructor(
    private readonly input: Uint8Array,
    private readonly type: string,
  ) {
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }
  need(n: number, what: string): void {
    if (this.input.length - this.offset < n)
      throw new ProtocolError(`${this.type} message too short for ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.offset);
    this.offset += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.offset);
    const lo = this.view.getUint32(this.offset + 4);
    this.offset += 8;
    if (hi > 0x1fffff) throw new ProtocolError(`${this.type}: ${what} exceeds 2^53`);
    return hi * 2 ** 32 + lo;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.input.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  remaining(): number {
    return this.input.length - this.offset;
  }
}

function readU64List(r: Reader, field: FieldSpec, pairs: boolean): number[] {
  const n = r.u32(field.name);
  // Check the claimed count against the bytes present before allocating for it.
  if (n * 8 > r.remaining()) throw new ProtocolError(`${field.name}: ${n} entries do not fit`);
  if (pairs && n % 2 !== 0) throw new ProtocolError(`${field.name}: odd number of entries`);
  const list: number[] = [];
  for (let i = 0; i < n; i++) list.push(r.u64(field.name));
  return list;
}

function readBlocks(r: Reader, field: FieldSpec): Uint8Array {
  const n = r.u32(field.name);
  if (n === 0 || n % 4096 !== 0 || n > dataBytesMax)
    throw new ProtocolError(`${field.name}: ${n} bytes is not a whole number of 4 KiB blocks`);
  return r.bytes(n, field.name);
}

function readPresence(r: Reader, field: FieldSpec): boolean {
  const p = r.u8(field.name);
  if (p > 1) throw new ProtocolError(`${field.name}: presence byte ${p}`);
  return p === 1;
}

function readField(r: Reader, field: FieldSpec): unknown {
  const t = field.type;
  switch (t.kind) {
    case "u8":
      return r.u8(field.name);
    case "u16":
      return r.u16(field.name);
    case "u32":
      return r.u32(field.name);
    case "i32":
      return r.i32(field.name);
    case "u64":
      return r.u64(field.name);
    case "optU64":
      return readPresence(r, field) ? r.u64(field.name) : undefined;
    case "optI32":
      return readPresence(r, field) ? r.i32(field.name) : undefined;
    case "bool": {
      const b = r.u8(field.name);
      if (b > 1) throw new ProtocolError(`${field.name}: boolean byte ${b}`);
      return b === 1;
    }
    case "enum": {
      const i = r.u8(field.name);
      const name = t.names[i];
      if (name === undefined) throw new ProtocolError(`${field.name}: unknown value ${i}`);
      return name;
    }
    case "bytes32":
      return r.bytes(32, field.name).slice();
    case "uuids": {
      const currentUuid = r.u64("current UUID");
      const nb = r.u8("bitmap UUID count");
      if (nb > bitmapUuidsMax) throw new ProtocolError(`${nb} bitmap UUIDs`);
      const bitmapUuids: number[] = [];
      for (let i = 0; i < nb; i++) bitmapUuids.push(r.u64("bitmap UUID"));
      const nh = r.u8("history UUID count");
      if (nh > historyUuidsMax) throw new ProtocolError(`${nh} history UUIDs`);
      const historyUuids: number[] = [];
      for (let i = 0; i < nh; i++) historyUuids.push(r.u64("history UUID"));
      const set: UuidSet = { currentUuid, bitmapUuids, historyUuids };
      return set;
    }
    case "u64list":
      return readU64List(r, field, t.pairs ?? false);
    case "optU64list":
      return readPresence(r, field) ? readU64List(r, field, t.pairs ?? false) : undefined;
    case "blocks":
      return readBlocks(r, field);
    case "optBlocks":
      return readPresence(r, field) ? readBlocks(r, field) : undefined;
    case "string": {
      const n = r.u16(field.name);
      if (n > t.maxBytes) throw new ProtocolError(`${field.name}: ${n} bytes is too long`);
      try {
        return utf8Strict.decode(r.bytes(n, field.name));
      } catch (err) {
        if (err instanceof ProtocolError) throw err;
        throw new ProtocolError(`${field.name}: not UTF-8`, { cause: err });
      }
    }
  }
}

/**
 * Decodes one payload of type `code`. Block data in the result aliases `payload`: the
 * caller must not reuse that memory while the message is alive.
 */
export function decodePayload(code: number, payload: Uint8Array): WireMessage {
  const spec = specByCode.get(code);
  if (spec === undefined)
    throw new ProtocolError(`unknown message type 0x${code.toString(16).padStart(2, "0")}`);
  const r = new Reader(payload, spec.name);
  const out: Record<string, unknown> = { type: spec.name };
  for (const field of spec.fields) {
    const v = readField(r, field);
    if (v !== undefined) out[field.name] = v;
  }
  if (r.remaining() !== 0)
    throw new ProtocolError(`${spec.name} message has ${r.remaining()} trailing bytes`);
  return out as unknown as WireMessage;
}

/**
 * Codes of the messages whose decoded block data is a view of the payload they were decoded
 * from (every other field is copied out): only these keep a receive buffer alive.
 */
const codesKeepingPayload = new Set(
  [...specByCode.values()]
    .filter((spec) =>
      spec.fields.some((f) => f.type.kind === "blocks" || f.type.kind === "optBlocks"),
    )
    .map((spec) => spec.code),
);

/** Whether a message decoded in place keeps a view of its payload (see codesKeepingPayload). */
export function decodedKeepsPayload(code: number): boolean {
  return codesKeepingPayload.has(code);
}

export interface FrameHeader {
  readonly code: number;
  readonly flags: number;
  readonly payloadBytes: number;
}

/** Validates a 12-byte frame header; throws ProtocolError. */
export function decodeFrameHeader(bytes: Uint8Array): FrameHeader {
  assert(bytes.length >= frameHeaderBytes, "whole header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, frameHeaderBytes);
  const magic = view.getUint32(0);
  if (magic !== frameMagic)
    throw new ProtocolError(
      `bad frame magic 0x${magic.toString(16).padStart(8, "0")} (not a mirra peer?)`,
    );
  const version = view.getUint8(4);
  if (version !== frameVersion) throw new ProtocolError(`unsupported frame version ${version}`);
  const code = view.getUint8(5);
  if (!specByCode.has(code))
    throw new ProtocolError(`unknown message type 0x${code.toString(16).padStart(2, "0")}`);
  const flags = view.getUint16(6);
  if (flags !== 0) throw new ProtocolError(`unknown frame flags 0x${flags.toString(16)}`);
  const payloadBytes = view.getUint32(8);
  if (payloadBytes > payloadBytesMax)
    throw new ProtocolError(`frame payload of ${payloadBytes} bytes exceeds ${payloadBytesMax}`);
  return { code, flags, payloadBytes };
}
