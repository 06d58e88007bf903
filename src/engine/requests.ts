//! The in-flight records of the replica: client writes, flushes and reads, and the local
//! disk operations that serve them. Plain mutable records, one per request, so the write
//! path allocates a fixed, small number of objects and no closures.

import type { NodeId } from "./types.js";

export type WritePhase = "waiting" | "inflight" | "flushing" | "done";

/** A client write on this (Primary) node. */
export interface WriteReq {
  readonly requestId: number;
  readonly firstBlock: number;
  readonly blockCount: number;
  readonly data: Uint8Array;
  readonly fua: boolean;
  /** Order of submission; flushes cover writes with a smaller submitSeq. */
  readonly submitSeq: number;
  /** Replication sequence number (the `seq` of the data message). */
  seq: number;
  epoch: number;
  phase: WritePhase;
  hasLocal: boolean;
  localPending: boolean;
  localOk: boolean;
  /** Peers whose ack we still wait for (bit per node id). */
  acksPendingMask: number;
  /** Peers that acknowledged a successful write. */
  ackedOkMask: number;
  /** Peers whose link broke since they acked: the ack no longer proves they hold it. */
  ackLostMask: number;
  /** Peers the data was sent to. */
  sentMask: number;
  startTick: number;
  /** Holds activity-log references that must be released on local completion. */
  alHeld: boolean;
  /** Sent to the peers (replicateWrite ran). */
  replicated: boolean;
}

/** A client flush, or the flush that ends a FUA write (then `write` is set). */
export interface FlushReq {
  readonly requestId: number;
  readonly beforeSubmitSeq: number;
  readonly write: WriteReq | undefined;
  started: boolean;
  localPending: boolean;
  localOk: boolean;
  /** Per node id: the epoch whose barrier ack we wait for, or -1. */
  readonly peerEpochs: number[];
}

/** A client read served locally (peer = -1) or by a peer. */
export interface ReadReq {
  readonly requestId: number;
  readonly firstBlock: number;
  readonly blockCount: number;
  /** Peers (bit per node id) already tried, plus bit 31+1 for the local disk via localTried. */
  triedMask: number;
  localTried: boolean;
  peer: NodeId;
  startTick: number;
}

export type LocalOpKind =
  | "clientWrite"
  | "peerWrite"
  | "resyncWrite"
  | "clientRead"
  | "peerRead"
  | "resyncRead"
  | "csumSourceRead"
  | "csumTargetRead"
  | "verifySourceRead"
  | "verifyTargetRead"
  | "flushClient"
  | "flushBarrier"
  | "flushAl"
  | "flushDemote"
  | "flushDown"
  | "flushSyncDone";

/**
 * One local disk operation. Range operations go through the overlap scheduler: an
 * operation starts only after every earlier, overlapping operation where either side
 * writes has finished, and after the metadata it depends on is persisted.
 */
export interface LocalOp {
  readonly kind: LocalOpKind;
  readonly write: boolean;
  readonly firstBlock: number;
  readonly blockCount: number;
  issued: boolean;
  /** Issue only once this metadata sequence number is durable. */
  needMetaSeq: number;
  ioId: number;
  peer: NodeId;
  seq: number;
  epoch: number;
  ack: "none" | "recv" | "write";
  data: Uint8Array | undefined;
  writeReq: WriteReq | undefined;
  readReq: ReadReq | undefined;
  flushReq: FlushReq | undefined;
  /**
   * Resync read: the write stream we followed when it was queued (`seq` is how far); every
   * write of it we received before is ordered ahead of the read, so the data holds them.
   */
  streamId: number;
  /** Read request id (peerRead) or digest (checksum / verify). */
  aux: number;
  /** Resync reply parts still being written before the ack goes out (resyncWrite). */
  group: ResyncGroup | undefined;
  /** Activity log for a replicated write: 0 none, 1 to activate before issue, 2 held. */
  alState: 0 | 1 | 2;
}

export interface ResyncGroup {
  readonly peer: NodeId;
  readonly block: number;
  readonly blockCount: number;
  /** The reply's block data, which the parts' writes take views of. */
  readonly data: Uint8Array;
  pending: number;
}

export function makeOp(
  kind: LocalOpKind,
  write: boolean,
  firstBlock: number,
  blockCount: number,
): LocalOp {
  return {
    kind,
    write,
    firstBlock,
    blockCount,
    issued: false,
    needMetaSeq: 0,
    ioId: 0,
    peer: -1,
    seq: 0,
    epoch: 0,
    streamId: 0,
    ack: "none",
    data: undefined,
    writeReq: undefined,
    readReq: undefined,
    flushReq: undefined,
    aux: 0,
    group: undefined,
    alState: 0,
  };
}
