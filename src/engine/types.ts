//! The replication core's public vocabulary: configuration, input events, output effects,
//! peer messages, persisted metadata and the inspection view that the simulator's checkers
//! read. Everything here is plain data so that the simulator, the real I/O shell and the unit
//! tests drive the same `Replica` (see replica.ts) without knowing its insides.
//!
//! Model: one `Replica` per (resource, node). The caller feeds it `Event`s through
//! `replica.step(event)` and executes the `Effect`s it returns, in order. The returned array
//! is reused by the next `step` call: copy it if you need it longer.
//!
//! Contract with the caller (simulator or shell):
//! - Messages between two nodes travel on a connection that is reliable and ordered while it
//!   lasts (TCP). A lost, duplicated or reordered packet must be modelled as the connection
//!   breaking: deliver `peerDisconnected` (to each side, possibly at different times) and
//!   never deliver a message of an old connection after a new `peerConnected`.
//! - A link comes up only while both sides asked for it (`connectPeer` effect, undone by
//!   `disconnectPeer`) and the network allows it; then deliver `peerConnected` to both.
//! - Metadata writes are durable in the order issued: when one completes, every earlier one
//!   is durable. On a crash, a suffix of the pending metadata writes may be lost; each record
//!   is atomic (checksummed slot), never torn.
//! - Data writes (`diskWrite`) may sit in a volatile cache until a `diskFlush` completes.
//!
//! CHANGES (names here are kept stable, additions are appended):
//! - `Replica.view(): ReplicaView` returns the replica itself (live, no copies); the Replica
//!   also implements ReplicaView directly. `peer(id).bitmap` is the live bitmap.
//! - Call `step({ type: "start" })` once after `createReplica` (fresh or restored); any other
//!   event before it is an assertion failure.
//! - `Replica.writesInFlight` (number) for tests and status.
//! - `bitmap` message: optional `covered` ranges (additive); optional `coveredStreamId`,
//!   `coveredStreamSeq` (the covering source's write stream position).
//! - new message `peerAck` (additive); `state.syncTowardUuid`, `data.targets` optional.
//! - `state.handshakeId` optional (renegotiation request/answer pairing).
//! - `state.streamId`, `state.streamSeq` optional (reconciliation after a lost Primary).
//! - `state.judged` optional: which of the receiver's requests the sender has judged.
//! - `ReplicaView.nextUuid`: the generation a pending superblock write makes current.
//! - `PeerView.awaitsPeerAck(block)`: a received write on the block still awaits its peer ack.
//! - `state.syncBaseUuid` optional (a SyncTarget's generation outside its bitmaps).
//! - `resyncReply.streamId`, `resyncReply.streamSeq` optional (the source's stream position).
//! - `AdminCommand` `down`: clean detach that leaves an empty activity log (additive).

/** A node's id inside a resource: 0..31, as in DRBD. */
export type NodeId = number;
export const nodeIdMax = 31;

/** Bytes per bitmap bit and per block the engine reasons about. Requests must be aligned. */
export const blockSizeBytes = 4096;
/** Blocks per activity-log extent in production (4 MiB extents). */
export const alExtentBlocksDefault = 1024;

export type Protocol = "A" | "B" | "C";
export type Role = "Primary" | "Secondary" | "Unknown";
export type DiskState =
  | "Diskless"
  | "Attaching"
  | "Detaching"
  | "Failed"
  | "Negotiating"
  | "Inconsistent"
  | "Outdated"
  | "DUnknown"
  | "Consistent"
  | "UpToDate";
export type ConnectionState =
  | "StandAlone"
  | "Disconnecting"
  | "Unconnected"
  | "Timeout"
  | "BrokenPipe"
  | "NetworkFailure"
  | "ProtocolError"
  | "TearDown"
  | "Connecting"
  | "Connected";
export type ReplicationState =
  | "Off"
  | "Established"
  | "StartingSyncS"
  | "StartingSyncT"
  | "WFBitMapS"
  | "WFBitMapT"
  | "WFSyncUUID"
  | "SyncSource"
  | "SyncTarget"
  | "VerifyS"
  | "VerifyT"
  | "PausedSyncS"
  | "PausedSyncT"
  | "Ahead"
  | "Behind";

export type QuorumSetting = "off" | "majority" | "all" | number;
export type OnNoQuorum = "io-error" | "suspend-io";
export type ReadBalancing =
  "prefer-local" | "prefer-remote" | "round-robin" | "least-pending" | "when-congested-remote";
/** `discard-node-<name>` is written as `{ discardNode: name }`. */
export type AfterSb0pri =
  | "disconnect"
  | "discard-younger-primary"
  | "discard-older-primary"
  | "discard-zero-changes"
  | "discard-least-changes"
  | { discardNode: string };
export type AfterSb1pri =
  "disconnect" | "consensus" | "discard-secondary" | "call-pri-lost-after-sb";
export type AfterSb2pri = "disconnect" | "call-pri-lost-after-sb";

export interface NodeConfig {
  /** Node id 0..31, unique in the resource. */
  readonly id: NodeId;
  /** Host name; used by `discard-node-NAME` and in traces. */
  readonly name: string;
  /** A diskless node reads and writes through its UpToDate peers and is a quorum tiebreaker. */
  readonly disk: "diskful" | "diskless";
}

/**
 * Resource options, named after drbd.conf in camelCase. Time options are in ticks (the caller
 * decides what a tick is; DRBD's defaults assume 1 tick = 0.1 s). All fields are optional in
 * `ResourceConfig.options`; `resolveOptions` (config.ts) fills the defaults given here.
 */
export interface ResourceOptions {
  /** @default false */
  readonly allowTwoPrimaries: boolean;
  /** Opening for write promotes, closing demotes. @default true */
  readonly autoPromote: boolean;
  /** @default "off" */
  readonly quorum: QuorumSetting;
  /** @default "suspend-io" */
  readonly onNoQuorum: OnNoQuorum;
  /** @default "prefer-local" */
  readonly readBalancing: ReadBalancing;
  /** @default "disconnect" */
  readonly afterSb0pri: AfterSb0pri;
  /** @default "disconnect" */
  readonly afterSb1pri: AfterSb1pri;
  /** @default "disconnect" */
  readonly afterSb2pri: AfterSb2pri;
  /** Activity-log size in extents; bound 7..65534. @default 1237 */
  readonly alExtents: number;
  /** Blocks per AL extent. Production keeps 1024 (4 MiB); tests shrink it. @default 1024 */
  readonly alExtentBlocks: number;
  /** Ticks of silence on a connection before we send a ping. @default 100 (10 s) */
  readonly pingIntTicks: number;
  /** Ticks to wait for a ping ack before declaring the peer lost. @default 5 (0.5 s) */
  readonly pingTimeoutTicks: number;
  /** Ticks a peer may take to answer a request; see koCount. @default 60 (6 s) */
  readonly timeoutTicks: number;
  /** A peer whose oldest write is unanswered for koCount × timeoutTicks is dropped.
   *  0 disables. @default 7 */
  readonly koCount: number;
  /** Writes per epoch before a barrier closes it. @default 2048 */
  readonly maxEpochSize: number;
  /** Resync data in flight per peer, in 4 KiB pages (DRBD max-buffers). @default 2048 */
  readonly maxBuffers: number;
  /**
   * Blocks per resync request at most, when the rate budget allows (DRBD sends resync
   * requests up to its 1 MiB BIO size; the daemon uses 256). A request is never cut below
   * 8 blocks by the budget. @default 8 (keeps the simulator's small volumes interleaved)
   */
  readonly resyncRequestBlocks: number;
  /** Milliseconds per tick, used to turn KiB/s rates into blocks per tick. @default 100 */
  readonly tickMs: number;
  /** Resync controller plan-ahead, in ticks; 0 selects fixed rate (resyncRate). @default 20 */
  readonly cPlanAheadTicks: number;
  /** Resync data to keep in flight, in 512-byte sectors. @default 100 */
  readonly cFillTargetSectors: number;
  /** Resync rate kept even under application IO, KiB/s. @default 250 */
  readonly cMinRateKiBps: number;
  /** Resync rate ceiling, KiB/s; 0 = unlimited. @default 102400 */
  readonly cMaxRateKiBps: number;
  /** Fixed resync rate when cPlanAheadTicks is 0, KiB/s. @default 250 */
  readonly resyncRateKiBps: number;
  /** Checksum-based resync (the digest is CRC32C in the engine). @default false */
  readonly csumsAlg: boolean;
  /** Online verify allowed (a digest algorithm is set). @default false */
  readonly verifyAlg: boolean;
}

/**
 * Knobs that break one rule on purpose, so that the simulator can prove its checkers catch
 * the violation. Never set in production.
 */
export interface FaultInjection {
  /** Complete a write once the local disk is done, without waiting for peer acks. */
  readonly completeBeforePeerAck?: boolean;
  /** Issue data writes to extents that are not in the persisted activity log. */
  readonly skipActivityLog?: boolean;
  /** Do not mark blocks out of sync for peers that did not receive a write. */
  readonly skipBitmapMarking?: boolean;
  /** Complete flushes without waiting for peers' barrier acks. */
  readonly flushWithoutBarrier?: boolean;
  /** Let promotion ignore a connected Primary peer and quorum. */
  readonly ignoreSinglePrimary?: boolean;
  /** Treat a detected split brain as "no resync needed" (silently keep both). */
  readonly mergeSplitBrain?: boolean;
}

export interface ResourceConfig {
  readonly name: string;
  /** 2..32 nodes, ids unique. */
  readonly nodes: readonly NodeConfig[];
  /** Volume size in 4 KiB blocks. */
  readonly sizeBlocks: number;
  /** @default "C" */
  readonly protocol?: Protocol;
  readonly options?: Partial<ResourceOptions>;
  readonly faultInjection?: FaultInjection;
}

// ----------------------------------------------------------------------------------------
// Input events.

export type IoErrorCode = "EIO" | "EINVAL" | "ENOSPC" | "EPERM" | "ESHUTDOWN" | "EAGAIN";

export type AdminCommand =
  /** Promote. `force` promotes even without UpToDate data or quorum (drbdadm primary --force). */
  | { readonly type: "primary"; readonly force?: boolean }
  | { readonly type: "secondary" }
  /** Start connecting to one peer or (peer omitted) to all. Leaves StandAlone. */
  | { readonly type: "connect"; readonly peer?: NodeId; readonly discardMyData?: boolean }
  /** Go StandAlone towards one peer or all. */
  | { readonly type: "disconnect"; readonly peer?: NodeId }
  /** Mark the whole local disk out of date: full resync from a peer (drbdadm invalidate). */
  | { readonly type: "invalidate" }
  /** Start online verify against a peer (this node is VerifyS). */
  | { readonly type: "verify"; readonly peer: NodeId }
  /**
   * Clean detach (drbdadm down on a Secondary): go StandAlone, let local IO drain, flush,
   * and log an empty activity log, so the next start resyncs nothing for our hot extents.
   * Completes once that is durable; refused on a Primary.
   */
  | { readonly type: "down" }
  /** Auto-promote hooks: an export was opened for writing / the last writer closed it. */
  | { readonly type: "open" }
  | { readonly type: "close" }
  /**
   * Online grow (drbdadm resize), run on the Primary or, with none, on any diskful node:
   * the size becomes the smallest backing capacity of this node and its diskful peers
   * (every one must be connected), or `sizeBlocks` when given (refused if a disk cannot
   * hold it; shrinking is refused). Unless `assumeClean`, the new blocks are resynced from
   * this node. See src/engine/resize.ts.
   */
  | { readonly type: "resize"; readonly sizeBlocks?: number; readonly assumeClean?: boolean };

export type Event =
  /** Start the replica once after createReplica: attach metadata, connect to all peers. */
  | { readonly type: "start" }
  | {
      readonly type: "clientRead";
      readonly requestId: number;
      readonly offsetBytes: number;
      readonly lengthBytes: number;
    }
  | {
      readonly type: "clientWrite";
      readonly requestId: number;
      readonly offsetBytes: number;
      /** Length is a multiple of 4 KiB. The engine keeps a reference until completion. */
      readonly data: Uint8Array;
      /** Force unit access: complete only once durable on every connected replica. */
      readonly fua: boolean;
    }
  | { readonly type: "clientFlush"; readonly requestId: number }
  | { readonly type: "peerConnected"; readonly peer: NodeId }
  | { readonly type: "peerDisconnected"; readonly peer: NodeId }
  | { readonly type: "peerMessage"; readonly from: NodeId; readonly message: PeerMessage }
  /** Completion of a diskRead, diskWrite or diskFlush effect. `data` for reads. */
  | {
      readonly type: "diskCompleted";
      readonly ioId: number;
      readonly ok: boolean;
      readonly error?: IoErrorCode;
      readonly data?: Uint8Array;
    }
  /** Completion of a metadataWrite effect. */
  | { readonly type: "metadataCompleted"; readonly ioId: number; readonly ok: boolean }
  | { readonly type: "tick" }
  | { readonly type: "admin"; readonly commandId: number; readonly command: AdminCommand }
  /**
   * The local backing device can hold this many blocks of data now (with its metadata).
   * The shell sends it before a resize is decided (`resize` command, `resizeRequest`).
   */
  | { readonly type: "backingCapacity"; readonly sizeBlocks: number };

// ----------------------------------------------------------------------------------------
// Effects.

export type Effect =
  | {
      readonly type: "diskRead";
      readonly ioId: number;
      readonly offsetBytes: number;
      readonly lengthBytes: number;
    }
  | {
      readonly type: "diskWrite";
      readonly ioId: number;
      readonly offsetBytes: number;
      readonly data: Uint8Array;
      /** Resync data: nothing reads it back soon, so the shell may write around its cache. */
      readonly bulk?: true;
    }
  | { readonly type: "diskFlush"; readonly ioId: number }
  | { readonly type: "metadataWrite"; readonly ioId: number; readonly record: MetadataRecord }
  | { readonly type: "send"; readonly to: NodeId; readonly message: PeerMessage }
  /** Ask the shell to establish (and keep re-establishing) the link to `peer`. */
  | { readonly type: "connectPeer"; readonly peer: NodeId }
  /** Ask the shell to tear the link down; with reconnect=false stop trying too. */
  | { readonly type: "disconnectPeer"; readonly peer: NodeId; readonly reconnect: boolean }
  | {
      readonly type: "completeRequest";
      readonly requestId: number;
      readonly ok: boolean;
      readonly error?: IoErrorCode;
      /** Read data (clientRead only). */
      readonly data?: Uint8Array;
    }
  | {
      readonly type: "adminCompleted";
      readonly commandId: number;
      readonly ok: boolean;
      /** DRBD's error string, e.g. "No quorum", "Multiple primaries not allowed by config". */
      readonly error?: string;
    }
  | { readonly type: "stateChanged"; readonly change: StateChange }
  /**
   * The engine holds no reference to `data` (block data of a message it received) any more,
   * and never will: the shell may reuse the buffer it was received into. Emitted for resync
   * replies once all their writes completed; data the engine drops otherwise is not
   * announced (the shell leaves such buffers to the garbage collector).
   */
  | { readonly type: "dataDone"; readonly data: Uint8Array };

export type StateChange =
  | { readonly kind: "role"; readonly role: Role }
  | { readonly kind: "disk"; readonly disk: DiskState }
  | { readonly kind: "connection"; readonly peer: NodeId; readonly connection: ConnectionState }
  | {
      readonly kind: "replication";
      readonly peer: NodeId;
      readonly replication: ReplicationState;
    }
  | { readonly kind: "peerDisk"; readonly peer: NodeId; readonly disk: DiskState }
  | { readonly kind: "quorum"; readonly quorum: boolean }
  | { readonly kind: "suspended"; readonly suspended: boolean }
  /** A split brain was detected with `peer`; `resolution` says what the policy did. */
  | {
      readonly kind: "splitBrain";
      readonly peer: NodeId;
      readonly resolution: "disconnect" | "victim" | "survivor";
    }
  | { readonly kind: "unrelatedData"; readonly peer: NodeId }
  | { readonly kind: "verifyDone"; readonly peer: NodeId; readonly outOfSyncBlocks: number }
  | { readonly kind: "resyncDone"; readonly peer: NodeId; readonly source: boolean }
  /** The volume grew to `sizeBlocks` (online resize). */
  | { readonly kind: "resized"; readonly sizeBlocks: number };

// ----------------------------------------------------------------------------------------
// Metadata: what the metadata device persists.

/** Generation identifiers and flags: the superblock part of DRBD's metadata. */
export interface SuperblockRecord {
  /** Current data generation. Never 0 once created. */
  readonly currentUuid: number;
  /** Per node id: the generation at which we started tracking that peer's bitmap; 0 = none. */
  readonly bitmapUuids: readonly number[];
  /** Older current UUIDs, newest first, bounded (historyUuidsMax). */
  readonly historyUuids: readonly number[];
  /** Counter used to mint unique UUIDs (uuid = counter × 32 + nodeId). Never decreases. */
  readonly uuidCounter: number;
  /** The local data is consistent (not mid-resync as a target). */
  readonly consistent: boolean;
  /** The local data was UpToDate when last known (else Outdated/Inconsistent). */
  readonly wasUpToDate: boolean;
  /** Set while Primary; if found set at start the node crashed as Primary. */
  readonly primary: boolean;
  /** Crashed as primary and not yet resynced since. */
  readonly crashedPrimary: boolean;
}

export type MetadataRecord =
  | { readonly kind: "superblock"; readonly superblock: SuperblockRecord }
  /** An activity-log transaction: the full set of hot extents after it, with its sequence. */
  | {
      readonly kind: "activityLog";
      readonly transactionSeq: number;
      readonly extents: readonly number[];
    }
  /** Set (or clear) bits [firstBlock, firstBlock + blockCount) of the bitmap for `peer`. */
  | {
      readonly kind: "bitmap";
      readonly peer: NodeId;
      readonly firstBlock: number;
      readonly blockCount: number;
      readonly value: boolean;
    }
  /**
   * Online grow: the volume now has `sizeBlocks` blocks. The shell moves the metadata area
   * (crash-safe, src/engine/ondisk/relocate.ts) and grows every bitmap with clear bits.
   */
  | { readonly kind: "resize"; readonly sizeBlocks: number };

/** What survived on the metadata device; build it with meta.ts helpers. */
export interface PersistedMeta {
  superblock: SuperblockRecord;
  /** Last persisted AL transaction. */
  alTransactionSeq: number;
  alExtents: number[];
  /** Per node id (own slot unused): one bit per block, little-endian bit order. */
  bitmaps: Uint8Array[];
}

// ----------------------------------------------------------------------------------------
// Peer messages (the replication protocol). Offsets and counts are in blocks.

export interface UuidSet {
  readonly currentUuid: number;
  readonly bitmapUuids: readonly number[];
  readonly historyUuids: readonly number[];
}

export type PeerMessage =
  /** First message on a new connection, and again whenever role/disk/UUIDs change. */
  | {
      readonly type: "state";
      readonly role: Role;
      readonly disk: DiskState;
      readonly uuids: UuidSet;
      readonly crashedPrimary: boolean;
      /** Number of bits set in the sender's bitmap for the receiver. */
      readonly bitsForYou: number;
      /** Operator asked the sender to discard its data on this connection. */
      readonly discardMyData: boolean;
      /** Number of times the sender was promoted (split-brain age heuristics). */
      readonly promotionSeq: number;
      /** Replies to a state message do not ask for another reply. */
      readonly reply: boolean;
      /** Nodes the sender is connected to right now (bitmask by node id); quorum info. */
      readonly connectedMask: number;
      /** While Inconsistent: the generation an interrupted resync was bringing it to. */
      readonly syncTowardUuid?: number;
      /**
       * While Inconsistent under a bitmap resync: the generation its data holds outside the
       * bitmaps (0 or absent: unknown, e.g. a full sync).
       */
      readonly syncBaseUuid?: number;
      /**
       * Renegotiation on a live link: a request (reply=false) carries a new id, its answer
       * (reply=true) echoes it; other state messages carry none (0 or absent).
       */
      readonly handshakeId?: number;
      /** The handshakeId of the receiver's last request the sender has judged (0: none). */
      readonly judged?: number;
      /** The write stream the sender last followed (a Primary: its own); 0 or absent: none. */
      readonly streamId?: number;
      /** The highest write sequence number the sender received from that stream. */
      readonly streamSeq?: number;
    }
  /** Replicated application write. `ack` says what the primary waits for. */
  | {
      readonly type: "data";
      readonly seq: number;
      readonly epoch: number;
      readonly firstBlock: number;
      readonly data: Uint8Array;
      readonly ack: "none" | "recv" | "write";
      /** Nodes this write is sent to, sender included (bit per node id). */
      readonly targets?: number;
    }
  /** P_RECV_ACK (protocol B). */
  | { readonly type: "recvAck"; readonly seq: number }
  /** P_WRITE_ACK (protocol C). */
  | { readonly type: "writeAck"; readonly seq: number }
  /** P_NEG_ACK: the peer failed to write. */
  | { readonly type: "negAck"; readonly seq: number }
  /** Closes `epoch`: once all its writes are durable, the peer flushes and acks. */
  | { readonly type: "barrier"; readonly epoch: number }
  | { readonly type: "barrierAck"; readonly epoch: number }
  | {
      readonly type: "readRequest";
      readonly id: number;
      readonly firstBlock: number;
      readonly blockCount: number;
    }
  | {
      readonly type: "readReply";
      readonly id: number;
      readonly ok: boolean;
      readonly data?: Uint8Array;
    }
  /** Promotion two-phase commit: "may I become Primary?" */
  | { readonly type: "promoteRequest"; readonly id: number }
  | { readonly type: "promoteReply"; readonly id: number; readonly granted: boolean }
  /** Bitmap exchange at resync start: the target's bits for the source, as ranges. */
  | {
      readonly type: "bitmap";
      readonly ranges: readonly number[];
      readonly last: boolean;
      /** Blocks the target already received from another source in this round (ranges). */
      readonly covered?: readonly number[];
      /** Where in which write stream the source of `covered` was (0 or absent: unknown). */
      readonly coveredStreamId?: number;
      readonly coveredStreamSeq?: number;
    }
  /** The source tells the target a resync starts (full or bitmap) with the source's UUIDs. */
  | { readonly type: "syncStart"; readonly uuids: UuidSet; readonly full: boolean }
  | { readonly type: "resyncRequest"; readonly block: number; readonly blockCount: number }
  | {
      readonly type: "checksumRequest";
      readonly block: number;
      readonly blockCount: number;
      readonly digest: number;
    }
  | {
      readonly type: "resyncReply";
      readonly block: number;
      readonly ok: boolean;
      /**
       * The source's write stream position when it queued the read: the data holds every
       * write of stream `streamId` up to `streamSeq` that the source received (absent or 0:
       * unknown). The target skips blocks it got a later write of that stream for.
       */
      readonly streamId?: number;
      readonly streamSeq?: number;
      readonly data?: Uint8Array;
    }
  /** P_RS_IS_IN_SYNC: the checksums matched, nothing to transfer. */
  | { readonly type: "inSync"; readonly block: number; readonly blockCount: number }
  /** Target wrote a resync block (or knows it in sync): the source clears its bit. */
  | { readonly type: "resyncAck"; readonly block: number; readonly blockCount: number }
  | { readonly type: "resyncDone" }
  | { readonly type: "verifyRequest"; readonly block: number; readonly blockCount: number }
  | {
      readonly type: "verifyReply";
      readonly block: number;
      readonly blockCount: number;
      readonly ok: boolean;
      readonly digest: number;
    }
  | { readonly type: "verifyDone" }
  /**
   * P_PEER_ACK: after a write finished on the Primary, the nodes that hold it (bit per node
   * id). Receivers mark the range out of sync for every node not in `mask`, so that the
   * knowledge of who missed a write survives the loss of the Primary.
   */
  | {
      readonly type: "peerAck";
      readonly firstBlock: number;
      readonly blockCount: number;
      readonly mask: number;
    }
  | { readonly type: "ping"; readonly seq: number }
  | { readonly type: "pingAck"; readonly seq: number }
  /**
   * Online resize, phase 1 (feature online-resize): how many blocks can your disk hold?
   * `sizeBlocks` is the size the operator asked for (0: as large as the disks allow); a
   * file-backed disk may be extended to hold it.
   */
  | { readonly type: "resizeRequest"; readonly id: number; readonly sizeBlocks: number }
  /** Answer: the backing capacity in blocks (0: no disk, no limit). */
  | { readonly type: "resizeReply"; readonly id: number; readonly capacityBlocks: number }
  /** Phase 2: grow to `sizeBlocks`; the sender is the sync source of the new blocks. */
  | {
      readonly type: "resize";
      readonly id: number;
      readonly sizeBlocks: number;
      readonly assumeClean: boolean;
    }
  /** The receiver grew (its metadata is durable) or, with ok false, could not. */
  | { readonly type: "resizeAck"; readonly id: number; readonly ok: boolean };

// ----------------------------------------------------------------------------------------
// Inspection, for checkers, status output and tests.

/** A read-only view of one out-of-sync bitmap. */
export interface BitmapView {
  readonly sizeBlocks: number;
  isSet(block: number): boolean;
  /** Number of set bits. */
  count(): number;
}

export interface PeerView {
  readonly peer: NodeId;
  readonly connection: ConnectionState;
  readonly replication: ReplicationState;
  /** What we last heard of the peer (DUnknown / Unknown when not connected). */
  readonly peerRole: Role;
  readonly peerDisk: DiskState;
  /** Blocks that may differ between us and this peer. */
  readonly bitmap: BitmapView;
  readonly bitmapUuid: number;
  /**
   * A write received from this peer (a Primary) covers `block` and its peer ack, which tells
   * who else holds it and so which bitmaps to mark, has not arrived yet.
   */
  awaitsPeerAck(block: number): boolean;
}

export interface ReplicaView {
  readonly nodeId: NodeId;
  readonly role: Role;
  readonly disk: DiskState;
  readonly currentUuid: number;
  readonly historyUuids: readonly number[];
  /** The generation the superblock write in flight makes current (= currentUuid if none). */
  readonly nextUuid: number;
  readonly quorum: boolean;
  readonly suspended: boolean;
  /** Hot AL extents, in memory (the persisted set may lag until its write completes). */
  readonly alExtents: readonly number[];
  peer(id: NodeId): PeerView | undefined;
  readonly peers: readonly PeerView[];
  /** Primary with quorum and access to UpToDate data: new writes would be accepted now. */
  canWrite(): boolean;
}
