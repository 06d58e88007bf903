//! The peer protocol's message catalogue as data: for every message type, its code and the
//! fields of its payload in wire order. One table drives the encoder, the decoder, the fuzz
//! tests and docs/protocol.md, so they cannot drift apart. Field kinds:
//!   u8/u16/u32   unsigned big-endian integers
//!   u64          unsigned 64-bit; must be < 2^53 (a JavaScript safe integer)
//!   optU64       u8 presence (0/1) then a u64 when present
//!   i32          node bitmask, two's complement (bit 31 is node 31)
//!   bool         one byte, 0 or 1; anything else is a protocol error
//!   enum         one byte, an index into the listed names
//!   uuids        a UuidSet: u64 current, u8 n + n×u64 bitmap UUIDs, u8 m + m×u64 history
//!   u64list      u32 n + n×u64; `pairs` lists must have an even n
//!   optU64list   u8 presence (0/1) then a u64list when present
//!   blocks       u32 n + n bytes of block data; n > 0 and a multiple of 4096
//!   optBlocks    u8 presence (0/1) then blocks when present
//!   bytes32      exactly 32 bytes
//!   string       u16 n + n bytes of UTF-8 (n ≤ the field's bound)
//! Rule: a `blocks` field is always the last field, so encoders can send data by reference.

import type { DiskState, Role } from "../types.js";

export const roleNames: readonly Role[] = ["Primary", "Secondary", "Unknown"];
export const diskStateNames: readonly DiskState[] = [
  "Diskless",
  "Attaching",
  "Detaching",
  "Failed",
  "Negotiating",
  "Inconsistent",
  "Outdated",
  "DUnknown",
  "Consistent",
  "UpToDate",
];
export const ackModeNames: readonly string[] = ["none", "recv", "write"];

export type FieldKind =
  | {
      readonly kind:
        "u8" | "u16" | "u32" | "u64" | "optU64" | "i32" | "optI32" | "bool" | "bytes32" | "uuids";
    }
  | { readonly kind: "enum"; readonly names: readonly string[] }
  | { readonly kind: "u64list" | "optU64list"; readonly pairs?: boolean }
  | { readonly kind: "blocks" | "optBlocks" }
  | { readonly kind: "string"; readonly maxBytes: number };

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldKind;
  readonly doc: string;
}

export interface MessageSpec {
  readonly code: number;
  readonly name: string;
  readonly phase: "handshake" | "replication";
  readonly doc: string;
  readonly fields: readonly FieldSpec[];
}

const u8 = { kind: "u8" } as const;
const u16 = { kind: "u16" } as const;
const u32 = { kind: "u32" } as const;
const u64 = { kind: "u64" } as const;
const i32 = { kind: "i32" } as const;
const bool = { kind: "bool" } as const;
const uuids = { kind: "uuids" } as const;
const blocks = { kind: "blocks" } as const;
const optBlocks = { kind: "optBlocks" } as const;
const bytes32 = { kind: "bytes32" } as const;

function f(name: string, type: FieldKind, doc: string): FieldSpec {
  return { name, type, doc };
}

const seqField = f("seq", u64, "sequence number of the data message acknowledged");
const blockField = f("block", u64, "first block (4 KiB units)");
const blockCountField = f("blockCount", u64, "number of blocks");

/** Resource names are at most this many bytes of UTF-8. */
export const resourceNameBytesMax = 255;
/** A reject reason is at most this many bytes of UTF-8. */
export const reasonBytesMax = 1024;

export const messageSpecs: readonly MessageSpec[] = [
  {
    code: 0x01,
    name: "hello",
    phase: "handshake",
    doc: "First frame each side sends on a new connection.",
    fields: [
      f("protocolMin", u16, "lowest protocol version the sender speaks"),
      f("protocolMax", u16, "highest protocol version the sender speaks"),
      f("nodeId", u8, "the sender's node id, 0..31"),
      f("peerNodeId", u8, "the node id the sender expects at the other end, 0..31"),
      f("featureFlags", u32, "features the sender supports (bit values in this document)"),
      f("resourceName", { kind: "string", maxBytes: resourceNameBytesMax }, "resource name"),
    ],
  },
  {
    code: 0x02,
    name: "authChallenge",
    phase: "handshake",
    doc: "A fresh random challenge the receiver must answer with authResponse.",
    fields: [f("challenge", bytes32, "32 random bytes, never reused")],
  },
  {
    code: 0x03,
    name: "authResponse",
    phase: "handshake",
    doc: "HMAC-SHA256 over the auth message built from the peer's challenge.",
    fields: [f("mac", bytes32, "HMAC-SHA256(secret, auth message)")],
  },
  {
    code: 0x04,
    name: "reject",
    phase: "handshake",
    doc: "The sender refuses the connection and closes it after this frame.",
    fields: [
      f("reason", u16, "reason code (table in this document)"),
      f("message", { kind: "string", maxBytes: reasonBytesMax }, "text for the operator's log"),
    ],
  },
  {
    code: 0x10,
    name: "state",
    phase: "replication",
    doc: "First replication message on a connection, and again when role, disk or UUIDs change.",
    fields: [
      f("role", { kind: "enum", names: roleNames }, "sender's role"),
      f("disk", { kind: "enum", names: diskStateNames }, "sender's disk state"),
      f("crashedPrimary", bool, "sender crashed as Primary and has not resynced since"),
      f("discardMyData", bool, "operator asked the sender to discard its data"),
      f("reply", bool, "this is a reply; do not answer it"),
      f("bitsForYou", u64, "bits set in the sender's bitmap for the receiver"),
      f("promotionSeq", u64, "times the sender was promoted"),
      f("connectedMask", i32, "nodes the sender is connected to, bit per node id"),
      f("uuids", uuids, "sender's generation identifiers"),
      f(
        "syncTowardUuid",
        { kind: "optU64" },
        "while Inconsistent: the generation an interrupted resync was bringing it to",
      ),
      f(
        "handshakeId",
        { kind: "optU64" },
        "renegotiation: a request's new id, echoed by its answer; absent otherwise",
      ),
      f(
        "judged",
        { kind: "optU64" },
        "the handshakeId of the receiver's last request the sender has judged, 0: none",
      ),
      f(
        "streamId",
        { kind: "optU64" },
        "the write stream the sender last followed (a Primary: its own), 0: none",
      ),
      f("streamSeq", { kind: "optU64" }, "the highest write sequence received from that stream"),
      f(
        "syncBaseUuid",
        { kind: "optU64" },
        "while Inconsistent under a bitmap resync: the generation its data holds outside the bitmaps, 0: unknown",
      ),
    ],
  },
  {
    code: 0x11,
    name: "data",
    phase: "replication",
    doc: "A replicated application write.",
    fields: [
      f("seq", u64, "sequence number, echoed by the acks"),
      f("epoch", u64, "write epoch (closed by a barrier)"),
      f("firstBlock", u64, "first block written"),
      f("ack", { kind: "enum", names: ackModeNames }, "ack wanted: none (A), recv (B), write (C)"),
      f(
        "targets",
        { kind: "optI32" },
        "nodes this write is sent to, sender included, bit per node id",
      ),
      f("data", blocks, "the blocks"),
    ],
  },
  { code: 0x12, name: "recvAck", phase: "replication", doc: "Protocol B ack.", fields: [seqField] },
  {
    code: 0x13,
    name: "writeAck",
    phase: "replication",
    doc: "Protocol C ack.",
    fields: [seqField],
  },
  {
    code: 0x14,
    name: "negAck",
    phase: "replication",
    doc: "The peer failed to write.",
    fields: [seqField],
  },
  {
    code: 0x15,
    name: "barrier",
    phase: "replication",
    doc: "Closes an epoch: once its writes are durable the receiver flushes and acks.",
    fields: [f("epoch", u64, "epoch closed")],
  },
  {
    code: 0x16,
    name: "barrierAck",
    phase: "replication",
    doc: "Every write of the epoch is on stable storage.",
    fields: [f("epoch", u64, "epoch acknowledged")],
  },
  {
    code: 0x17,
    name: "readRequest",
    phase: "replication",
    doc: "A diskless or remote-reading node asks for blocks.",
    fields: [
      f("id", u64, "request id, echoed in readReply"),
      f("firstBlock", u64, "first block"),
      f("blockCount", u64, "number of blocks"),
    ],
  },
  {
    code: 0x18,
    name: "readReply",
    phase: "replication",
    doc: "Answer to readRequest; data present when ok.",
    fields: [
      f("id", u64, "request id"),
      f("ok", bool, "the read succeeded"),
      f("data", optBlocks, "the blocks read"),
    ],
  },
  {
    code: 0x19,
    name: "promoteRequest",
    phase: "replication",
    doc: "Two-phase promotion: may the sender become Primary?",
    fields: [f("id", u64, "request id")],
  },
  {
    code: 0x1a,
    name: "promoteReply",
    phase: "replication",
    doc: "Answer to promoteRequest.",
    fields: [f("id", u64, "request id"), f("granted", bool, "promotion allowed")],
  },
  {
    code: 0x1b,
    name: "bitmap",
    phase: "replication",
    doc: "Bitmap exchange at resync start, as (first block, block count) pairs.",
    fields: [
      f("last", bool, "last bitmap message of this exchange"),
      f("ranges", { kind: "u64list", pairs: true }, "out-of-sync ranges"),
      f("covered", { kind: "optU64list", pairs: true }, "ranges received from another source"),
      f("coveredStreamId", { kind: "optU64" }, "write stream that source had followed, 0: none"),
      f("coveredStreamSeq", { kind: "optU64" }, "how far that source had received that stream"),
    ],
  },
  {
    code: 0x1c,
    name: "syncStart",
    phase: "replication",
    doc: "The source starts a resync (full or bitmap-based).",
    fields: [f("full", bool, "full sync"), f("uuids", uuids, "source's generation identifiers")],
  },
  {
    code: 0x1d,
    name: "resyncRequest",
    phase: "replication",
    doc: "Target asks for blocks.",
    fields: [blockField, blockCountField],
  },
  {
    code: 0x1e,
    name: "checksumRequest",
    phase: "replication",
    doc: "Target asks for blocks unless their digest matches.",
    fields: [blockField, blockCountField, f("digest", u32, "CRC32C of the target's blocks")],
  },
  {
    code: 0x1f,
    name: "resyncReply",
    phase: "replication",
    doc: "Source sends resync blocks; data present when ok.",
    fields: [
      blockField,
      f("ok", bool, "the read succeeded"),
      f(
        "streamId",
        { kind: "optU64" },
        "the write stream the source followed when it queued the read (a Primary: its own), 0: none",
      ),
      f(
        "streamSeq",
        { kind: "optU64" },
        "every write of that stream up to this sequence that the source received is in the data",
      ),
      f("data", optBlocks, "blocks"),
    ],
  },
  {
    code: 0x20,
    name: "inSync",
    phase: "replication",
    doc: "Digests matched, nothing to transfer.",
    fields: [blockField, blockCountField],
  },
  {
    code: 0x21,
    name: "resyncAck",
    phase: "replication",
    doc: "Target wrote (or holds) the blocks; the source clears its bits.",
    fields: [blockField, blockCountField],
  },
  { code: 0x22, name: "resyncDone", phase: "replication", doc: "Resync finished.", fields: [] },
  {
    code: 0x23,
    name: "verifyRequest",
    phase: "replication",
    doc: "Online verify: digest these blocks.",
    fields: [blockField, blockCountField],
  },
  {
    code: 0x24,
    name: "verifyReply",
    phase: "replication",
    doc: "Online verify answer.",
    fields: [
      blockField,
      blockCountField,
      f("ok", bool, "the read succeeded"),
      f("digest", u32, "CRC32C of the blocks"),
    ],
  },
  { code: 0x25, name: "verifyDone", phase: "replication", doc: "Verify finished.", fields: [] },
  {
    code: 0x26,
    name: "peerAck",
    phase: "replication",
    doc: "After a write finished on the Primary: which nodes hold it.",
    fields: [
      f("firstBlock", u64, "first block"),
      f("blockCount", u64, "number of blocks"),
      f("mask", i32, "nodes holding the write, bit per node id"),
    ],
  },
  {
    code: 0x27,
    name: "ping",
    phase: "replication",
    doc: "Keepalive, or (seq > 0) the confirmation round after a state message.",
    fields: [
      f(
        "seq",
        { kind: "u32" },
        "0: a keepalive; else the sender's confirmation round, echoed by the pingAck",
      ),
    ],
  },
  {
    code: 0x28,
    name: "pingAck",
    phase: "replication",
    doc: "Ping answer, sent once every earlier message was processed.",
    fields: [f("seq", { kind: "u32" }, "the seq of the ping it answers")],
  },
  {
    code: 0x29,
    name: "resizeRequest",
    phase: "replication",
    doc: "Online resize, phase 1 (feature online-resize): how many blocks can your disk hold?",
    fields: [
      f("id", u32, "resize round, echoed in the reply"),
      f("sizeBlocks", u64, "size the operator asked for, in blocks; 0: as large as possible"),
    ],
  },
  {
    code: 0x2a,
    name: "resizeReply",
    phase: "replication",
    doc: "Answer to resizeRequest.",
    fields: [
      f("id", u32, "resize round"),
      f("capacityBlocks", u64, "blocks the backing device can hold; 0: diskless, no limit"),
    ],
  },
  {
    code: 0x2b,
    name: "resize",
    phase: "replication",
    doc: "Online resize, phase 2: grow to this size; the sender is the sync source of the new blocks.",
    fields: [
      f("id", u32, "resize round"),
      f("sizeBlocks", u64, "new size in blocks"),
      f("assumeClean", bool, "the new blocks are identical everywhere: do not resync them"),
    ],
  },
  {
    code: 0x2c,
    name: "resizeAck",
    phase: "replication",
    doc: "The receiver grew (its metadata is durable) or could not.",
    fields: [f("id", u32, "resize round"), f("ok", bool, "the receiver grew")],
  },
];

export const specByCode: ReadonlyMap<number, MessageSpec> = new Map(
  messageSpecs.map((s) => [s.code, s]),
);
export const specByName: ReadonlyMap<string, MessageSpec> = new Map(
  messageSpecs.map((s) => [s.name, s]),
);
