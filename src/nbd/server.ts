//! The NBD export server: sockets in, BlockDevice calls out.
//!
//! Each connection runs the pure handshake (protocol/handshake.ts), then the transmission
//! loop: decode request headers with protocol/transmission.ts, validate, dispatch to the
//! export's BlockDevice, and answer in completion order. Hot-path rules:
//! - requests are pooled objects with pre-bound callbacks: no closure per IO;
//! - read replies are read straight into a pooled buffer behind their header;
//! - sockets read into reused read slabs (see adoptWithReadBuffer and read_slabs.ts), and
//!   large write payloads go to the device from there, without a copy;
//! - replies are corked and flushed once per completing callback (see flushOnTick), and small
//!   replies are packed into one buffer, so a burst of completions costs one writev; a Unix
//!   socket too small for such a burst is grown (see sendBufferBytes);
//! - in-flight requests and bytes per connection are bounded: past the bound the socket is
//!   paused and the unparsed bytes wait.
//! Hostile input: a bad magic or a broken handshake closes that connection only; a bad
//! request gets the specification's error and the connection keeps serving; nothing can make
//! a device call outside the export (validateRequest checks every range first).

import * as fs from "node:fs";
import * as net from "node:net";
import type { BlockDevice, IoCallback } from "../storage/block_device.js";
import type { Logger } from "../io/log.js";
import { VolumeIoCounters } from "../metrics/io_counters.js";
import { BufferPool } from "./buffer_pool.js";
import { IN_PLACE_PAYLOAD_MAX, ReadSlabs, type ReadSlab } from "./read_slabs.js";
import { toNbdErrno } from "./errors.js";
import { adoptReadingInto, readsIntoOwnBuffers } from "../io/socket_reads.js";
import { canSpin, setSendBuffer, socketFd, spinReadable } from "./socket_native.js";
import * as C from "./protocol/constants.js";
import { Handshake, type ExportCatalog, type ExportInfo } from "./protocol/handshake.js";
import {
  decodeRequestHeader,
  encodeErrorReply,
  newRequestHeader,
  readReplyHeaderBytes,
  validateRequest,
  writeReadReplyHeader,
  writeSimpleReply,
  type RequestHeader,
  type TransmissionContext,
} from "./protocol/transmission.js";

export interface NbdExport {
  readonly name: string;
  readonly description?: string;
  readonly device: BlockDevice;
  /**
   * Where this export's client IO is counted (requests, bytes, latency). Give one that
   * outlives the server (the node daemon keeps one per volume across exports); absent: the
   * server makes its own (see NbdServer.counters).
   */
  readonly counters?: VolumeIoCounters;
}

export interface NbdServerOptions {
  readonly exports: readonly NbdExport[];
  readonly logger: Logger;
  /** Requests one connection may have in flight before its socket is paused. @default 256 */
  readonly inflightMax?: number;
  /** Payload and reply bytes one connection may hold in flight. @default 256 MiB */
  readonly inflightBytesMax?: number;
  /** A client that has not finished the handshake by then is disconnected. @default 30000 */
  readonly handshakeTimeoutMs?: number;
  /**
   * Adaptive busy polling for depth-1 clients: once a connection has no request left and its
   * client has been answering each reply within twice this time, the server polls the socket
   * this long before the event loop sleeps, so the next request costs no wake-up. Burns CPU
   * while such a client is active; 0 turns it off. @default 0
   */
  readonly busyPollMicros?: number;
}

/** How to reach one listener, as clients write it. */
export interface ListenAddress {
  readonly kind: "tcp" | "unix";
  readonly uri: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
}

class Catalog implements ExportCatalog {
  private readonly byName = new Map<
    string,
    { info: ExportInfo; device: BlockDevice; counters: VolumeIoCounters }
  >();
  private readonly infos: ExportInfo[] = [];

  constructor(exports: readonly NbdExport[]) {
    for (const e of exports) {
      const device = e.device;
      const info: ExportInfo = {
        name: e.name,
        description: e.description ?? "",
        // A getter: a device that grows (online resize) is offered at its new size to
        // clients that connect afterwards; connected ones keep the size they negotiated.
        get sizeBytes(): number {
          return device.sizeBytes;
        },
        readOnly: e.device.readOnly,
        canTrim: e.device.canTrim,
        canFastZero: e.device.canFastZero,
      };
      this.byName.set(e.name, {
        info,
        device: e.device,
        counters: e.counters ?? new VolumeIoCounters(),
      });
      this.infos.push(info);
    }
  }

  list(): readonly ExportInfo[] {
    return this.infos;
  }

  find(name: string): ExportInfo | undefined {
    // The empty name asks for the default export: the first one configured.
    if (name === "" && !this.byName.has("")) return this.infos[0];
    return this.byName.get(name)?.info;
  }

  device(info: ExportInfo): BlockDevice {
    return this.entry(info.name).device;
  }

  counters(name: string): VolumeIoCounters {
    return this.entry(name).counters;
  }

  private entry(name: string): { device: BlockDevice; counters: VolumeIoCounters } {
    const entry = this.byName.get(name);
    if (!entry) throw new Error(`export ${name} vanished from the catalog`);
    return entry;
  }
}

export class NbdServer {
  readonly catalog: Catalog;
  readonly logger: Logger;
  readonly pool = new BufferPool();
  readonly inflightMax: number;
  readonly busyPollMicros: number;
  readonly inflightBytesMax: number;
  readonly handshakeTimeoutMs: number;
  private readonly listeners: { server: net.Server; path?: string }[] = [];
  private readonly connections = new Set<NbdConnection>();
  private nextConnectionId = 1;
  shuttingDown = false;

  constructor(options: NbdServerOptions) {
    this.catalog = new Catalog(options.exports);
    this.logger = options.logger;
    this.inflightMax = options.inflightMax ?? 256;
    this.inflightBytesMax = options.inflightBytesMax ?? 256 * 1024 * 1024;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;
    this.busyPollMicros = canSpin() ? (options.busyPollMicros ?? 0) : 0;
  }

  async listenTcp(host: string, port: number): Promise<ListenAddress> {
    const server = this.newServer(false);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port }, () => resolve());
    });
    this.listeners.push({ server });
    const address = server.address() as net.AddressInfo;
    const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const first = this.catalog.list()[0]?.name ?? "";
    return {
      kind: "tcp",
      uri: `nbd://${shownHost}:${address.port}/${encodeURIComponent(first)}`,
      host: address.address,
      port: address.port,
    };
  }

  async listenUnix(path: string): Promise<ListenAddress> {
    removeStaleSocket(path);
    const server = this.newServer(true);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path }, () => resolve());
    });
    this.listeners.push({ server, path });
    const first = this.catalog.list()[0]?.name ?? "";
    return { kind: "unix", uri: `nbd+unix:///${encodeURIComponent(first)}?socket=${path}`, path };
  }

  /** Stops listening, lets in-flight requests finish (new ones get ESHUTDOWN), then closes. */
  async close(graceMs = 5000): Promise<void> {
    this.shuttingDown = true;
    const closing = this.listeners.map(
      (l) =>
        new Promise<void>((resolve) => {
          l.server.close(() => resolve());
          if (l.path) fs.rmSync(l.path, { force: true });
        }),
    );
    for (const c of this.connections) c.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of this.connections) c.destroy("server shutdown");
    await Promise.all(closing);
  }

  /** The client IO counters of export `name` (throws if there is no such export). */
  counters(name: string): VolumeIoCounters {
    return this.catalog.counters(name);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** `unix`: the listener is a Unix socket (see sendBufferBytes). */
  private newServer(unix: boolean): net.Server {
    const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
      if (this.shuttingDown) {
        accepted.destroy();
        return;
      }
      let conn: NbdConnection | null = null;
      const adopted = adoptWithReadBuffer(accepted, (n, buf) =>
        conn!.onData(buf.subarray(0, n), true),
      );
      const socket = adopted.socket;
      conn = new NbdConnection(this, socket, this.nextConnectionId++, adopted.slabs, unix);
      this.connections.add(conn);
      socket.once("close", () => this.connections.delete(conn));
    });
    // Errors while listening reach the caller of listenTcp/listenUnix; later ones are logged.
    server.on("error", (err) => {
      if (server.listening) this.logger.error("listener failed", { error: err.message });
    });
    return server;
  }
}

/**
 * The send buffer a Unix-socket connection grows to (SO_SNDBUF; the kernel caps it at
 * net.core.wmem_max and doubles it) the first time its replies do not fit in the socket. The
 * default, about 208 KiB, holds less than two 128 KiB read replies, so a burst of replies left
 * in many partial writev calls, each followed by a wait for the client to drain the socket and
 * a wake-up of the loop: about one epoll_pwait, 0.7 writev and 0.75 context switches per 128K
 * read at depth 16. With room for the burst, one writev sends 16 replies or more. Only once
 * needed: set on every connection, it cost 128K sequential writes (which get small replies)
 * about 5% CPU per request, for reasons not found. TCP sockets keep the kernel's autotuning,
 * which setting SO_SNDBUF would switch off. MIRRA_SNDBUF=0 keeps the default.
 */
const sendBufferBytes = Number(process.env["MIRRA_SNDBUF"] ?? 4 * 1024 * 1024);

/**
 * Re-wraps an accepted (still paused) socket so that the kernel copies into the connection's
 * reused read slabs (see read_slabs.ts) instead of a fresh 64 KiB buffer per read: fewer
 * syscalls, fewer wakeups of the sender, no allocation per read, and large write payloads
 * used in place (see io/socket_reads.ts).
 */
function adoptWithReadBuffer(
  accepted: net.Socket,
  onRead: (n: number, buf: Uint8Array) => void,
): { socket: net.Socket; slabs: ReadSlabs | null } {
  const slabs = new ReadSlabs();
  const socket = adoptReadingInto(accepted, {
    buffer: () => slabs.readTarget(),
    callback: (n, buf) => {
      onRead(n, buf);
      slabs.received(n);
    },
  });
  return { socket, slabs: readsIntoOwnBuffers(socket) ? slabs : null };
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.statSync(path).isSocket()) fs.rmSync(path);
  } catch {
    // Nothing there: the usual case.
  }
}

/** One request in flight; pooled per connection so its callbacks are bound once. */
class NbdRequest {
  type = 0;
  flags = 0;
  cookieHi = 0;
  cookieLo = 0;
  offset = 0;
  length = 0;
  /** Read: header + data reply buffer. Write: the payload. */
  buf: Uint8Array | null = null;
  /** Whether `buf` came from the pool and goes back to it. */
  bufPooled = false;
  /** The read slab `buf` is a view of, pinned until the device is done with it. */
  slab: ReadSlab | null = null;
  /** Bytes this request counts against the connection's in-flight budget. */
  bytesHeld = 0;
  /** When it went to the device (performance.now, ms), for the latency histograms. */
  startMs = 0;
  readonly ioCallback: IoCallback;
  readonly sentCallback: () => void;

  constructor(conn: NbdConnection) {
    this.ioCallback = (err) => conn.onIoDone(this, err);
    this.sentCallback = () => conn.onReplySent(this);
  }

  setFrom(h: RequestHeader): void {
    this.type = h.type;
    this.flags = h.flags;
    this.cookieHi = h.cookieHi;
    this.cookieLo = h.cookieLo;
    this.offset = h.offset;
    this.length = h.length;
  }
}

const SMALL_BATCH_BYTES = 64 * 1024;
/** Write payloads from this size up are used in place in the read slabs (see read_slabs.ts). */
const IN_PLACE_PAYLOAD_MIN = 32 * 1024;
const writeInPlace = process.env["MIRRA_WRITE_IN_PLACE"] !== "0";
/**
 * Replies go out once the callback that completed them returns (process.nextTick), which
 * packs every reply of one socket read or one pool job into one writev without waiting for
 * the loop's check phase. MIRRA_FLUSH=immediate defers to setImmediate instead, batching a
 * whole loop iteration, for A/B measurements.
 */
const flushOnTick = process.env["MIRRA_FLUSH"] !== "immediate";

class NbdConnection {
  private readonly server: NbdServer;
  private readonly socket: net.Socket;
  /** The read slabs behind transient chunks; null when Node allocates the read buffers. */
  private readonly slabs: ReadSlabs | null;
  private readonly log: Logger;
  private handshake: Handshake | null;
  private handshakeTimer: NodeJS.Timeout | null;
  private device: BlockDevice | null = null;
  private counters: VolumeIoCounters | null = null;
  private ctx: TransmissionContext | null = null;
  private structured = false;

  // Request parsing state.
  private readonly header: RequestHeader = newRequestHeader();
  private readonly headerBuf = new Uint8Array(C.REQUEST_HEADER_BYTES);
  private headerFill = 0;
  /** A WRITE whose payload is still arriving. */
  private payloadReq: NbdRequest | null = null;
  private payloadFill = 0;
  /** The payload arriving is received in place, in the read slabs. */
  private payloadInPlace = false;
  /** Payload bytes of a rejected WRITE still to skip. */
  private discardBytes = 0;
  /** Bytes not parsed yet because the in-flight bounds were reached. */
  private stalled: Uint8Array | null = null;
  /** Whether the chunk being parsed is the reused read buffer (see onData). */
  private chunkTransient = false;

  // In-flight accounting.
  private inflight = 0;
  private inflightBytes = 0;
  private readonly freeRequests: NbdRequest[] = [];

  // Output batching.
  private corked = false;
  private flushScheduled = false;
  private readonly small = new Uint8Array(SMALL_BATCH_BYTES);
  private smallFill = 0;
  private readonly flushCallback = (): void => this.flushOutput();
  /** A Unix socket whose send buffer has not been grown yet (see sendBufferBytes). */
  private mayGrowSendBuffer: boolean;

  // Busy polling (NbdServerOptions.busyPollMicros).
  /** Read replies handed to the socket and not yet sent: done, as far as the client knows. */
  private readsSending = 0;
  /** When the connection last fell idle after a flush (performance.now), or 0. */
  private idleSinceMs = 0;
  /** Requests in a row that came back quickly after the connection fell idle. */
  private quickAnswers = 0;

  private state: "handshake" | "opening" | "transmission" | "draining" | "closed" = "handshake";
  /** Requests that arrived while the device was being opened (auto-promote), in order. */
  private early: Uint8Array[] = [];
  /** device.open was called, so device.release is owed when the connection ends. */
  private deviceOpened = false;

  constructor(
    server: NbdServer,
    socket: net.Socket,
    id: number,
    slabs: ReadSlabs | null,
    unix: boolean,
  ) {
    this.server = server;
    this.socket = socket;
    this.mayGrowSendBuffer = unix && sendBufferBytes > 0;
    this.slabs = writeInPlace ? slabs : null;
    this.log = server.logger.child({ conn: id, peer: socket.remoteAddress ?? "unix" });
    this.handshake = new Handshake(server.catalog);
    socket.setNoDelay(true);
    if (socket.listenerCount("data") === 0 && !readsIntoOwnBuffers(socket)) {
      socket.on("data", (chunk: Buffer) => this.onData(chunk, false));
    }
    socket.resume();
    socket.on("error", (err) => this.log.debug("socket error", { error: err.message }));
    socket.on("close", () => this.onClose());
    this.handshakeTimer = setTimeout(
      () => this.destroy("handshake timed out"),
      server.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    socket.write(this.handshake.greeting());
  }

  /** Server shutdown: answer what is in flight, refuse the rest, then close. */
  shutdown(): void {
    if (this.state === "handshake" || this.state === "opening") this.destroy("server shutdown");
    else if (this.state === "transmission") this.maybeFinishDraining();
  }

  destroy(reason: string): void {
    if (this.state === "closed") return;
    this.log.debug("closing connection", { reason });
    this.state = "closed";
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.state = "closed";
    this.early = [];
    if (this.deviceOpened) {
      this.deviceOpened = false;
      this.device?.release?.();
    }
    // Requests still running complete against the device; only their replies are dropped.
  }

  /**
   * Bytes from the socket. `transient` chunks live in the connection's reused read buffer and
   * are overwritten by the next read, so nothing may keep a view of them.
   */
  onData(chunk: Uint8Array, transient: boolean): void {
    this.chunkTransient = transient;
    if (this.idleSinceMs > 0) {
      const quick = (performance.now() - this.idleSinceMs) * 1000 < 2 * this.server.busyPollMicros;
      this.quickAnswers = quick ? Math.min(this.quickAnswers + 1, 4) : 0;
      this.idleSinceMs = 0;
    }
    if (this.state === "handshake") this.onHandshakeData(chunk);
    else if (this.state === "transmission") this.parse(chunk, 0);
    else if (this.state === "opening") this.early.push(transient ? chunk.slice() : chunk);
    // In "draining" and "closed", further bytes are ignored.
  }

  private onHandshakeData(chunk: Uint8Array): void {
    const hs = this.handshake!;
    const step = hs.push(chunk);
    for (const reply of step.replies) this.socket.write(reply);
    const outcome = step.outcome;
    if (outcome.kind === "continue") return;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    if (outcome.kind === "close") {
      this.log.debug("handshake ended", { reason: outcome.reason });
      this.state = "closed";
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
      return;
    }
    this.device = this.server.catalog.device(outcome.export);
    this.counters = this.server.catalog.counters(outcome.export.name);
    this.structured = outcome.structuredReplies;
    this.ctx = {
      sizeBytes: outcome.export.sizeBytes,
      readOnly: outcome.export.readOnly,
      canTrim: outcome.export.canTrim,
      canFastZero: outcome.export.canFastZero,
      structuredReplies: outcome.structuredReplies,
    };
    this.handshake = null;
    const rest = hs.leftover();
    const device = this.device;
    if (device.open && !outcome.export.readOnly) {
      // DRBD's open(): a writable open may promote this node (auto-promote). Requests wait
      // until the device answers; a refusal still serves the client, whose writes then fail.
      this.state = "opening";
      this.deviceOpened = true;
      this.socket.pause();
      if (rest.length > 0) this.early.push(rest.slice());
      device.open((err) => this.onDeviceOpened(outcome.export.name, err));
      return;
    }
    this.startTransmission(outcome.export.name, rest);
  }

  private onDeviceOpened(name: string, err: NodeJS.ErrnoException | null): void {
    if (this.state !== "opening") return; // closed meanwhile; onClose released the device
    if (err)
      this.log.warn("opening the export did not make it writable", {
        export: name,
        error: err.message,
      });
    const early = this.early;
    this.early = [];
    this.chunkTransient = false; // copies this connection owns, not views of the read slabs
    this.startTransmission(name, early.length === 1 ? early[0]! : Buffer.concat(early));
    // Parsing may have stalled again (in-flight bounds) or closed the connection.
    if (!this.stalled && this.socket.readable) this.socket.resume();
  }

  private startTransmission(name: string, rest: Uint8Array): void {
    this.state = "transmission";
    this.log.debug("transmission started", { export: name, structured: this.structured });
    if (rest.length > 0) this.parse(rest, 0);
  }

  /** Parses requests from `chunk[at..]`, dispatching each as soon as it is complete. */
  private parse(chunk: Uint8Array, at: number): void {
    let i = at;
    while (i < chunk.length && this.state === "transmission") {
      if (this.payloadReq) {
        i = this.fillPayload(chunk, i);
        continue;
      }
      if (this.discardBytes > 0) {
        const n = Math.min(this.discardBytes, chunk.length - i);
        this.discardBytes -= n;
        i += n;
        continue;
      }
      if (this.overBudget()) {
        this.stalled = this.chunkTransient ? chunk.slice(i) : chunk.subarray(i);
        this.socket.pause();
        return;
      }
      let h: boolean;
      if (this.headerFill === 0 && chunk.length - i >= C.REQUEST_HEADER_BYTES) {
        h = decodeRequestHeader(chunk, i, this.header);
        i += C.REQUEST_HEADER_BYTES;
      } else {
        const n = Math.min(C.REQUEST_HEADER_BYTES - this.headerFill, chunk.length - i);
        this.headerBuf.set(chunk.subarray(i, i + n), this.headerFill);
        this.headerFill += n;
        i += n;
        if (this.headerFill < C.REQUEST_HEADER_BYTES) return;
        this.headerFill = 0;
        h = decodeRequestHeader(this.headerBuf, 0, this.header);
      }
      if (!h) {
        this.log.warn("bad request magic: closing the connection");
        this.destroy("bad request magic");
        return;
      }
      i = this.onRequest(chunk, i);
    }
  }

  /** Handles one decoded header; returns where parsing continues in `chunk`. */
  private onRequest(chunk: Uint8Array, i: number): number {
    const h = this.header;
    if (h.type === C.CMD_DISC) {
      this.state = "draining";
      this.maybeFinishDraining();
      return chunk.length;
    }
    const verdict = this.server.shuttingDown
      ? { errno: C.NBD_ESHUTDOWN, message: "the server is shutting down" }
      : validateRequest(h, this.ctx!);
    if (verdict.errno !== C.NBD_OK) {
      if (h.type === C.CMD_WRITE) this.discardBytes = h.length;
      this.log.debug("request refused", {
        cmd: C.commandName(h.type),
        errno: verdict.errno,
        why: verdict.message,
      });
      this.sendSmall(
        encodeErrorReply(this.structured, h.cookieHi, h.cookieLo, verdict.errno, verdict.message),
      );
      return i;
    }
    const req = this.freeRequests.pop() ?? new NbdRequest(this);
    req.setFrom(h);
    this.inflight++;
    if (h.type !== C.CMD_WRITE) {
      this.dispatch(req);
      return i;
    }
    const available = chunk.length - i;
    if (available >= h.length && this.chunkTransient && (h.flags & C.CMD_FLAG_FUA) === 0) {
      // The payload sits in the reused read buffer: write it from there if the device can do
      // it right now, which saves copying it out first.
      // Not `writeNow?.() ?? false`: null means written, and ?? would turn it into false.
      const dev = this.device!;
      req.startMs = performance.now();
      const done = dev.writeNow ? dev.writeNow(chunk, i, h.length, h.offset) : false;
      if (done !== false) {
        this.onIoDone(req, done);
        return i + h.length;
      }
    }
    const slabs = this.slabs;
    if (
      slabs &&
      this.chunkTransient &&
      h.length >= IN_PLACE_PAYLOAD_MIN &&
      h.length <= IN_PLACE_PAYLOAD_MAX &&
      slabs.holds(chunk)
    ) {
      // Large payload: leave it where the socket read put it (see read_slabs.ts).
      req.bytesHeld = h.length;
      this.inflightBytes += h.length;
      if (available >= h.length) {
        const pinned = slabs.pin(chunk, i, h.length);
        req.slab = pinned.slab;
        req.buf = pinned.payload;
        req.bufPooled = false;
        this.dispatch(req);
        return i + h.length;
      }
      slabs.beginInPlace(chunk, i, h.length);
      this.payloadReq = req;
      this.payloadInPlace = true;
      this.payloadFill = available;
      return chunk.length;
    }
    if (available >= h.length && !this.chunkTransient) {
      // The whole payload is here: use it in place (Node never reuses its own read chunks).
      req.buf = chunk.subarray(i, i + h.length);
      req.bufPooled = false;
      this.dispatch(req);
      return i + h.length;
    }
    req.buf = this.server.pool.get(h.length);
    req.bufPooled = true;
    req.bytesHeld = h.length;
    this.inflightBytes += h.length;
    this.payloadReq = req;
    this.payloadFill = 0;
    return this.fillPayload(chunk, i);
  }

  private fillPayload(chunk: Uint8Array, i: number): number {
    const req = this.payloadReq!;
    const n = Math.min(req.length - this.payloadFill, chunk.length - i);
    // In place, the bytes are already where they belong: the slab keeps them contiguous.
    if (!this.payloadInPlace) req.buf!.set(chunk.subarray(i, i + n), this.payloadFill);
    this.payloadFill += n;
    if (this.payloadFill === req.length) {
      this.payloadReq = null;
      if (this.payloadInPlace) {
        this.payloadInPlace = false;
        const pinned = this.slabs!.completeInPlace();
        req.slab = pinned.slab;
        req.buf = pinned.payload;
      }
      this.dispatch(req);
    }
    return i + n;
  }

  private dispatch(req: NbdRequest): void {
    const dev = this.device!;
    req.startMs = performance.now();
    const fua = (req.flags & C.CMD_FLAG_FUA) !== 0;
    switch (req.type) {
      case C.CMD_READ: {
        const hdr = readReplyHeaderBytes(this.structured);
        req.buf = this.server.pool.get(hdr + req.length);
        req.bufPooled = true;
        req.bytesHeld = hdr + req.length;
        this.inflightBytes += req.bytesHeld;
        dev.read(req.buf, hdr, req.length, req.offset, req.ioCallback);
        return;
      }
      case C.CMD_WRITE:
        dev.write(req.buf!, 0, req.length, req.offset, fua, req.ioCallback);
        return;
      case C.CMD_FLUSH:
        dev.flush(req.ioCallback);
        return;
      case C.CMD_TRIM:
        dev.trim(req.offset, req.length, fua, req.ioCallback);
        return;
      case C.CMD_WRITE_ZEROES:
        dev.writeZeroes(
          req.offset,
          req.length,
          {
            noHole: (req.flags & C.CMD_FLAG_NO_HOLE) !== 0,
            fastZero: (req.flags & C.CMD_FLAG_FAST_ZERO) !== 0,
            fua,
          },
          req.ioCallback,
        );
        return;
      default:
        // validateRequest admits nothing else.
        throw new Error(`dispatch of unvalidated command ${req.type}`);
    }
  }

  /** A device call finished: answer the client (unless it is gone) and release resources. */
  onIoDone(req: NbdRequest, err: NodeJS.ErrnoException | null): void {
    const alive = this.state === "transmission" || this.state === "draining";
    this.count(req, err !== null);
    if (err) {
      const errno = toNbdErrno(err);
      this.log.warn("IO failed", {
        cmd: C.commandName(req.type),
        offset: req.offset,
        length: req.length,
        error: err.message,
      });
      if (alive)
        this.sendSmall(
          encodeErrorReply(this.structured, req.cookieHi, req.cookieLo, errno, err.message),
        );
      this.release(req);
      return;
    }
    if (req.type === C.CMD_READ && alive) {
      writeReadReplyHeader(req.buf!, this.structured, req);
      this.cork();
      this.readsSending++;
      this.socket.write(req.buf!, req.sentCallback);
      return; // released once the socket no longer needs the buffer
    }
    if (alive) this.sendSimpleOk(req);
    this.release(req);
  }

  /** Counts a finished request: plain additions and one histogram bucket, no allocation. */
  private count(req: NbdRequest, failed: boolean): void {
    const c = this.counters!;
    const seconds = (performance.now() - req.startMs) / 1000;
    if (failed) c.errors++;
    switch (req.type) {
      case C.CMD_READ:
        c.reads++;
        c.readBytes += req.length;
        c.readLatency.observe(seconds);
        return;
      case C.CMD_WRITE:
      case C.CMD_WRITE_ZEROES:
        c.writes++;
        c.writtenBytes += req.length;
        c.writeLatency.observe(seconds);
        return;
      case C.CMD_FLUSH:
        c.flushes++;
        return;
    }
  }

  onReplySent(req: NbdRequest): void {
    this.readsSending--;
    this.release(req);
  }

  private release(req: NbdRequest): void {
    if (req.bufPooled && req.buf) this.server.pool.put(req.buf);
    if (req.slab) this.slabs!.unpin(req.slab);
    req.slab = null;
    req.buf = null;
    req.bufPooled = false;
    this.inflightBytes -= req.bytesHeld;
    req.bytesHeld = 0;
    this.inflight--;
    if (this.freeRequests.length < this.server.inflightMax) this.freeRequests.push(req);
    if (this.stalled && !this.overBudget()) {
      const rest = this.stalled;
      this.stalled = null;
      if (this.state === "transmission") {
        this.parse(rest, 0);
        if (!this.stalled) this.socket.resume();
      }
    }
    if (this.state === "draining" || this.server.shuttingDown) this.maybeFinishDraining();
  }

  /** The in-flight bounds are reached: parsing waits for releases. */
  private overBudget(): boolean {
    return (
      this.inflight >= this.server.inflightMax ||
      this.inflightBytes + (this.slabs?.retiredPinnedBytes ?? 0) >= this.server.inflightBytesMax
    );
  }

  private sendSimpleOk(req: NbdRequest): void {
    if (this.smallFill + C.SIMPLE_REPLY_HEADER_BYTES > this.small.length) this.flushSmall();
    writeSimpleReply(this.small, this.smallFill, 0, req.cookieHi, req.cookieLo);
    this.smallFill += C.SIMPLE_REPLY_HEADER_BYTES;
    this.scheduleFlush();
  }

  private sendSmall(bytes: Uint8Array): void {
    if (this.smallFill + bytes.length > this.small.length) this.flushSmall();
    if (bytes.length > this.small.length) {
      this.cork();
      this.socket.write(bytes);
      return;
    }
    this.small.set(bytes, this.smallFill);
    this.smallFill += bytes.length;
    this.scheduleFlush();
  }

  private cork(): void {
    if (!this.corked) {
      this.socket.cork();
      this.corked = true;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (flushOnTick) process.nextTick(this.flushCallback);
      else setImmediate(this.flushCallback);
    }
  }

  private flushSmall(): void {
    if (this.smallFill === 0) return;
    // A copy goes to the socket (which may hold it), so the batch buffer is reused.
    const out = this.small.slice(0, this.smallFill);
    this.smallFill = 0;
    if (!this.socket.destroyed) this.socket.write(out);
  }

  private flushOutput(): void {
    this.flushScheduled = false;
    this.flushSmall();
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    // What the kernel did not take waits in Node's queue: the socket is too small for this
    // client's bursts. Growing it wakes the socket as writable, and the rest goes at once.
    if (this.mayGrowSendBuffer && this.socket.writableLength > 0) {
      this.mayGrowSendBuffer = false;
      setSendBuffer(this.socket, sendBufferBytes);
    }
    if (
      this.server.busyPollMicros > 0 &&
      this.state === "transmission" &&
      this.inflight === this.readsSending &&
      this.socket.writableLength === 0
    ) {
      // Everything answered: the client's next move decides. A client that has been coming
      // back at once is worth waiting for awake (see NbdServerOptions.busyPollMicros).
      this.idleSinceMs = performance.now();
      if (this.quickAnswers >= 2) {
        const fd = socketFd(this.socket);
        if (fd >= 0) spinReadable(fd, this.server.busyPollMicros);
      }
    }
  }

  private maybeFinishDraining(): void {
    if (this.inflight > 0 || this.state === "closed") return;
    this.flushOutput();
    this.state = "closed";
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}
