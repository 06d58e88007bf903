//! The I/O shell of one replicated volume on this node: it owns the engine's `Replica` and
//! gives it real disks, metadata, peer links, a clock and clients, as src/testing/cluster.ts
//! gives it simulated ones.
//!
//! Contract kept with the engine (src/engine/types.ts header):
//! - every input reaches the replica through one FIFO inbox, drained to empty, never
//!   re-entrantly from inside `step` (effects may call back synchronously: they only queue);
//! - effects are executed in order: disk IO on the backing volume (LocalVolume), metadata
//!   records through MetadataStore (durable in issue order), messages on PeerLinks,
//!   completions to the waiting client or admin command;
//! - a link is wanted only between `connectPeer` and `disconnectPeer{reconnect:false}`; for
//!   each pair the lower node id dials, the higher accepts (and refuses while not wanted);
//! - every message from the network passes `validatePeerMessage` first: a bad one drops that
//!   connection (the engine then sees `peerDisconnected`), never the process;
//! - PeerLink delivers messages of one connection between its onConnected and
//!   onDisconnected only, so no message of an old connection follows a new `peerConnected`;
//! - a timer turns into `tick` events every `tickMs`.
//! After `detach()` every late callback (disk, metadata, link) is ignored: they check the
//! attachment generation they were issued under.

import * as fs from "node:fs";
import { ConfigError, MetadataError } from "../stdx/errors.js";
import { assert } from "../stdx/assert.js";
import type { Logger } from "../io/log.js";
import {
  PeerLink,
  type PeerLinkCallbacks,
  type PeerLinkOptions,
  type PeerListener,
  type PeerTlsOptions,
} from "../io/peer_link.js";
import type { IoCallback } from "../storage/block_device.js";
import { LocalVolume } from "../storage/local_volume.js";
import {
  createReplica,
  optionsDefault,
  type AdminCommand,
  type Effect,
  type Event,
  type IoErrorCode,
  type NodeId,
  type PeerMessage,
  type PersistedMeta,
  type Replica,
  type ReplicationState,
} from "../engine/mod.js";
import { featureOnlineResize, validatePeerMessage } from "../engine/wire/mod.js";
import {
  engineConfigOf,
  tickMs,
  volumeWireName,
  type NodeSpec,
  type NodeVolumeSpec,
  type ResourceFile,
} from "../config/resource_file.js";
import { MetadataStore, type MetadataWriteCounters } from "./metadata_store.js";
import { BulkBufferPool } from "../io/bulk_buffer_pool.js";
import { native } from "../storage/native.js";
import { VolumeIoCounters, type HistogramSnapshot } from "../metrics/io_counters.js";

export type ReadCallback = (err: NodeJS.ErrnoException | null, data?: Uint8Array) => void;
export type DoneCallback = (err: NodeJS.ErrnoException | null) => void;

export interface AdminResult {
  readonly ok: boolean;
  readonly error?: string;
}

/** Traffic with one peer for one volume, and resync progress; counters since the daemon started. */
export interface PeerTrafficStatus {
  /** Block data sent (replicated writes, resync and read replies), as DRBD's `sent`. */
  readonly sentBytes: number;
  /** Block data received, as DRBD's `received`. */
  readonly receivedBytes: number;
  /** Resync data sent as SyncSource. */
  readonly resyncSentBytes: number;
  /** Resync data received as SyncTarget. */
  readonly resyncReceivedBytes: number;
  /** Blocks a resync finished with this peer, either role (sent, or found equal by checksum). */
  readonly resyncDoneBlocks: number;
  /** Blocks online verifies with this peer compared, either role. */
  readonly verifyDoneBlocks: number;
  /** Resync or verify speed over the last second (bytes finished per second); 0 when idle. */
  readonly resyncRateBytesPerSecond: number;
  /**
   * Blocks the current resync still has to move: exact as SyncSource (its bitmap); as
   * SyncTarget an estimate from the source's count at the start (see targetProgress).
   * Undefined when not syncing.
   */
  readonly resyncRemainingBlocks: number | undefined;
  /** Blocks the running online verify has still to compare; undefined when not verifying. */
  readonly verifyRemainingBlocks: number | undefined;
  /** Round trips of this volume's link to the peer; undefined before the first. */
  readonly rtt: HistogramSnapshot | undefined;
  readonly rttSecondsLast: number | undefined;
}

export interface PeerVolumeStatus {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly connection: string;
  readonly replication: ReplicationState;
  readonly role: string;
  readonly disk: string;
  readonly outOfSyncBlocks: number;
  /** Resync progress while SyncSource/SyncTarget/Paused*, verify progress while Verify*. */
  readonly donePercent: number | undefined;
  readonly traffic: PeerTrafficStatus;
}

export interface VolumeStatus {
  readonly volume: number;
  readonly sizeBytes: number;
  readonly role: string;
  readonly disk: string;
  readonly quorum: boolean;
  readonly suspended: boolean;
  readonly writesInFlight: number;
  readonly peers: readonly PeerVolumeStatus[];
  /** Metadata updates since attach; undefined on a diskless volume. */
  readonly metadata: MetadataWriteCounters | undefined;
  /** IO on the backing disk since the volume host was made (DRBD's read/written, lower). */
  readonly localIo: LocalIoStatus;
  /** Client requests handed to the engine and not answered yet (DRBD's upper_pending). */
  readonly upperPending: number;
}

export interface LocalIoStatus {
  /** Bytes read from the backing disk: client reads served locally, resync and verify. */
  readonly readBytes: number;
  /** Bytes written to the backing disk: local and replicated writes, resync. */
  readonly writtenBytes: number;
  /** Requests open on the backing disk (DRBD's lower_pending). */
  readonly pending: number;
}

interface ClientRequest {
  readonly kind: "read" | "write" | "flush";
  readonly done: ReadCallback;
}

/** MIRRA_SEND_FIRST=0 writes locally before a write's frames leave (A/B runs). */
const sendFirst = process.env["MIRRA_SEND_FIRST"] !== "0";

const blockBytes = 4096;

/** Blocks per resync request (1 MiB). */
const resyncRequestBlocks = 256;
const resyncRequestBytes = resyncRequestBlocks * blockBytes;

/**
 * Resync-sized reads (a source's 1 MiB), shared by this process's volumes: back in the pool
 * once the socket sent them (see io/bulk_buffer_pool.ts).
 */
const bulkReadPool = new BulkBufferPool(resyncRequestBytes, 32);
/**
 * Received resync replies (1 MiB of data and its fields), in page-aligned memory where the
 * addon provides it, so the data goes to the O_DIRECT write uncopied; back in the pool when
 * the engine says it is done with the data ("dataDone").
 */
const resyncReceivePool = new BulkBufferPool(
  resyncRequestBytes + 2 * blockBytes,
  32,
  native?.alignedBuffer !== undefined
    ? (bytes) => Buffer.from(native!.alignedBuffer!(bytes))
    : undefined,
);

/** The peer links' send-queue bound before the resync window is added (PeerLink's default). */
const sendQueueBytesBase = 128 * 1024 * 1024;

/**
 * A resync keeps up to max-buffers blocks of data in flight toward a peer, all of which may
 * sit in the send queue at once: that much is allowed on top of the usual bound, or a large
 * max-buffers drops every resync as "peer too slow" and starts it over, for ever.
 */
export function sendQueueBytesMaxFor(maxBuffers: number): number {
  return sendQueueBytesBase + maxBuffers * 4096;
}

function ioError(code: string, message?: string): NodeJS.ErrnoException {
  const err = new Error(message ?? code) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

const ioErrorCodes: readonly IoErrorCode[] = [
  "EIO",
  "EINVAL",
  "ENOSPC",
  "EPERM",
  "ESHUTDOWN",
  "EAGAIN",
];

function toIoErrorCode(err: NodeJS.ErrnoException): IoErrorCode {
  const code = err.code as IoErrorCode | undefined;
  return code !== undefined && ioErrorCodes.includes(code) ? code : "EIO";
}

/** Per peer: plain counters bumped per message (no allocation on the data path). */
class PeerCounters {
  sentBytes = 0;
  receivedBytes = 0;
  resyncSentBytes = 0;
  resyncReceivedBytes = 0;
  resyncDoneBlocks = 0;
  verifyDoneBlocks = 0;
  /** How far the running verify got: the end of the last block range compared. */
  verifyPosition = 0;
  /** The peer's count of bits for us, from its latest state message. */
  peerBitsForUs = 0;
  /** The peer's latest syncStart asked for a full sync. */
  syncStartFull = false;
  /** As SyncTarget: the blocks the current resync moves (estimate) and done at its start. */
  targetTotalBlocks = 0;
  targetDoneAtStart = 0;
  /** Rate sampling (performance.now ms) and the rate over the last window. */
  rateDoneBlocks = 0;
  rateAtMs = 0;
  rateBlocksPerSecond = 0;

  /** Counts block data of a message to or from the peer. */
  count(m: PeerMessage, sent: boolean): void {
    let bytes = 0;
    switch (m.type) {
      case "data":
        bytes = m.data.length;
        break;
      case "readReply":
        bytes = m.data?.length ?? 0;
        break;
      case "resyncReply":
        bytes = m.data?.length ?? 0;
        if (sent) this.resyncSentBytes += bytes;
        else this.resyncReceivedBytes += bytes;
        break;
      case "resyncAck":
      case "inSync":
        // Sent by the target, received by the source: one count per block on either side.
        this.resyncDoneBlocks += m.blockCount;
        return;
      case "verifyReply":
        // Sent by the verify target, received by the source; ranges come in order.
        this.verifyDoneBlocks += m.blockCount;
        this.verifyPosition = Math.max(this.verifyPosition, m.block + m.blockCount);
        return;
      case "state":
        if (!sent) this.peerBitsForUs = m.bitsForYou;
        return;
      case "syncStart":
        if (!sent) this.syncStartFull = m.full;
        return;
      default:
        return;
    }
    if (sent) this.sentBytes += bytes;
    else this.receivedBytes += bytes;
  }

  /** Every tick: the resync rate over windows of about a second. */
  sample(nowMs: number): void {
    const elapsedMs = nowMs - this.rateAtMs;
    if (elapsedMs < 1000) return;
    // A peer volume runs a resync or a verify, never both: one speed serves either.
    const done = this.resyncDoneBlocks + this.verifyDoneBlocks;
    const blocks = done - this.rateDoneBlocks;
    this.rateBlocksPerSecond = this.rateAtMs === 0 ? 0 : (blocks * 1000) / elapsedMs;
    this.rateDoneBlocks = done;
    this.rateAtMs = nowMs;
  }
}

/**
 * How far a SyncTarget is. The target does not hold the source's bitmap (the source merges
 * the target's into its own), so it estimates what the resync moves from what it heard at
 * the start: everything for a full sync, else the source's bits for it plus its own bits for
 * the source (an upper bound: a block in both counts twice). Pure, for tests.
 */
export function targetProgress(p: { readonly totalBlocks: number; readonly doneBlocks: number }): {
  remainingBlocks: number;
  donePercent: number;
} {
  const total = Math.max(p.totalBlocks, p.doneBlocks);
  const remainingBlocks = total - p.doneBlocks;
  const donePercent = total === 0 ? 100 : Math.floor((1000 * p.doneBlocks) / total) / 10;
  return { remainingBlocks, donePercent };
}

function isVerifying(r: ReplicationState): boolean {
  return r === "VerifyS" || r === "VerifyT";
}

function isSyncing(r: ReplicationState): boolean {
  return r === "SyncSource" || r === "SyncTarget" || r === "PausedSyncS" || r === "PausedSyncT";
}

export class VolumeHost {
  readonly volume: number;
  /** The volume's size: the resource file's, or the metadata's once a resize agreed on one. */
  sizeBytes: number;
  readonly wireName: string;
  private readonly spec: NodeVolumeSpec;
  private readonly configSizeBytes: number;
  private readonly log: Logger;
  private replica: Replica | null = null;
  private disk: LocalVolume | null = null;
  private meta: MetadataStore | null = null;
  private readonly links = new Map<NodeId, PeerLink>();
  /** Peers the engine wants connected (connectPeer without a later final disconnect). */
  private readonly wanted = new Set<NodeId>();
  private timer: NodeJS.Timeout | undefined;
  /** Incremented on every attach and detach; callbacks of another generation are ignored. */
  private generation = 0;
  private readonly inbox: Event[] = [];
  private draining = false;
  private requestIdNext = 1;
  private commandIdNext = 1;
  private readonly requests = new Map<number, ClientRequest>();
  private readonly commands = new Map<number, (r: AdminResult) => void>();
  /** Largest out-of-sync count seen during the current resync, per peer (progress). */
  private readonly syncStartBits = new Map<NodeId, number>();
  /** Traffic and resync counters per peer, kept across connections and re-attaches. */
  private readonly peerCounters = new Map<NodeId, PeerCounters>();
  /** Client IO of this volume, counted by its NBD export (kept across exports). */
  readonly io = new VolumeIoCounters();
  private diskReadBytes = 0;
  private diskWrittenBytes = 0;
  private diskPending = 0;
  /** PEM material of `tls yes` (read by the resource at `up`), for the links we dial. */
  private tls: PeerTlsOptions | undefined;
  private listener: PeerListener | undefined;
  /** Unregisters our dialing links from the listener's knock table, per peer. */
  private readonly knockRegistrations = new Map<NodeId, () => void>();
  /** Feature flags each connected peer announced in its hello. */
  private readonly peerFeatures = new Map<NodeId, number>();

  constructor(
    private readonly file: ResourceFile,
    private readonly self: NodeSpec,
    volume: number,
    logger: Logger,
    /** Hears every state change (for `mirra events`), after it is logged. */
    private readonly onStateChange?: (change: StateChangeRecord) => void,
  ) {
    const spec = self.volumes.find((v) => v.volume === volume);
    assert(spec !== undefined, "volume of this node");
    this.spec = spec;
    this.volume = volume;
    this.configSizeBytes = file.volumes.find((v) => v.volume === volume)!.sizeBytes;
    this.sizeBytes = this.configSizeBytes;
    this.wireName = volumeWireName(file, volume);
    this.log = logger.child({ volume });
    for (const n of file.nodes)
      if (n.nodeId !== self.nodeId) this.peerCounters.set(n.nodeId, new PeerCounters());
  }

  get attached(): boolean {
    return this.replica !== null;
  }

  /**
   * Opens disk and metadata (refusing unusable ones with a clear error), creates the
   * replica from what the metadata holds, registers the accepting peer links on `listener`
   * (which must use the same `tls`) and starts the engine.
   */
  attach(listener: PeerListener, tls: PeerTlsOptions | undefined): void {
    assert(this.replica === null, "attach once");
    this.tls = tls;
    this.listener = listener;
    const nodeId = this.self.nodeId;
    // Resync requests up to 1 MiB, DRBD's BIO size: a source reads and a target writes (with
    // O_DIRECT, see LocalVolume.writeBulk) in large pieces; the rate budget still cuts them.
    const overrides: Record<string, number> = { resyncRequestBlocks };
    let persisted: PersistedMeta | undefined;
    if (this.spec.disk !== undefined) {
      const metaPath = this.spec.metaDisk === "internal" ? undefined : this.spec.metaDisk.path;
      if (!fs.existsSync(this.spec.disk))
        throw new ConfigError(
          `volume ${this.volume}: backing disk ${this.spec.disk} does not exist ` +
            "(create it and its metadata with `mirra create-md`)",
        );
      // A grown backing device may still hold its area where the old end was (resize not
      // run yet, or interrupted): attach looks for it down to the configured data size.
      const scanDownToBytes = metaPath === undefined ? this.configSizeBytes : 0;
      const meta = MetadataStore.open(
        { backing: this.spec.disk, metaPath, scanDownToBytes },
        nodeId,
      );
      if (meta.movedFrom !== undefined)
        this.log.warn("metadata found below the end of the grown device; run adm resize", {
          atEnd: meta.movedFrom,
        });
      const h = meta.decoded.header;
      // An online resize stored the agreed size in the metadata: it wins over the file's.
      this.sizeBytes = h.sizeAgreed === true ? h.volumeBytes : this.configSizeBytes;
      if (h.volumeBytes < this.sizeBytes) {
        void meta.close();
        throw new MetadataError(
          `volume ${this.volume}: the metadata on ${meta.path} describes ${h.volumeBytes} bytes ` +
            `of data but the resource's volume is ${this.sizeBytes} bytes (disk too small)`,
        );
      }
      const peersMax = this.file.nodes.length - 1;
      if (h.peerSlots < peersMax) {
        void meta.close();
        throw new MetadataError(
          `volume ${this.volume}: the metadata on ${meta.path} has ${h.peerSlots} peer ` +
            `slot(s) but the resource has ${peersMax} peers (recreate it with --peers ${peersMax})`,
        );
      }
      const wantedAl = this.file.engineOptions.alExtents;
      if (wantedAl !== undefined && wantedAl > h.alExtents) {
        void meta.close();
        throw new MetadataError(
          `volume ${this.volume}: al-extents ${wantedAl} is more than the ${h.alExtents} ` +
            `extents the metadata on ${meta.path} holds (recreate it with --al-extents)`,
        );
      }
      overrides["alExtents"] = wantedAl ?? h.alExtents;
      overrides["alExtentBlocks"] = h.alExtentBytes / 4096;
      try {
        this.disk = LocalVolume.open({ path: this.spec.disk });
      } catch (err) {
        void meta.close();
        throw err;
      }
      this.meta = meta;
      persisted = meta.snapshot();
    }
    const config = {
      ...engineConfigOf(this.file, this.volume, overrides),
      sizeBlocks: this.sizeBytes / 4096,
    };
    this.generation++;
    this.replica = createReplica(config, nodeId, persisted);
    const generation = this.generation;
    for (const peer of this.file.nodes) {
      if (peer.nodeId === nodeId || nodeId < peer.nodeId) continue;
      // The peer has the lower id, so it dials and we accept; refuse until the engine wants it.
      const link = listener.accept(
        this.linkOptions(peer.nodeId),
        this.linkCallbacks(peer.nodeId, generation),
      );
      link.adoptIncoming = false;
      this.links.set(peer.nodeId, link);
    }
    this.push({ type: "start" });
    this.timer = setInterval(() => {
      this.push({ type: "tick" });
      const now = performance.now();
      for (const c of this.peerCounters.values()) c.sample(now);
    }, tickMs);
    this.log.info("volume attached", {
      disk: this.spec.disk ?? "none",
      sizeBytes: this.sizeBytes,
      state: this.replica.disk,
    });
  }

  private linkOptions(peer: NodeId): PeerLinkOptions {
    const l = this.file.link;
    return {
      resourceName: this.wireName,
      nodeId: this.self.nodeId,
      peerNodeId: peer,
      ...(this.file.sharedSecret !== undefined ? { secret: this.file.sharedSecret } : {}),
      ...(this.tls !== undefined ? { tls: this.tls } : {}),
      pingIntervalMs: l.pingIntMs,
      pingTimeoutMs: l.pingTimeoutMs,
      reconnectDelayMsMin: 50,
      reconnectDelayMsMax: l.connectIntMs,
      sendQueueBytesMax: sendQueueBytesMaxFor(
        this.file.engineOptions.maxBuffers ?? optionsDefault.maxBuffers,
      ),
      payloadPool: resyncReceivePool,
      logger: this.log,
    };
  }

  private linkCallbacks(peer: NodeId, generation: number): PeerLinkCallbacks {
    // Read at each message: an online resize changes the size under a live link.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const host = this;
    const limits = {
      get sizeBlocks(): number {
        return host.sizeBytes / 4096;
      },
    };
    return {
      onConnected: (info) => {
        if (generation !== this.generation) return;
        this.peerFeatures.set(peer, info.features);
        this.push({ type: "peerConnected", peer });
      },
      onDisconnected: () => {
        if (generation === this.generation) this.push({ type: "peerDisconnected", peer });
      },
      onMessage: (message: PeerMessage) => {
        if (generation !== this.generation) return;
        const bad = validatePeerMessage(message, limits);
        if (bad !== undefined) {
          this.log.warn("invalid peer message: dropping the connection", { peer, error: bad });
          this.links.get(peer)?.dropConnection(`invalid message: ${bad}`);
          return;
        }
        // The engine answers with our capacity: read the (maybe just grown) device first.
        if (message.type === "resizeRequest") this.noteCapacity(message.sizeBlocks * 4096);
        this.peerCounters.get(peer)?.count(message, false);
        this.push({ type: "peerMessage", from: peer, message });
      },
    };
  }

  // ------------------------------------------------------------------------------------
  // The inbox.

  private push(event: Event): void {
    this.inbox.push(event);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let i = 0; i < this.inbox.length; i++) {
        const replica = this.replica;
        if (replica === null) break;
        const effects = replica.step(this.inbox[i]!);
        // `step` reuses its array; copy before executing (execution may not step, but be safe).
        const list = effects.slice();
        for (const effect of list) this.execute(effect);
      }
    } finally {
      this.inbox.length = 0;
      this.draining = false;
    }
  }

  /** The completion of a data write or flush, fed back unless the volume was re-attached. */
  private diskDone(ioId: number, current: () => boolean): IoCallback {
    return (err) => {
      if (!current()) return;
      this.diskPending--;
      this.push(
        err
          ? { type: "diskCompleted", ioId, ok: false, error: toIoErrorCode(err) }
          : { type: "diskCompleted", ioId, ok: true },
      );
    };
  }

  /**
   * Data IO held back until this event-loop turn's peer frames have left. A write replicated
   * over a corked link would otherwise be written here inline (tens of µs on the event loop)
   * before its frame leaves in the check phase: sending first lets the peers write while we
   * do. Once one effect waits, every later data IO of the turn waits behind it, in order.
   */
  private deferredDiskIo: Effect[] = [];

  private execute(effect: Effect): void {
    const diskIo =
      effect.type === "diskWrite" || effect.type === "diskRead" || effect.type === "diskFlush";
    if (!diskIo || !sendFirst) return this.executeNow(effect);
    if (this.deferredDiskIo.length > 0) {
      this.deferredDiskIo.push(effect);
      return;
    }
    if (effect.type !== "diskWrite" || !this.anyLinkCorked()) return this.executeNow(effect);
    this.deferredDiskIo.push(effect);
    const generation = this.generation;
    // Scheduled after the links' uncork (setImmediate runs in order): the frames are out.
    setImmediate(() => {
      const effects = this.deferredDiskIo;
      this.deferredDiskIo = [];
      if (generation !== this.generation) return; // re-attached: the old engine's IO is void
      for (const e of effects) this.executeNow(e);
    });
  }

  private anyLinkCorked(): boolean {
    for (const link of this.links.values()) if (link.corkedNow) return true;
    return false;
  }

  private executeNow(effect: Effect): void {
    const generation = this.generation;
    const current = (): boolean => generation === this.generation;
    switch (effect.type) {
      case "diskRead": {
        const disk = this.disk;
        assert(disk !== null, "diskRead on a diskless volume");
        // Not zero-filled: a read fills all of it (a short one is zero-filled) or fails.
        const buf =
          effect.lengthBytes === bulkReadPool.bytes
            ? bulkReadPool.take()
            : Buffer.allocUnsafe(effect.lengthBytes);
        this.diskReadBytes += effect.lengthBytes;
        this.diskPending++;
        disk.read(buf, 0, effect.lengthBytes, effect.offsetBytes, (err) => {
          if (!current()) return;
          this.diskPending--;
          this.push(
            err
              ? { type: "diskCompleted", ioId: effect.ioId, ok: false, error: toIoErrorCode(err) }
              : { type: "diskCompleted", ioId: effect.ioId, ok: true, data: buf },
          );
        });
        return;
      }
      case "diskWrite": {
        const disk = this.disk;
        assert(disk !== null, "diskWrite on a diskless volume");
        this.diskWrittenBytes += effect.data.length;
        this.diskPending++;
        const done = this.diskDone(effect.ioId, current);
        if (effect.bulk === true)
          disk.writeBulk(effect.data, 0, effect.data.length, effect.offsetBytes, done);
        else disk.write(effect.data, 0, effect.data.length, effect.offsetBytes, false, done);
        return;
      }
      case "diskFlush": {
        const disk = this.disk;
        assert(disk !== null, "diskFlush on a diskless volume");
        this.diskPending++;
        disk.flush(this.diskDone(effect.ioId, current));
        return;
      }
      case "metadataWrite": {
        const meta = this.meta;
        assert(meta !== null, "metadataWrite on a diskless volume");
        meta.write(effect.record, (ok) => {
          if (current()) this.push({ type: "metadataCompleted", ioId: effect.ioId, ok });
        });
        return;
      }
      case "send": {
        const m = effect.message;
        // A resync (or diskless read) reply carries the pooled buffer its read filled; the
        // engine keeps no reference to it, so it goes back once the socket is done with it.
        const pooled = "data" in m && m.data !== undefined && bulkReadPool.owns(m.data);
        const onSent = pooled ? () => bulkReadPool.give(m.data!) : undefined;
        if (this.links.get(effect.to)?.send(m, onSent) === true)
          this.peerCounters.get(effect.to)?.count(m, true);
        return;
      }
      case "connectPeer":
        this.wantPeer(effect.peer);
        return;
      case "disconnectPeer":
        this.unwantPeer(effect.peer, effect.reconnect);
        return;
      case "completeRequest": {
        const request = this.requests.get(effect.requestId);
        if (request === undefined) return;
        this.requests.delete(effect.requestId);
        if (!effect.ok) request.done(ioError(effect.error ?? "EIO"));
        else request.done(null, effect.data);
        return;
      }
      case "adminCompleted": {
        const resolve = this.commands.get(effect.commandId);
        if (resolve === undefined) return;
        this.commands.delete(effect.commandId);
        resolve(
          effect.error !== undefined ? { ok: effect.ok, error: effect.error } : { ok: effect.ok },
        );
        return;
      }
      case "dataDone":
        resyncReceivePool.give(effect.data);
        return;
      case "stateChanged": {
        const change = effect.change;
        // The NBD export reports the new size to clients that connect from now on.
        if (change.kind === "resized") this.sizeBytes = change.sizeBlocks * 4096;
        if (change.kind === "replication") {
          if (isSyncing(change.replication)) {
            const bits = this.replica?.peer(change.peer)?.bitmap.count() ?? 0;
            this.syncStartBits.set(
              change.peer,
              Math.max(bits, this.syncStartBits.get(change.peer) ?? 0),
            );
          } else this.syncStartBits.delete(change.peer);
          const c = this.peerCounters.get(change.peer);
          if (c !== undefined && change.replication === "SyncTarget") {
            // A new resync as target (not a resumed one): estimate what it moves.
            if (c.targetTotalBlocks === 0) {
              const own = this.replica?.peer(change.peer)?.bitmap.count() ?? 0;
              c.targetTotalBlocks = c.syncStartFull
                ? this.sizeBytes / blockBytes
                : c.peerBitsForUs + own;
              c.targetDoneAtStart = c.resyncDoneBlocks;
            }
          } else if (c !== undefined && !isSyncing(change.replication)) c.targetTotalBlocks = 0;
          if (c !== undefined && isVerifying(change.replication)) c.verifyPosition = 0;
        }
        // A resync's start says how much it has to move (the bitmap's count then), so the
        // log shows whether a reconnect resynced a bitmap's worth or the whole volume.
        const record = describeChange(change);
        if (change.kind === "replication" && isSyncing(change.replication))
          record["outOfSyncBlocks"] = this.replica?.peer(change.peer)?.bitmap.count() ?? 0;
        this.log.info("state changed", record);
        this.onStateChange?.({ volume: this.volume, ...record });
        return;
      }
    }
  }

  private peerAddress(peer: NodeId): { host: string; port: number } {
    const node = this.file.nodes.find((n) => n.nodeId === peer);
    assert(node !== undefined, "peer in the resource");
    return node.address;
  }

  private wantPeer(peer: NodeId): void {
    this.wanted.add(peer);
    if (this.self.nodeId < peer) {
      if (!this.links.has(peer)) {
        const link = PeerLink.dial(
          this.peerAddress(peer),
          this.linkOptions(peer),
          this.linkCallbacks(peer, this.generation),
        );
        this.links.set(peer, link);
        const unregister = this.listener?.dialsOut(link);
        if (unregister !== undefined) this.knockRegistrations.set(peer, unregister);
      }
    } else {
      const link = this.links.get(peer);
      if (link !== undefined) {
        link.adoptIncoming = true;
        // The peer dials us; it may be deep in its backoff after we were away for long.
        if (!link.isConnected) PeerLink.knock(this.peerAddress(peer), this.linkOptions(peer));
      }
    }
  }

  private unwantPeer(peer: NodeId, reconnect: boolean): void {
    const link = this.links.get(peer);
    if (reconnect) {
      link?.dropConnection("the engine asked for a new connection");
      return;
    }
    this.wanted.delete(peer);
    if (link === undefined) return;
    if (this.self.nodeId < peer) {
      this.links.delete(peer);
      this.knockRegistrations.get(peer)?.();
      this.knockRegistrations.delete(peer);
      link.close();
    } else {
      link.adoptIncoming = false;
      link.dropConnection("disconnected by the engine");
    }
  }

  // ------------------------------------------------------------------------------------
  // Clients.

  private checkAttached(cb: ReadCallback): boolean {
    if (this.replica !== null) return true;
    queueMicrotask(() => cb(ioError("ESHUTDOWN", "the volume is not attached")));
    return false;
  }

  /** Reads `lengthBytes` (4 KiB aligned) at `offsetBytes`; `cb` gets a fresh buffer. */
  read(offsetBytes: number, lengthBytes: number, cb: ReadCallback): void {
    if (!this.checkAttached(cb)) return;
    const requestId = this.requestIdNext++;
    this.requests.set(requestId, { kind: "read", done: cb });
    this.push({ type: "clientRead", requestId, offsetBytes, lengthBytes });
  }

  /** Writes `data` (4 KiB aligned, owned by the engine until `cb`). */
  write(data: Uint8Array, offsetBytes: number, fua: boolean, cb: DoneCallback): void {
    if (!this.checkAttached(cb)) return;
    const requestId = this.requestIdNext++;
    this.requests.set(requestId, { kind: "write", done: cb });
    this.push({ type: "clientWrite", requestId, offsetBytes, data, fua });
  }

  flush(cb: DoneCallback): void {
    if (!this.checkAttached(cb)) return;
    const requestId = this.requestIdNext++;
    this.requests.set(requestId, { kind: "flush", done: cb });
    this.push({ type: "clientFlush", requestId });
  }

  /**
   * A client opened the volume for writing (NBD): with auto-promote on, a Secondary asks its
   * peers to become Primary. The error, if any, says why it stays Secondary.
   */
  open(cb: DoneCallback): void {
    void this.admin({ type: "open" }).then((r) =>
      cb(r.ok ? null : ioError("EPERM", `not promoted: ${r.error ?? "refused"}`)),
    );
  }

  /** The client of an open() is gone; the last one demotes a node that open() promoted. */
  release(): void {
    void this.admin({ type: "close" });
  }

  /** Runs one admin command through the engine. */
  admin(command: AdminCommand): Promise<AdminResult> {
    if (this.replica === null) return Promise.resolve({ ok: false, error: "Volume is down" });
    const commandId = this.commandIdNext++;
    return new Promise((resolve) => {
      this.commands.set(commandId, resolve);
      this.push({ type: "admin", commandId, command });
    });
  }

  /**
   * `mirra adm resize` on this node: with `sizeBytes`, a file-backed disk is first extended
   * to hold it; then the engine runs a resize round (src/engine/resize.ts) with this
   * node's capacity read fresh. Every connected peer must speak online-resize.
   */
  resize(sizeBytes: number | undefined, assumeClean: boolean): Promise<AdminResult> {
    if (this.replica === null) return Promise.resolve({ ok: false, error: "Volume is down" });
    for (const [peer, features] of this.peerFeatures) {
      const p = this.replica.peer(peer);
      if (p?.connection !== "Connected" || (features & featureOnlineResize) !== 0) continue;
      const name = this.file.nodes.find((n) => n.nodeId === peer)?.name ?? String(peer);
      return Promise.resolve({
        ok: false,
        error: `Peer ${name} runs a mirra without online resize: upgrade it first`,
      });
    }
    const error = this.noteCapacity(sizeBytes ?? 0);
    if (error !== undefined) return Promise.resolve({ ok: false, error });
    return this.admin({
      type: "resize",
      ...(sizeBytes !== undefined ? { sizeBlocks: sizeBytes / 4096 } : {}),
      ...(assumeClean ? { assumeClean: true } : {}),
    });
  }

  /**
   * Tells the engine how much the backing device holds now. With `wantBytes` > 0, a
   * regular backing file (and an external metadata file) is extended to hold that much
   * first, as `drbdadm resize --size` after an lvextend. Returns why it could not.
   */
  private noteCapacity(wantBytes: number): string | undefined {
    const meta = this.meta;
    const disk = this.spec.disk;
    if (meta === null || disk === undefined) return undefined;
    let capacity = meta.header.volumeBytes;
    let error: string | undefined;
    try {
      if (wantBytes > meta.header.volumeBytes) {
        const needed = meta.deviceBytesFor(wantBytes);
        const stat = fs.statSync(disk);
        if (stat.isFile() && stat.size < needed) {
          fs.truncateSync(disk, needed);
          this.log.info("backing file extended for resize", { disk, sizeBytes: needed });
        }
      }
      capacity = meta.capacityBytes();
    } catch (err) {
      error = `cannot grow or size ${disk}: ${(err as Error).message}`;
      this.log.warn("resize: backing device", { error });
    }
    this.push({ type: "backingCapacity", sizeBlocks: capacity / 4096 });
    return error;
  }

  status(): VolumeStatus {
    const r = this.replica;
    if (r === null)
      return {
        volume: this.volume,
        sizeBytes: this.sizeBytes,
        role: "Unknown",
        disk: "Diskless",
        quorum: false,
        suspended: false,
        writesInFlight: 0,
        peers: [],
        metadata: undefined,
        localIo: this.localIo(),
        upperPending: 0,
      };
    const peers = r.peers.map((p): PeerVolumeStatus => {
      const node = this.file.nodes.find((n) => n.nodeId === p.peer)!;
      const bits = p.bitmap.count();
      const c = this.peerCounters.get(p.peer)!;
      let donePercent: number | undefined;
      let remaining: number | undefined;
      const target = p.replication === "SyncTarget" || p.replication === "PausedSyncT";
      if (target && c.targetTotalBlocks > 0) {
        const t = targetProgress({
          totalBlocks: c.targetTotalBlocks,
          doneBlocks: c.resyncDoneBlocks - c.targetDoneAtStart,
        });
        donePercent = t.donePercent;
        remaining = Math.max(t.remainingBlocks, bits);
      } else if (isSyncing(p.replication)) {
        const start = Math.max(bits, this.syncStartBits.get(p.peer) ?? 0);
        this.syncStartBits.set(p.peer, start);
        donePercent = start === 0 ? 100 : Math.floor((1000 * (start - bits)) / start) / 10;
        remaining = bits;
      }
      let verifyRemaining: number | undefined;
      if (isVerifying(p.replication)) {
        const size = this.sizeBytes / blockBytes;
        const at = Math.min(c.verifyPosition, size);
        donePercent = Math.floor((1000 * at) / size) / 10;
        verifyRemaining = size - at;
      }
      const link = this.links.get(p.peer);
      return {
        nodeId: p.peer,
        name: node.name,
        connection: p.connection,
        replication: p.replication,
        role: p.peerRole,
        disk: p.peerDisk,
        outOfSyncBlocks: bits,
        donePercent,
        traffic: {
          sentBytes: c.sentBytes,
          receivedBytes: c.receivedBytes,
          resyncSentBytes: c.resyncSentBytes,
          resyncReceivedBytes: c.resyncReceivedBytes,
          resyncDoneBlocks: c.resyncDoneBlocks,
          verifyDoneBlocks: c.verifyDoneBlocks,
          resyncRateBytesPerSecond: c.rateBlocksPerSecond * blockBytes,
          resyncRemainingBlocks: remaining,
          verifyRemainingBlocks: verifyRemaining,
          rtt: link !== undefined && link.rtt.count > 0 ? link.rtt.snapshot() : undefined,
          rttSecondsLast: link?.rttSecondsLast,
        },
      };
    });
    return {
      volume: this.volume,
      sizeBytes: this.sizeBytes,
      role: r.role,
      disk: r.disk,
      quorum: r.quorum,
      suspended: r.suspended,
      writesInFlight: r.writesInFlight,
      peers,
      metadata: this.meta?.counters,
      localIo: this.localIo(),
      upperPending: this.requests.size,
    };
  }

  private localIo(): LocalIoStatus {
    return {
      readBytes: this.diskReadBytes,
      writtenBytes: this.diskWrittenBytes,
      pending: this.diskPending,
    };
  }

  /**
   * Stops the engine and releases everything: links closed, timer stopped, waiting
   * requests failed with ESHUTDOWN, queued metadata written, disk flushed and closed.
   */
  async detach(): Promise<void> {
    if (this.replica === null) return;
    this.generation++;
    this.replica = null;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const unregister of this.knockRegistrations.values()) unregister();
    this.knockRegistrations.clear();
    this.wanted.clear();
    for (const request of this.requests.values())
      request.done(ioError("ESHUTDOWN", "the volume was detached"));
    this.requests.clear();
    for (const resolve of this.commands.values())
      resolve({ ok: false, error: "the volume was detached" });
    this.commands.clear();
    this.syncStartBits.clear();
    for (const c of this.peerCounters.values()) c.targetTotalBlocks = 0;
    // Late disk callbacks are ignored (other generation): nothing stays open for this host.
    this.diskPending = 0;
    const meta = this.meta;
    const disk = this.disk;
    this.meta = null;
    this.disk = null;
    await meta?.close();
    await disk?.close();
    this.log.info("volume detached");
  }
}

/** One state change as `mirra events` streams it: the engine's change, flattened. */
export type StateChangeRecord = { readonly volume: number } & Record<
  string,
  string | number | boolean
>;

function describeChange(
  change: Extract<Effect, { type: "stateChanged" }>["change"],
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(change)) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = v;
  }
  return out;
}
