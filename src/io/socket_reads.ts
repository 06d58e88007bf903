//! Sockets that read into buffers their owner chooses, instead of a fresh 64 KiB buffer per
//! read: the NBD server's reused read slabs (nbd/read_slabs.ts) and the peer links' in-place
//! payloads (io/peer_link.ts) both rest on this. It uses Node's documented `onread` socket
//! option (a buffer-returning function, called once at the start and after every read for
//! the next one). net.connect takes it directly; net.Server does not offer it for accepted
//! sockets, so an accepted socket's handle is handed over to a new socket that has it.
//!
//! `MIRRA_USER_READ_BUFFER=0` turns it off (for A/B runs): sockets then emit "data" as usual,
//! and `readsIntoOwnBuffers` says which kind a socket is.

import * as net from "node:net";

/** Where a socket's reads land, and who hears of them. */
export interface ReadInto {
  /** The buffer the next read goes into (called at the start and after every read). */
  buffer(): Uint8Array;
  /** `n` bytes were read into the start of `buf`, the last buffer() returned. */
  callback(n: number, buf: Uint8Array): void;
}

const ownReadBuffer = Symbol("mirra.ownReadBuffer");

function enabled(): boolean {
  return process.env["MIRRA_USER_READ_BUFFER"] !== "0";
}

function onreadOf(into: ReadInto): { buffer: () => Uint8Array; callback: ReadInto["callback"] } {
  return { buffer: () => into.buffer(), callback: (n, buf) => into.callback(n, buf) };
}

/** Whether `socket` reads into its owner's buffers (else it emits "data"). */
export function readsIntoOwnBuffers(socket: net.Socket): boolean {
  return (socket as unknown as Record<symbol, boolean>)[ownReadBuffer] === true;
}

/** net.connect, reading into `into`'s buffers unless turned off. */
export function connectReadingInto(
  options: { host: string; port: number },
  into: ReadInto,
): net.Socket {
  if (!enabled()) return net.connect(options);
  const socket = net.connect({ ...options, onread: onreadOf(into) } as net.NetConnectOpts);
  (socket as unknown as Record<symbol, boolean>)[ownReadBuffer] = true;
  return socket;
}

/**
 * Re-wraps an accepted socket (from a server made with `pauseOnConnect`, so nothing was read
 * yet) so that it reads into `into`'s buffers. Returns the new socket, which the caller uses
 * from now on, or the accepted one unchanged when turned off or when it has no handle. The
 * caller resumes the socket it gets.
 */
export function adoptReadingInto(accepted: net.Socket, into: ReadInto): net.Socket {
  const handle = (accepted as unknown as { _handle: unknown })._handle;
  if (!handle || !enabled()) return accepted;
  (accepted as unknown as { _handle: unknown })._handle = null;
  const socket = new net.Socket({
    handle,
    readable: true,
    writable: true,
    onread: onreadOf(into),
  } as net.SocketConstructorOpts);
  (socket as unknown as Record<symbol, boolean>)[ownReadBuffer] = true;
  // net.Server counts its connections through the socket it accepted; hand that over too, so
  // that server.close() still completes when the new socket closes.
  const internals = accepted as unknown as { _server: unknown; server: unknown };
  Object.assign(socket, { _server: internals._server, server: internals.server });
  internals._server = null;
  return socket;
}
