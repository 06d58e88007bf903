//! The NBD handshake as a pure push parser: bytes in, reply messages and an outcome out.
//!
//! Model: fixed newstyle only (oldstyle was dropped by the reference server in 3.10). The
//! server greets, reads the client flags, then answers options until the client picks an
//! export with EXPORT_NAME or GO, aborts, or breaks a MUST of the specification. Every option
//! the server does not implement gets NBD_REP_ERR_UNSUP and haggling continues; malformed
//! option data gets NBD_REP_ERR_INVALID. The connection is closed (a "hard disconnect") only
//! where the specification allows it: unknown client flags, a bad option magic, an
//! EXPORT_NAME for an export that does not exist, or option data so long that it can only be
//! a denial of service.

import { ByteQueue, ByteWriter, decodeString, utf8 } from "./bytes.js";
import * as C from "./constants.js";

/** What the server knows of one export during the handshake. */
export interface ExportInfo {
  /** The name clients ask for; "" is allowed and means the default export. */
  readonly name: string;
  /** Shown by `nbdinfo --list` and NBD_INFO_DESCRIPTION. */
  readonly description: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** TRIM punches holes: advertise NBD_FLAG_SEND_TRIM. */
  readonly canTrim: boolean;
  /** WRITE_ZEROES with FAST_ZERO can be honoured (zeroing is cheaper than writing). */
  readonly canFastZero: boolean;
}

/** The exports one server offers; `find("")` returns the default export, if any. */
export interface ExportCatalog {
  list(): readonly ExportInfo[];
  find(name: string): ExportInfo | undefined;
}

export type HandshakeOutcome =
  | { readonly kind: "continue" }
  | { readonly kind: "close"; readonly reason: string }
  | {
      readonly kind: "transmission";
      readonly export: ExportInfo;
      readonly transmissionFlags: number;
      readonly structuredReplies: boolean;
    };

export interface HandshakeStep {
  /** Messages to send, in order, before acting on the outcome. */
  readonly replies: Uint8Array[];
  readonly outcome: HandshakeOutcome;
}

const CONTINUE: HandshakeOutcome = { kind: "continue" };

/** The transmission flags for an export, given what was negotiated. */
export function transmissionFlagsFor(info: ExportInfo, structuredReplies: boolean): number {
  let flags = C.FLAG_HAS_FLAGS | C.FLAG_SEND_FLUSH | C.FLAG_SEND_FUA | C.FLAG_CAN_MULTI_CONN;
  if (info.readOnly) {
    flags |= C.FLAG_READ_ONLY;
  } else {
    flags |= C.FLAG_SEND_WRITE_ZEROES;
    if (info.canTrim) flags |= C.FLAG_SEND_TRIM;
    if (info.canFastZero) flags |= C.FLAG_SEND_FAST_ZERO;
  }
  // Reads always come back as one data chunk, so "do not fragment" is free to honour.
  if (structuredReplies) flags |= C.FLAG_SEND_DF;
  return flags;
}

export function optionReply(option: number, type: number, data?: Uint8Array): Uint8Array {
  const w = new ByteWriter(C.OPTION_HEADER_BYTES + 4 + (data?.length ?? 0));
  w.u64(C.OPTION_REPLY_MAGIC)
    .u32(option)
    .u32(type)
    .u32(data?.length ?? 0);
  if (data) w.bytes(data);
  return w.finish();
}

function errorReply(option: number, type: number, message: string): Uint8Array {
  return optionReply(option, type, utf8.encode(message));
}

export class Handshake {
  private readonly input = new ByteQueue();
  private phase: "clientFlags" | "options" | "done" = "clientFlags";
  private noZeroes = false;
  private structuredReplies = false;

  constructor(private readonly catalog: ExportCatalog) {}

  /** The server's opening message: NBDMAGIC, IHAVEOPT, handshake flags. */
  greeting(): Uint8Array {
    return new ByteWriter(18)
      .u64(C.NBDMAGIC)
      .u64(C.IHAVEOPT)
      .u16(C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)
      .finish();
  }

  /** Bytes the client sent after the handshake ended (pipelined requests). */
  leftover(): Uint8Array {
    return this.input.takeAll();
  }

  /** Feeds client bytes; returns what to send and whether the handshake is over. */
  push(chunk: Uint8Array): HandshakeStep {
    if (this.phase === "done")
      return { replies: [], outcome: { kind: "close", reason: "handshake already over" } };
    this.input.push(chunk);
    const replies: Uint8Array[] = [];
    for (;;) {
      const outcome =
        this.phase === "clientFlags" ? this.readClientFlags() : this.readOption(replies);
      if (outcome === undefined) return { replies, outcome: CONTINUE };
      if (outcome.kind !== "continue") {
        this.phase = "done";
        return { replies, outcome };
      }
    }
  }

  private readClientFlags(): HandshakeOutcome | undefined {
    if (this.input.length < 4) return undefined;
    const flags = this.input.u32(0);
    this.input.skip(4);
    if ((flags & ~(C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES)) !== 0) {
      return { kind: "close", reason: `client sent unknown flags 0x${flags.toString(16)}` };
    }
    this.noZeroes = (flags & C.FLAG_C_NO_ZEROES) !== 0;
    this.phase = "options";
    return CONTINUE;
  }

  /** One option, if it has fully arrived; undefined means "need more bytes". */
  private readOption(replies: Uint8Array[]): HandshakeOutcome | undefined {
    if (this.input.length < C.OPTION_HEADER_BYTES) return undefined;
    if (this.input.u64(0) !== C.IHAVEOPT) return { kind: "close", reason: "bad option magic" };
    const option = this.input.u32(8);
    const length = this.input.u32(12);
    if (length > C.OPTION_DATA_BYTES_MAX) {
      return { kind: "close", reason: `option ${option} carries ${length} bytes of data` };
    }
    if (this.input.length < C.OPTION_HEADER_BYTES + length) return undefined;
    this.input.skip(C.OPTION_HEADER_BYTES);
    const data = this.input.take(length);
    return this.answer(option, data, replies);
  }

  private answer(option: number, data: Uint8Array, replies: Uint8Array[]): HandshakeOutcome {
    switch (option) {
      case C.OPT_EXPORT_NAME:
        return this.exportName(data, replies);
      case C.OPT_ABORT:
        replies.push(optionReply(option, C.REP_ACK));
        return { kind: "close", reason: "client aborted the handshake" };
      case C.OPT_LIST:
        if (data.length !== 0) {
          replies.push(errorReply(option, C.REP_ERR_INVALID, "NBD_OPT_LIST takes no data"));
        } else {
          for (const e of this.catalog.list()) replies.push(this.serverReply(e));
          replies.push(optionReply(option, C.REP_ACK));
        }
        return CONTINUE;
      case C.OPT_STRUCTURED_REPLY:
        if (data.length !== 0) {
          replies.push(
            errorReply(option, C.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data"),
          );
        } else {
          this.structuredReplies = true;
          replies.push(optionReply(option, C.REP_ACK));
        }
        return CONTINUE;
      case C.OPT_INFO:
      case C.OPT_GO:
        return this.infoOrGo(option, data, replies);
      case C.OPT_STARTTLS:
        replies.push(errorReply(option, C.REP_ERR_POLICY, "this server does not offer TLS"));
        return CONTINUE;
      default:
        replies.push(errorReply(option, C.REP_ERR_UNSUP, `option ${option} is not supported`));
        return CONTINUE;
    }
  }

  private serverReply(e: ExportInfo): Uint8Array {
    const name = utf8.encode(e.name);
    const description = utf8.encode(e.description);
    const w = new ByteWriter(4 + name.length + description.length);
    w.u32(name.length).bytes(name).bytes(description);
    return optionReply(C.OPT_LIST, C.REP_SERVER, w.finish());
  }

  private exportName(data: Uint8Array, replies: Uint8Array[]): HandshakeOutcome {
    const name = decodeString(data);
    const info = name === undefined ? undefined : this.catalog.find(name);
    // EXPORT_NAME cannot carry an error: the specification demands a hard disconnect.
    if (!info) return { kind: "close", reason: `client asked for unknown export "${name ?? "?"}"` };
    const flags = transmissionFlagsFor(info, this.structuredReplies);
    const w = new ByteWriter(134).u64(info.sizeBytes).u16(flags);
    if (!this.noZeroes) w.zeroes(124);
    replies.push(w.finish());
    return {
      kind: "transmission",
      export: info,
      transmissionFlags: flags,
      structuredReplies: this.structuredReplies,
    };
  }

  private infoOrGo(option: number, data: Uint8Array, replies: Uint8Array[]): HandshakeOutcome {
    const request = parseInfoRequest(data);
    if (typeof request === "string") {
      replies.push(errorReply(option, C.REP_ERR_INVALID, request));
      return CONTINUE;
    }
    const info = this.catalog.find(request.name);
    if (!info) {
      replies.push(errorReply(option, C.REP_ERR_UNKNOWN, `no export named "${request.name}"`));
      return CONTINUE;
    }
    const flags = transmissionFlagsFor(info, this.structuredReplies);
    replies.push(
      optionReply(
        option,
        C.REP_INFO,
        new ByteWriter(12).u16(C.INFO_EXPORT).u64(info.sizeBytes).u16(flags).finish(),
      ),
    );
    // Block sizes are always sent: a client that did not ask still benefits from knowing.
    replies.push(
      optionReply(
        option,
        C.REP_INFO,
        new ByteWriter(14)
          .u16(C.INFO_BLOCK_SIZE)
          .u32(C.BLOCK_SIZE_MIN)
          .u32(C.BLOCK_SIZE_PREFERRED)
          .u32(C.PAYLOAD_BYTES_MAX)
          .finish(),
      ),
    );
    for (const type of request.infoTypes) {
      if (type === C.INFO_NAME) {
        replies.push(
          optionReply(
            option,
            C.REP_INFO,
            new ByteWriter().u16(type).bytes(utf8.encode(info.name)).finish(),
          ),
        );
      } else if (type === C.INFO_DESCRIPTION && info.description !== "") {
        replies.push(
          optionReply(
            option,
            C.REP_INFO,
            new ByteWriter().u16(type).bytes(utf8.encode(info.description)).finish(),
          ),
        );
      }
    }
    replies.push(optionReply(option, C.REP_ACK));
    if (option === C.OPT_INFO) return CONTINUE;
    return {
      kind: "transmission",
      export: info,
      transmissionFlags: flags,
      structuredReplies: this.structuredReplies,
    };
  }
}

interface InfoRequest {
  readonly name: string;
  readonly infoTypes: readonly number[];
}

/** Parses NBD_OPT_INFO/GO data; a string is the reason it is malformed. */
export function parseInfoRequest(data: Uint8Array): InfoRequest | string {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 6) return "option data too short for a name length and an info count";
  const nameLength = view.getUint32(0);
  if (nameLength > C.STRING_BYTES_MAX) return "export name longer than 4096 bytes";
  if (4 + nameLength + 2 > data.length) return "export name runs past the option data";
  const name = decodeString(data.subarray(4, 4 + nameLength));
  if (name === undefined) return "export name is not valid UTF-8";
  const count = view.getUint16(4 + nameLength);
  if (6 + nameLength + 2 * count !== data.length)
    return "information request count does not match the option length";
  const infoTypes: number[] = [];
  for (let i = 0; i < count; i++) infoTypes.push(view.getUint16(6 + nameLength + 2 * i));
  return { name, infoTypes };
}
