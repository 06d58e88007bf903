//! What one node knows about one peer: the connection and replication state, what the peer
//! last told us, the out-of-sync bitmap we keep for it, the transfer log of writes it has
//! not yet confirmed durable (barrier-acked), and resync/verify progress.
//!
//! Invariants:
//! - `handshakeDone` implies `link`; `connection` is "Connected" exactly when both hold;
//! - every block of a write sent to the peer stays in `transferLog` until a barrier ack
//!   covering its epoch arrives; if the link breaks first, those blocks are marked in
//!   `bitmap`, so a write the peer may have lost from a volatile cache is always resynced.

import { Bitmap } from "./bitmap.js";
import { RateController } from "./rate_controller.js";
import type {
  ConnectionState,
  DiskState,
  NodeId,
  PeerView,
  ReplicationState,
  ResourceOptions,
  Role,
  UuidSet,
} from "./types.js";

/** A state message as this node sent it at the start of a connection (handshake snapshot). */
export interface StateSnapshot {
  readonly role: Role;
  readonly disk: DiskState;
  readonly consistent: boolean;
  readonly uuids: UuidSet;
  readonly crashedPrimary: boolean;
  readonly bitsForYou: number;
  readonly discardMyData: boolean;
  /** Peers established when the snapshot was taken (bit per node id). */
  readonly connectedMask: number;
  readonly syncTowardUuid: number;
  readonly syncBaseUuid: number;
  readonly streamId: number;
  readonly streamSeq: number;
}

export class PeerState implements PeerView {
  readonly peer: NodeId;
  readonly diskful: boolean;
  readonly name: string;
  readonly bitmap: Bitmap;
  bitmapUuid = 0;

  /** The operator wants this connection (not StandAlone). */
  want = false;
  /** The shell reported the link up (peerConnected) and not down since. */
  link = false;
  /** Incremented on every peerConnected, to recognise work of an older connection. */
  linkGen = 0;
  /** Both state messages exchanged on this link. */
  handshakeDone = false;
  /** The peer sent a state after finishing its side of the handshake: it accepted us. */
  confirmed = false;
  connection: ConnectionState = "StandAlone";
  replication: ReplicationState = "Off";
  peerRole: Role = "Unknown";
  peerDisk: DiskState = "DUnknown";
  peerUuids: UuidSet | undefined = undefined;
  peerCrashedPrimary = false;
  /** Bits the peer's last state said it holds for us (blocks we may lack). */
  peerBitsForUs = 0;
  /** Resync blocks this tick's rate still allows (SyncSource). */
  resyncBudget = 0;
  /** Nodes the peer is connected to, as a bitmask by node id. */
  peerConnectedMask = 0;
  /** The peer's write stream position (its state's streamId, streamSeq). */
  peerStreamId = 0;
  peerStreamSeq = 0;
  /** Operator's discard-my-data for this connection (cleared once used). */
  discardMyData = false;
  sent: StateSnapshot | undefined = undefined;

  /** Transfer log: writes sent, not yet covered by a barrier ack. Triples: epoch, first, count. */
  transferLog: number[] = [];
  /** Highest epoch whose barrier the peer acked on this link. */
  barrierAckedEpoch = -1;
  /** Epoch of the newest write sent on this link (-1 none). */
  lastEpochSent = -1;

  // Receiving side: writes from this peer in flight per epoch, and barriers waiting on them.
  readonly recvEpochPending = new Map<number, number>();
  readonly barriersPending: number[] = [];
  /** A flush for barriersPending[0] is in flight. */
  barrierFlushing = false;

  lastRecvTick = 0;
  /** Voter confirmation: the round we await a ping ack for, and the last one confirmed. */
  confirmPending = 0;
  confirmedRound = 0;
  /** Writes received from this (Primary) peer without a peer ack yet: first block → count. */
  readonly unackedWrites = new Map<number, number>();

  awaitsPeerAck(block: number): boolean {
    for (const [first, count] of this.unackedWrites)
      if (block >= first && block < first + count) return true;
    return false;
  }
  /** A handshake restarted on a live link is under way (the connection counts for quorum). */
  renegotiating = false;
  /** Our renegotiation request awaiting its answer (0: none; see Replica.renegotiate). */
  handshakeRequestId = 0;
  /** Resync rounds we started as target with this peer (a bitmap sent); tags their flushes. */
  targetRound = 0;
  /** Our current UUID when the latest of those rounds began. */
  targetStartUuid = 0;
  /** The id our first state on this link carried; the peer's verdict on it echoes it. */
  helloId = 0;
  /** The id of the peer's last request (first state or renegotiation) we judged. */
  judgedPeerId = 0;
  /** When we last renegotiated because of bits for an Established peer. */
  renegotiateTick = -1_000_000;
  /** While Disconnecting after a handshake verdict: when to close the link. */
  dropAtTick = 0;
  pingSentTick = -1;
  readsPending = 0;

  // Resync / verify as source (we drive) or target.
  readonly rate: RateController;
  resyncCursor = 0;
  resyncInFlightBlocks = 0;
  resyncDoneThisTick = 0;
  resyncDoneLastTick = 0;
  resyncFull = false;
  /** The handshake decided a full sync (we are source, waiting for the bitmap). */
  syncFull = false;
  /** Source side: the target joined us in the middle of a bitmap resync from another source (@JB). */
  syncJoined = false;
  /** The last handshake made us this peer's target as the victim of a split brain. */
  victimRound = false;
  /** The last handshake decision and its table row, for traces and tests. */
  decision = "";
  /** Blocks (as ranges of chunk starts) currently being resynced, to avoid duplicates. */
  readonly resyncInFlight = new Set<number>();
  /** The blocks of those runs. */
  readonly resyncInFlightBits: Bitmap;
  /**
   * As source: in-flight blocks marked again since their read (their ack leaves the bit
   * set). As target: blocks marked since our bitmap went to the source (the source lacks
   * them, e.g. writes of a Primary it does not reach): the resync leaves them set.
   */
  readonly resyncRedirty: Bitmap;
  /**
   * Blocks whose last write from the diskless Primary we follow (see `appWritten`) this peer
   * lacks by that Primary's peer ack (it lost the link before the write arrived); an ack
   * naming the peer clears them. (A diskful Primary keeps its own bit for the peer.)
   */
  readonly lacksPrimaryWrite: Bitmap;
  verifyCursor = 0;
  verifyOutOfSync = 0;
  /** Verify source: block → [own digest or -1, peer digest or -1]. */
  readonly verifyPending = new Map<number, [number, number]>();
  /** Granted a promotion to this peer until this tick (-1: none). */
  grantedUntilTick = -1;
  /**
   * Diskless Primary only: the peer holds the data generation we expose (our current
   * UUID), so reads may go there. `exposedRotatedFrom` is the generation it held when we
   * rotated while it followed our stream: it adopts the new one on our state message.
   */
  exposedMatch = false;
  exposedRotatedFrom = 0;

  constructor(
    peer: NodeId,
    name: string,
    diskful: boolean,
    sizeBlocks: number,
    options: ResourceOptions,
    bits?: Uint8Array,
  ) {
    this.peer = peer;
    this.name = name;
    this.diskful = diskful;
    this.bitmap = new Bitmap(sizeBlocks, bits);
    this.resyncInFlightBits = new Bitmap(sizeBlocks);
    this.resyncRedirty = new Bitmap(sizeBlocks);
    this.lacksPrimaryWrite = new Bitmap(sizeBlocks);
    this.rate = new RateController(options);
  }

  /** Connected with both state messages exchanged. */
  get established(): boolean {
    return this.link && this.handshakeDone;
  }

  /** Receives replicated application writes: established, with a disk that can take them. */
  get replicating(): boolean {
    return (
      this.established &&
      this.diskful &&
      this.peerDisk !== "Diskless" &&
      this.peerDisk !== "Failed" &&
      this.peerDisk !== "DUnknown" &&
      this.peerDisk !== "Attaching"
    );
  }
}
