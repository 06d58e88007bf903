//! Socket calls Node has no binding for, from mirra's native addon (native/mirra_native.c).
//! Optional: without the addon (or with an older build) the server keeps the kernel defaults.

import type * as net from "node:net";
import { native } from "../storage/native.js";

interface SocketBinding {
  /** setsockopt SO_SNDBUF; returns what the kernel granted, or -errno. */
  setSendBuffer?(fd: number, bytes: number): number;
  /** Polls fd until readable or the time is up; true when readable. */
  spinReadable?(fd: number, microseconds: number): boolean;
}

const binding = native as SocketBinding | undefined;

/** The descriptor behind a Node socket (a Unix or TCP stream), or -1. */
export function socketFd(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : -1;
}

/**
 * Asks for a send buffer of `bytes` (the kernel caps it at net.core.wmem_max, then doubles
 * it); returns the size granted, or -1 when it could not be set.
 */
export function setSendBuffer(socket: net.Socket, bytes: number): number {
  const fd = socketFd(socket);
  if (fd < 0 || !binding?.setSendBuffer) return -1;
  const got = binding.setSendBuffer(fd, bytes);
  return got > 0 ? got : -1;
}

/** Whether the addon can busy-poll a socket (see NbdServerOptions.busyPollMicros). */
export function canSpin(): boolean {
  return binding?.spinReadable !== undefined;
}

/** Polls `fd` for up to `microseconds`; true when a read would not block. */
export function spinReadable(fd: number, microseconds: number): boolean {
  return binding!.spinReadable!(fd, microseconds);
}
