//! The NBD transmission phase as pure codecs and decisions: decode a request header, decide
//! whether a request is acceptable (and which error the specification wants if not), and
//! encode reply headers into caller-provided buffers.
//!
//! The decode and encode functions write into objects and buffers the caller owns, so the
//! server's hot path allocates nothing per request for headers.

import * as C from "./constants.js";
import type { NbdErrno } from "./constants.js";

/** A decoded request header. Reused by the server, so callers copy what they keep. */
export interface RequestHeader {
  flags: number;
  type: number;
  /** The client's cookie ("handle"), echoed back verbatim, as two 32-bit halves. */
  cookieHi: number;
  cookieLo: number;
  /** Byte offset; above 2^53 it is inexact, but then it is past the end of any export. */
  offset: number;
  length: number;
}

export function newRequestHeader(): RequestHeader {
  return { flags: 0, type: 0, cookieHi: 0, cookieLo: 0, offset: 0, length: 0 };
}

function u32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
}

function putU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v;
}

/**
 * Decodes the 28-byte request header at `buf[at]` into `out`. Returns false when the magic is
 * wrong: the stream is out of step and the connection must be closed.
 */
export function decodeRequestHeader(buf: Uint8Array, at: number, out: RequestHeader): boolean {
  if (u32(buf, at) !== C.REQUEST_MAGIC) return false;
  out.flags = (buf[at + 4]! << 8) | buf[at + 5]!;
  out.type = (buf[at + 6]! << 8) | buf[at + 7]!;
  out.cookieHi = u32(buf, at + 8);
  out.cookieLo = u32(buf, at + 12);
  out.offset = u32(buf, at + 16) * 4294967296 + u32(buf, at + 20);
  out.length = u32(buf, at + 24);
  return true;
}

export function encodeRequestHeader(buf: Uint8Array, at: number, h: RequestHeader): void {
  putU32(buf, at, C.REQUEST_MAGIC);
  putU16(buf, at + 4, h.flags);
  putU16(buf, at + 6, h.type);
  putU32(buf, at + 8, h.cookieHi);
  putU32(buf, at + 12, h.cookieLo);
  putU32(buf, at + 16, Math.floor(h.offset / 4294967296));
  putU32(buf, at + 20, h.offset % 4294967296);
  putU32(buf, at + 24, h.length);
}

/** Whether the payload of this request follows its header on the wire. */
export function requestHasPayload(h: RequestHeader): boolean {
  return h.type === C.CMD_WRITE;
}

/** What a connection negotiated, as the validator needs it. */
export interface TransmissionContext {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  readonly canFastZero: boolean;
  readonly structuredReplies: boolean;
}

export interface Verdict {
  errno: NbdErrno;
  /** Why, for a structured error chunk and the server log; "" when accepted. */
  message: string;
}

const OK: Verdict = { errno: C.NBD_OK, message: "" };

function reject(errno: NbdErrno, message: string): Verdict {
  return { errno, message };
}

function allowedFlags(type: number, ctx: TransmissionContext): number {
  switch (type) {
    case C.CMD_READ:
      return ctx.structuredReplies ? C.CMD_FLAG_DF : 0;
    case C.CMD_WRITE:
    case C.CMD_TRIM:
      return C.CMD_FLAG_FUA;
    case C.CMD_WRITE_ZEROES:
      return C.CMD_FLAG_FUA | C.CMD_FLAG_NO_HOLE | (ctx.canFastZero ? C.CMD_FLAG_FAST_ZERO : 0);
    default:
      return 0;
  }
}

/**
 * Decides whether a request may run, following the specification's error choices (and
 * nbdkit's validate_request): EINVAL for unknown commands, bad flags, misalignment and reads
 * past the end; ENOSPC for writes past the end; EOVERFLOW for reads over the payload limit;
 * EPERM for writes to a read-only export. DISC is always accepted.
 */
export function validateRequest(h: RequestHeader, ctx: TransmissionContext): Verdict {
  const t = h.type;
  if (t === C.CMD_DISC) return OK;
  const isData = t === C.CMD_READ || t === C.CMD_WRITE;
  const isRange = isData || t === C.CMD_TRIM || t === C.CMD_WRITE_ZEROES;
  if (!isRange && t !== C.CMD_FLUSH)
    return reject(C.NBD_EINVAL, `command ${C.commandName(t)} is not supported`);
  if (t === C.CMD_TRIM && !ctx.canTrim && !ctx.readOnly)
    return reject(C.NBD_EINVAL, "TRIM is not supported here");
  const bad = h.flags & ~allowedFlags(t, ctx);
  if (bad !== 0)
    return reject(
      C.NBD_EINVAL,
      `flags 0x${bad.toString(16)} are not valid for ${C.commandName(t)}`,
    );
  if (t === C.CMD_FLUSH) {
    return h.offset === 0 && h.length === 0
      ? OK
      : reject(C.NBD_EINVAL, "FLUSH must have offset and length 0");
  }
  const isWrite = !isData || t === C.CMD_WRITE;
  if (isData && h.length > C.PAYLOAD_BYTES_MAX) {
    return reject(
      t === C.CMD_READ ? C.NBD_EOVERFLOW : C.NBD_EINVAL,
      `${C.commandName(t)} of ${h.length} bytes exceeds the 32 MiB maximum`,
    );
  }
  if (h.length === 0) return reject(C.NBD_EINVAL, `${C.commandName(t)} of 0 bytes`);
  if (h.offset % C.BLOCK_SIZE_MIN !== 0 || h.length % C.BLOCK_SIZE_MIN !== 0) {
    return reject(C.NBD_EINVAL, `offset and length must be multiples of ${C.BLOCK_SIZE_MIN} bytes`);
  }
  if (h.offset + h.length > ctx.sizeBytes) {
    return reject(
      isWrite ? C.NBD_ENOSPC : C.NBD_EINVAL,
      `${C.commandName(t)} at ${h.offset}+${h.length} ends past the export's ${ctx.sizeBytes} bytes`,
    );
  }
  if (isWrite && ctx.readOnly) return reject(C.NBD_EPERM, "the export is read-only");
  return OK;
}

/** Writes a 16-byte simple reply header. */
export function writeSimpleReply(
  buf: Uint8Array,
  at: number,
  errno: number,
  cookieHi: number,
  cookieLo: number,
): void {
  putU32(buf, at, C.SIMPLE_REPLY_MAGIC);
  putU32(buf, at + 4, errno);
  putU32(buf, at + 8, cookieHi);
  putU32(buf, at + 12, cookieLo);
}

/** Writes a 20-byte structured reply chunk header. */
export function writeStructuredReply(
  buf: Uint8Array,
  at: number,
  flags: number,
  type: number,
  cookieHi: number,
  cookieLo: number,
  payloadBytes: number,
): void {
  putU32(buf, at, C.STRUCTURED_REPLY_MAGIC);
  putU16(buf, at + 4, flags);
  putU16(buf, at + 6, type);
  putU32(buf, at + 8, cookieHi);
  putU32(buf, at + 12, cookieLo);
  putU32(buf, at + 16, payloadBytes);
}

/** Header bytes that precede read data: simple header, or structured header plus offset. */
export function readReplyHeaderBytes(structuredReplies: boolean): number {
  return structuredReplies ? C.STRUCTURED_REPLY_HEADER_BYTES + 8 : C.SIMPLE_REPLY_HEADER_BYTES;
}

/** Writes the header in front of read data (an OFFSET_DATA chunk marked DONE when structured). */
export function writeReadReplyHeader(
  buf: Uint8Array,
  structuredReplies: boolean,
  h: RequestHeader,
): void {
  if (!structuredReplies) {
    writeSimpleReply(buf, 0, 0, h.cookieHi, h.cookieLo);
    return;
  }
  writeStructuredReply(
    buf,
    0,
    C.REPLY_FLAG_DONE,
    C.REPLY_TYPE_OFFSET_DATA,
    h.cookieHi,
    h.cookieLo,
    8 + h.length,
  );
  putU32(buf, 20, Math.floor(h.offset / 4294967296));
  putU32(buf, 24, h.offset % 4294967296);
}

/** A complete error reply: a structured ERROR chunk with a message, or a simple reply. */
export function encodeErrorReply(
  structuredReplies: boolean,
  cookieHi: number,
  cookieLo: number,
  errno: number,
  message: string,
): Uint8Array {
  if (!structuredReplies) {
    const buf = new Uint8Array(C.SIMPLE_REPLY_HEADER_BYTES);
    writeSimpleReply(buf, 0, errno, cookieHi, cookieLo);
    return buf;
  }
  const text = new TextEncoder().encode(message).subarray(0, C.STRING_BYTES_MAX);
  const buf = new Uint8Array(C.STRUCTURED_REPLY_HEADER_BYTES + 6 + text.length);
  writeStructuredReply(
    buf,
    0,
    C.REPLY_FLAG_DONE,
    C.REPLY_TYPE_ERROR,
    cookieHi,
    cookieLo,
    6 + text.length,
  );
  putU32(buf, 20, errno);
  putU16(buf, 24, text.length);
  buf.set(text, 26);
  return buf;
}
