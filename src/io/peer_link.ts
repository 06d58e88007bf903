//! Peer links: one TCP (optionally TLS) connection per pair of nodes of a resource, carrying
//! the frames of docs/protocol.md. This is shell code: sockets, timers, randomness and HMAC
//! live here; framing, message layouts and handshake rules come from src/engine/wire.
//!
//! Model:
//! - For each pair of nodes exactly one side dials (`PeerLink.dial`) and the other accepts
//!   (`PeerListener.accept`); the daemon decides which (for example, the lower node id
//!   dials). The dialer reconnects with exponential backoff, bounded by
//!   `reconnectDelayMsMax`, until `close()`.
//! - A connection becomes usable only after the handshake: hellos checked, and with a
//!   shared secret both sides proved it by HMAC-SHA256 challenge-response. Replication
//!   frames received earlier are a protocol error; frames received after the peer's proof
//!   but before our own check finished are held back, and dropped if the check fails.
//! - Outgoing frames are corked and flushed once per event-loop turn (setImmediate), so a
//!   burst of sends from one turn leaves in one vectored write; block data is not copied.
//! - Keepalive: when nothing arrived for `pingIntervalMs`, the link sends `ping`; when still
//!   nothing arrived `pingTimeoutMs` later, the connection is dropped. Every frame counts as
//!   a sign of life. Incoming pings are answered here and still delivered upwards (the
//!   engine answers them too; an extra pingAck is harmless to it).
//! - Round-trip time: a ping we send (keepalive or the engine's) is answered at once by the
//!   peer's link, so the first pingAck after it times the round trip, including whatever
//!   queue it waited behind. No ping is sent just to measure: every pingAck also reaches the
//!   engine, which takes one after its state message as proof the peer saw that state
//!   (quorum confirmation), so more pings would mean more acks it could take for the wrong
//!   one. Samples therefore come from idle links (every `pingIntervalMs`) and engine pings.
//! - Any error ends the connection, never the process: the owner hears `onDisconnected`,
//!   and a dialing link tries again.

import * as net from "node:net";
import * as tls from "node:tls";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { MirraError, ProtocolError } from "../stdx/errors.js";
import { assert } from "../stdx/assert.js";
import { createLogger, type Logger } from "./log.js";
import { Histogram, rttBucketsSeconds } from "../metrics/io_counters.js";
import { specByName } from "../engine/wire/schema.js";
import type { BulkBufferPool } from "./bulk_buffer_pool.js";
import {
  adoptReadingInto,
  connectReadingInto,
  readsIntoOwnBuffers,
  type ReadInto,
} from "./socket_reads.js";
import type { PeerMessage } from "../engine/types.js";
import {
  FrameParser,
  authMessage,
  checkHello,
  encodeFrameParts,
  helloFor,
  payloadBytesMax,
  rejectReason,
  type HandshakeExpectation,
  type HandshakeMessage,
  type WireMessage,
} from "../engine/wire/mod.js";

export interface PeerTlsOptions {
  /** PEM certificate chain of this node. */
  readonly cert: string | Buffer;
  /** PEM private key of this node. */
  readonly key: string | Buffer;
  /** PEM CA certificate(s) that signed the peers' certificates. Peers must present one. */
  readonly ca: string | Buffer;
}

export interface PeerLinkOptions extends HandshakeExpectation {
  /** Shared secret of the resource; absent = no authentication (trusted network only). */
  readonly secret?: string | Uint8Array;
  readonly tls?: PeerTlsOptions;
  /** Silence before a keepalive ping; 0 disables keepalive. @default 10000 */
  readonly pingIntervalMs?: number;
  /** Silence after a ping before the connection is dropped. @default 5000 */
  readonly pingTimeoutMs?: number;
  /** Time each handshake step may take (waiting for one peer frame). @default 10000 */
  readonly handshakeTimeoutMs?: number;
  /** First reconnect delay, doubled after each failure. @default 100 */
  readonly reconnectDelayMsMin?: number;
  /** Upper bound of the reconnect delay. @default 10000 */
  readonly reconnectDelayMsMax?: number;
  /**
   * Bytes queued on the socket beyond which the peer counts as too slow and the connection
   * is dropped (the engine then tracks the peer in its bitmap instead of waiting for it).
   * @default 134217728 (128 MiB)
   */
  readonly sendQueueBytesMax?: number;
  /**
   * Buffers large resync replies are received into; the owner gives each back when the
   * engine says it is done with the data (the "dataDone" effect). Absent: fresh memory.
   */
  readonly payloadPool?: BulkBufferPool;
  readonly logger?: Logger;
}

/** Largest frame payload accepted before the peer is authenticated. */
export const handshakePayloadBytesMax = 4096;

export interface PeerLinkCallbacks {
  /** A replication message from the peer, in order. Block data aliases the socket chunk. */
  onMessage(message: PeerMessage): void;
  /** The handshake completed: messages may be sent now. */
  onConnected?(info: { readonly version: number; readonly features: number }): void;
  /** The connection ended (after onConnected); `reason` is for logs. */
  onDisconnected?(reason: string): void;
}

type Phase = "handshake" | "open" | "closed";

/** One socket with framing, corked writes and a handshake-time message queue. */
class Channel {
  private readonly parser: FrameParser;
  private phase: Phase = "handshake";
  private readonly queue: WireMessage[] = [];
  private waiter: ((m: WireMessage | Error) => void) | undefined;
  private corked = false;
  private sendQueueBytesMax = Number.MAX_SAFE_INTEGER;
  private closeReason: string | undefined;
  /** The read buffers handed to the socket (see nextReadBuffer). */
  private window: Uint8Array | undefined;
  private scratch: Buffer | undefined;
  /** Bytes at the start of `scratch` that received frames still view. */
  private scratchKept = 0;
  /** Where large resync replies are received (see payloadBuffer); set by the link. */
  payloadPool: BulkBufferPool | undefined;
  onOpenMessage: (m: WireMessage) => void = () => {};
  onClose: (reason: string) => void = () => {};
  lastReceiveMs = Date.now();

  readonly socket: net.Socket;

  /**
   * `makeSocket` opens (or adopts) the socket; it may have it read into the buffers of the
   * `ReadInto` it is given (see io/socket_reads.ts), which a TLS socket ignores.
   */
  constructor(
    makeSocket: (into: ReadInto) => net.Socket,
    private readonly log: Logger,
  ) {
    this.parser = new FrameParser(
      (m) => this.receive(m),
      (bytes, code) => this.payloadBuffer(bytes, code),
    );
    this.parser.limitPayload(handshakePayloadBytesMax);
    const socket = makeSocket({
      buffer: () => this.nextReadBuffer(),
      callback: (bytes, buf) => this.onRead(bytes, buf),
    });
    this.socket = socket;
    socket.setNoDelay(true);
    if (!readsIntoOwnBuffers(socket))
      socket.on("data", (chunk: Buffer) => {
        this.lastReceiveMs = Date.now();
        this.take(() => this.parser.push(chunk));
      });
    socket.on("error", (err) => this.close(err.message));
    socket.on("close", () => this.close("connection closed by peer"));
    // An accepted socket arrives paused (see PeerListener); the others flow already.
    socket.resume();
  }

  /**
   * Memory for a payload that spans socket reads. A large resync reply's comes from
   * `payloadPool`, placed to end on a page boundary: its block data (the last field, whole
   * pages) then starts on one, and in page-aligned pool memory goes to an O_DIRECT write
   * without a copy. The owner gives it back when the engine is done with the data.
   */
  private payloadBuffer(bytes: number, code: number): Uint8Array {
    const pool = this.payloadPool;
    if (
      pool === undefined ||
      code !== resyncReplyCode ||
      bytes < inPlaceReadBytesMin ||
      bytes + pageBytes > pool.bytes
    )
      return Buffer.allocUnsafe(bytes);
    const end = Math.ceil(bytes / pageBytes) * pageBytes;
    return pool.take().subarray(end - bytes, end);
  }

  /** Runs a parser step; a malformed frame closes the connection. */
  private take(step: () => void): void {
    try {
      step();
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.log.warn("peer protocol error", { error: err.message });
      this.close(`protocol error: ${err.message}`);
    }
  }

  /**
   * Where the socket reads next: into the payload being gathered (a resync frame's 1 MiB
   * lands in place, not copied out of 64 KiB chunks), else into the scratch slab, after the
   * bytes received frames still view (see scratchBytes).
   */
  private nextReadBuffer(): Uint8Array {
    this.window = this.parser.payloadWindow(inPlaceReadBytesMin);
    if (this.window !== undefined) return this.window;
    if (this.scratch === undefined || this.scratch.length - this.scratchKept < readBytesMin) {
      this.scratch = Buffer.allocUnsafeSlow(scratchBytes);
      this.scratchKept = 0;
    }
    return this.scratch.subarray(this.scratchKept);
  }

  private onRead(bytes: number, buf: Uint8Array): void {
    this.lastReceiveMs = Date.now();
    if (this.closeReason !== undefined) return;
    if (buf === this.window) {
      this.take(() => this.parser.filled(bytes));
      return;
    }
    this.take(() => this.parser.push(buf.subarray(0, bytes)));
    // Frames decoded from these bytes keep views of them: the next read goes after them.
    if (this.parser.takeKept()) this.scratchKept += bytes;
  }

  private receive(m: WireMessage): void {
    if (this.phase === "open") this.onOpenMessage(m);
    else if (this.phase === "handshake") {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(m);
      } else this.queue.push(m);
    }
  }

  /** The next handshake-phase message, or a rejection after `timeoutMs`. */
  next(timeoutMs: number): Promise<WireMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closeReason !== undefined)
      return Promise.reject(new MirraError("MIRRA_E_PROTOCOL", this.closeReason));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ProtocolError(`handshake timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }

  /** Switches to the open phase and delivers what arrived after the handshake. */
  open(sendQueueBytesMax: number): void {
    this.phase = "open";
    this.sendQueueBytesMax = sendQueueBytesMax;
    this.parser.limitPayload(payloadBytesMax);
    for (const m of this.queue.splice(0)) this.onOpenMessage(m);
  }

  /** Frames wait in the socket until this event-loop turn's uncork (setImmediate). */
  get corkedNow(): boolean {
    return this.corked;
  }

  /**
   * Queues a frame; false when the channel is closed (nothing queued). `onSent` runs once
   * the socket is done with the frame's block data (written to the kernel, or dropped with
   * the connection), after which the caller may reuse that buffer.
   */
  send(message: WireMessage, onSent?: () => void): boolean {
    if (this.closeReason !== undefined) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    const parts = encodeFrameParts(message);
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(parts[i]!);
    if (onSent === undefined) this.socket.write(parts[last]!);
    else this.socket.write(parts[last]!, () => onSent());
    if (this.socket.writableLength > this.sendQueueBytesMax) {
      this.log.warn("peer too slow: send queue full, disconnecting", {
        queuedBytes: this.socket.writableLength,
      });
      this.close(`send queue above ${this.sendQueueBytesMax} bytes`);
    }
    return true;
  }

  close(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.phase = "closed";
    if (this.corked) this.socket.uncork();
    // end() flushes what is buffered (a reject frame) before the FIN; then let go.
    this.socket.end(() => this.socket.destroy());
    const lingerTimer = setTimeout(() => this.socket.destroy(), 2000);
    lingerTimer.unref();
    const w = this.waiter;
    this.waiter = undefined;
    w?.(new MirraError("MIRRA_E_PROTOCOL", reason));
    this.onClose(reason);
  }

  /** Sends `reject` and closes; returns the error for the caller to throw. */
  reject(reason: number, message: string, code: "MIRRA_E_PROTOCOL" | "MIRRA_E_AUTH"): Error {
    this.send({ type: "reject", reason, message });
    // Flush the reject before closing; end() sends buffered data first.
    this.socket.uncork();
    this.corked = false;
    this.close(message);
    return new MirraError(code, message);
  }
}

function hmac(secret: string | Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(message).digest());
}

type Hello = Extract<HandshakeMessage, { type: "hello" }>;

async function expect<T extends WireMessage["type"]>(
  ch: Channel,
  type: T,
  timeoutMs: number,
): Promise<Extract<WireMessage, { type: T }>> {
  const m = await ch.next(timeoutMs);
  if (m.type === "reject")
    throw new MirraError(
      m.reason === rejectReason.auth ? "MIRRA_E_AUTH" : "MIRRA_E_PROTOCOL",
      `the peer refused the connection: ${m.message}`,
    );
  if (m.type !== type)
    throw ch.reject(rejectReason.protocol, `expected ${type}, got ${m.type}`, "MIRRA_E_PROTOCOL");
  return m as Extract<WireMessage, { type: T }>;
}

/**
 * Runs the handshake of docs/protocol.md on a fresh channel. The dialer sends hello first;
 * the acceptor has already read the dialer's hello (`peerHello`) to find the link.
 */
async function handshake(
  ch: Channel,
  o: PeerLinkOptions,
  peerHello: Hello | undefined,
): Promise<{ version: number; features: number }> {
  const timeoutMs = o.handshakeTimeoutMs ?? 10000;
  if (peerHello === undefined) ch.send(helloFor(o));
  const hello = peerHello ?? (await expect(ch, "hello", timeoutMs));
  const verdict = checkHello(o, hello);
  if (!verdict.ok) throw ch.reject(verdict.reason, verdict.message, "MIRRA_E_PROTOCOL");
  if (peerHello !== undefined) ch.send(helloFor(o));
  if (o.secret !== undefined) {
    const mine = new Uint8Array(randomBytes(32));
    ch.send({ type: "authChallenge", challenge: mine });
    const theirs = (await expect(ch, "authChallenge", timeoutMs)).challenge;
    if (timingSafeEqual(mine, theirs))
      throw ch.reject(rejectReason.auth, "the peer reflected our challenge", "MIRRA_E_AUTH");
    const mac = hmac(o.secret, authMessage(theirs, o.nodeId, o.resourceName));
    ch.send({ type: "authResponse", mac });
    const answer = (await expect(ch, "authResponse", timeoutMs)).mac;
    const wanted = hmac(o.secret, authMessage(mine, o.peerNodeId, o.resourceName));
    if (!timingSafeEqual(answer, wanted))
      throw ch.reject(
        rejectReason.auth,
        `authentication of node ${o.peerNodeId} failed (different shared secret?)`,
        "MIRRA_E_AUTH",
      );
  }
  return { version: verdict.version, features: verdict.features };
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** The link to one peer: survives connections coming and going until `close()`. */
export class PeerLink {
  private channel: Channel | undefined;
  private connected = false;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingSentMs: number | undefined;
  /** performance.now() of the ping being timed, if its ack has not come. */
  private rttPingSentMs: number | undefined;
  /** Round-trip times of this link, over all its connections. */
  readonly rtt = new Histogram(rttBucketsSeconds);
  /** The latest round trip measured, in seconds; undefined before the first. */
  rttSecondsLast: number | undefined;
  readonly log: Logger;

  private constructor(
    readonly options: PeerLinkOptions,
    private readonly callbacks: PeerLinkCallbacks,
    private readonly address: PeerAddress | undefined,
  ) {
    this.log = (options.logger ?? createLogger()).child({
      resource: options.resourceName,
      peer: options.peerNodeId,
    });
  }

  /** A link that connects to `address` and keeps reconnecting until closed. */
  static dial(address: PeerAddress, options: PeerLinkOptions, cb: PeerLinkCallbacks): PeerLink {
    const link = new PeerLink(options, cb, address);
    link.connect();
    return link;
  }

  /** @internal A link fed by a PeerListener. */
  static accepting(options: PeerLinkOptions, cb: PeerLinkCallbacks): PeerLink {
    return new PeerLink(options, cb, undefined);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /**
   * Accepting links only: whether an incoming connection is adopted. While false, a peer
   * that dials in is refused with `shutdown` (our side is StandAlone towards it), so a
   * connection comes up only while both sides want it. @default true
   */
  adoptIncoming = true;

  /**
   * Drops the current connection, if any, without ending the link: a dialing link dials
   * again (after its backoff), an accepting link waits for the peer. Used when the owner
   * refuses a message (a bad frame breaks only this connection) or wants a fresh handshake.
   */
  dropConnection(reason: string): void {
    this.channel?.close(reason);
  }

  /**
   * Whether frames sent this turn still wait for the turn's uncork. They go out in the check
   * phase (setImmediate, in order of scheduling), so IO scheduled there after this is true
   * runs after they left.
   */
  get corkedNow(): boolean {
    return this.channel?.corkedNow ?? false;
  }

  /**
   * Sends a replication message; false (message dropped) when not connected. `onSent`: see
   * Channel.send; it runs only when this returns true.
   */
  send(message: PeerMessage, onSent?: () => void): boolean {
    if (!this.connected || this.channel === undefined) return false;
    if (message.type === "ping") this.notePing();
    return this.channel.send(message, onSent);
  }

  /** Ends the link for good: closes the connection and stops reconnecting. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.channel?.close("link closed locally");
  }

  /**
   * Dialing links only: dials now instead of waiting out the backoff, unless a connection is
   * up or being made. A peer that comes back asks for this with a knock (`knock`), so it
   * connects at once rather than after up to connect-int.
   */
  dialNow(): void {
    if (this.address === undefined || this.closed || this.channel !== undefined) return;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    this.log.debug("dialing now: the peer knocked");
    this.connect();
  }

  /**
   * Asks the peer at `address`, which dials us (it has the lower node id), to dial now: sends
   * our hello, which its listener answers by refusing the connection and dialing. Nothing is
   * authenticated or changed by a knock; at worst the peer dials early.
   */
  static knock(address: PeerAddress, options: PeerLinkOptions): void {
    const ch = new Channel(
      (into) => openSocket(address, options.tls, into),
      options.logger ?? createLogger(),
    );
    const timeoutMs = options.handshakeTimeoutMs ?? 10000;
    ch.send(helloFor(options));
    expect(ch, "hello", timeoutMs).then(
      () => ch.close("knock answered"),
      () => ch.close("knock answered"),
    );
  }

  private connect(): void {
    assert(this.address !== undefined, "only dialing links connect");
    if (this.closed) return;
    const address = this.address;
    this.run(new Channel((into) => openSocket(address, this.options.tls, into), this.log));
  }

  /** @internal Called by the listener with a connection whose hello names this link. */
  adopt(channel: Channel, hello: Hello): void {
    if (this.closed || !this.adoptIncoming) {
      channel.reject(rejectReason.shutdown, "link closed", "MIRRA_E_PROTOCOL");
      return;
    }
    // A peer that reconnects while we still hold its old connection wins: the old one is
    // half-dead (we missed its close), the new one is what the peer is using.
    this.channel?.close("replaced by a new connection from the peer");
    this.run(channel, hello);
  }

  /**
   * Takes `ch` as the link's connection and runs the handshake: at once for a connection the
   * listener accepted (`hello`: the peer's, already read), else once it connected.
   */
  private run(ch: Channel, hello?: Hello): void {
    const accepted = hello !== undefined;
    this.channel = ch;
    ch.payloadPool = this.options.payloadPool;
    ch.onClose = (reason) => this.onChannelClosed(ch, reason);
    ch.onOpenMessage = (m) => this.deliver(ch, m);
    const ready = this.options.tls && !accepted ? "secureConnect" : "connect";
    const start = (): void => {
      handshake(ch, this.options, hello).then(
        (info) => this.onHandshakeDone(ch, info),
        (err: unknown) => this.onHandshakeFailed(ch, err),
      );
    };
    if (accepted || this.address === undefined) start();
    else ch.socket.once(ready, start);
  }

  private onHandshakeDone(ch: Channel, info: { version: number; features: number }): void {
    if (this.channel !== ch || this.closed) return;
    this.connected = true;
    this.attempt = 0;
    this.log.info("peer connected", { version: info.version, features: info.features });
    this.armKeepalive(ch);
    this.callbacks.onConnected?.(info);
    ch.open(this.options.sendQueueBytesMax ?? 128 * 1024 * 1024);
  }

  private onHandshakeFailed(ch: Channel, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const auth = err instanceof MirraError && err.code === "MIRRA_E_AUTH";
    if (auth) this.log.error("peer refused: authentication failed", { error: message });
    else this.log.warn("peer handshake failed", { error: message });
    ch.close(message);
  }

  /** A ping leaves: time it unless an earlier one is still being timed. */
  private notePing(): void {
    this.rttPingSentMs ??= performance.now();
  }

  private deliver(ch: Channel, m: WireMessage): void {
    if (this.channel !== ch) return;
    this.pingSentMs = undefined;
    if (m.type === "pingAck" && this.rttPingSentMs !== undefined) {
      const seconds = (performance.now() - this.rttPingSentMs) / 1000;
      this.rttPingSentMs = undefined;
      this.rtt.observe(seconds);
      this.rttSecondsLast = seconds;
    }
    switch (m.type) {
      case "hello":
      case "authChallenge":
      case "authResponse":
        ch.reject(
          rejectReason.protocol,
          `unexpected ${m.type} after the handshake`,
          "MIRRA_E_PROTOCOL",
        );
        return;
      case "reject":
        ch.close(`the peer closed the connection: ${m.message}`);
        return;
      case "ping":
        ch.send({ type: "pingAck", seq: m.seq });
        break;
    }
    this.callbacks.onMessage(m);
  }

  private armKeepalive(ch: Channel): void {
    const intervalMs = this.options.pingIntervalMs ?? 10000;
    const timeoutMs = this.options.pingTimeoutMs ?? 5000;
    if (intervalMs <= 0) return;
    const checkEveryMs = Math.max(1, Math.min(intervalMs, timeoutMs) / 4);
    this.keepaliveTimer = setInterval(() => {
      const now = Date.now();
      if (this.pingSentMs !== undefined && ch.lastReceiveMs < this.pingSentMs) {
        if (now - this.pingSentMs >= timeoutMs) {
          this.log.warn("peer did not answer a ping", { timeoutMs });
          ch.close(`ping timeout after ${timeoutMs} ms`);
        }
      } else if (now - ch.lastReceiveMs >= intervalMs) {
        this.pingSentMs = now;
        this.notePing();
        ch.send({ type: "ping", seq: 0 });
      }
    }, checkEveryMs);
    this.keepaliveTimer.unref();
  }

  private onChannelClosed(ch: Channel, reason: string): void {
    if (this.channel !== ch) return;
    clearInterval(this.keepaliveTimer);
    this.channel = undefined;
    this.pingSentMs = undefined;
    this.rttPingSentMs = undefined;
    if (this.connected) {
      this.connected = false;
      this.log.info("peer disconnected", { reason });
      this.callbacks.onDisconnected?.(reason);
    }
    if (this.address !== undefined && !this.closed) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const min = this.options.reconnectDelayMsMin ?? 100;
    const max = this.options.reconnectDelayMsMax ?? 10000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // Jitter keeps nodes that lost a common peer from reconnecting in lockstep.
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.log.debug("reconnecting", { delayMs, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
  }
}

const resyncReplyCode = specByName.get("resyncReply")!.code;
const pageBytes = 4096;
/**
 * Socket reads land in a scratch slab unless a payload window is open: each read after the
 * bytes that received frames (their block data) still view, in a new slab once less than
 * `readBytesMin` is left, so a depth-64 stream of 4 KiB writes costs one allocation per few
 * reads instead of one per read.
 */
const scratchBytes = 256 * 1024;
const readBytesMin = 64 * 1024;
/** A payload missing at least this much is read in place (smaller rests are copied). */
const inPlaceReadBytesMin = 16 * 1024;

function openSocket(
  address: PeerAddress,
  t: PeerTlsOptions | undefined,
  into: ReadInto,
): net.Socket {
  const { host, port } = address;
  return t
    ? tls.connect({ host, port, cert: t.cert, key: t.key, ca: t.ca, checkServerIdentity })
    : connectReadingInto({ host, port }, into);
}

/** Peers are trusted by CA and shared secret, and addressed by IP: no host name check. */
function checkServerIdentity(): undefined {
  return undefined;
}

export interface PeerListenerOptions {
  readonly host: string;
  /** 0 picks a free port (see `port`). */
  readonly port: number;
  readonly tls?: PeerTlsOptions;
  readonly handshakeTimeoutMs?: number;
  readonly logger?: Logger;
}

/** Accepts peer connections and hands each to the link its hello names. */
export class PeerListener {
  private readonly links = new Map<string, PeerLink>();
  private readonly dialers = new Map<string, PeerLink>();
  private readonly sockets = new Set<net.Socket>();
  private readonly log: Logger;

  private constructor(
    private readonly server: net.Server,
    private readonly options: PeerListenerOptions,
  ) {
    this.log = options.logger ?? createLogger();
  }

  static listen(options: PeerListenerOptions): Promise<PeerListener> {
    const t = options.tls;
    const server = t
      ? tls.createServer({ cert: t.cert, key: t.key, ca: t.ca, requestCert: true })
      : net.createServer({ pauseOnConnect: true });
    const listener = new PeerListener(server, options);
    server.on(t ? "secureConnection" : "connection", (s: net.Socket) => listener.onSocket(s));
    if (t)
      server.on("tlsClientError", (err) =>
        listener.log.warn("peer TLS error", { error: err.message }),
      );
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve(listener);
      });
    });
  }

  get port(): number {
    const a = this.server.address();
    assert(a !== null && typeof a === "object", "listening");
    return a.port;
  }

  /** Registers the link that accepts connections from `options.peerNodeId`. */
  accept(options: PeerLinkOptions, callbacks: PeerLinkCallbacks): PeerLink {
    const key = `${options.resourceName}\0${options.peerNodeId}\0${options.nodeId}`;
    assert(!this.links.has(key), "one accepting link per peer");
    const link = PeerLink.accepting(options, callbacks);
    this.links.set(key, link);
    return link;
  }

  /**
   * Registers a link of ours that dials `options.peerNodeId`: a knock from that peer (its
   * hello arriving here) makes the link dial at once. Returns the unregistration.
   */
  dialsOut(link: PeerLink): () => void {
    const o = link.options;
    const key = `${o.resourceName}\0${o.peerNodeId}\0${o.nodeId}`;
    this.dialers.set(key, link);
    return () => {
      if (this.dialers.get(key) === link) this.dialers.delete(key);
    };
  }

  /** Stops listening and drops every connection (links stay registered but idle). */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onSocket(accepted: net.Socket): void {
    const tlsSocket = accepted instanceof tls.TLSSocket;
    const ch = new Channel(
      (into) => (tlsSocket ? accepted : adoptReadingInto(accepted, into)),
      this.log,
    );
    const socket = ch.socket;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    expect(ch, "hello", this.options.handshakeTimeoutMs ?? 10000).then(
      (hello) => {
        const key = `${hello.resourceName}\0${hello.nodeId}\0${hello.peerNodeId}`;
        const link = this.links.get(key);
        const dialer = this.dialers.get(key);
        if (link === undefined && dialer !== undefined) {
          // A knock: the peer is back and we are the side that dials.
          ch.reject(rejectReason.shutdown, "dialing you now", "MIRRA_E_PROTOCOL");
          dialer.dialNow();
          return;
        }
        if (link === undefined) {
          this.log.warn("peer connection for an unknown resource or node refused", {
            resource: hello.resourceName,
            peer: hello.nodeId,
          });
          ch.reject(
            rejectReason.resource,
            `no resource "${hello.resourceName}" for node ${hello.nodeId} here`,
            "MIRRA_E_PROTOCOL",
          );
          return;
        }
        link.adopt(ch, hello);
      },
      (err: unknown) => {
        this.log.warn("peer connection refused", {
          error: err instanceof Error ? err.message : String(err),
        });
        ch.close("handshake failed");
      },
    );
  }
}
