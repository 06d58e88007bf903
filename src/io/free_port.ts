//! A loopback TCP port for a listener started a moment later (tests and the bench's clusters).
//!
//! Asking the OS for port 0 and closing the socket is not enough: Linux may hand the same
//! ephemeral port out again on the next call, and any outgoing connection (a daemon dialling
//! its peers) may take the port before its listener binds it. So ports come from below the
//! ephemeral range, where the kernel never picks on its own, and this process never hands the
//! same one out twice.

import { readFileSync } from "node:fs";
import * as net from "node:net";

const handedOut = new Set<number>();
let cursor = -1;
/** ownRange(), read once per process. */
let range: [number, number] | undefined | null = null;

/** The lowest port the kernel picks for outgoing connections and `listen(0)`. */
function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    if (Number.isInteger(low)) return low;
  } catch {
    // not Linux, or /proc is hidden: assume the IANA range
  }
  return 49152;
}

/** The range we choose from: up to 12,000 ports just below the ephemeral range. */
function ownRange(): [number, number] | undefined {
  const high = ephemeralLow() - 1;
  const from = Math.max(10000, high - 12000);
  return high - from >= 1000 ? [from, high] : undefined;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

function osPick(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A TCP port on 127.0.0.1 that is free now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  if (range === null) range = ownRange();
  if (range !== undefined) {
    const [from, to] = range;
    const span = to - from + 1;
    // A random start per process keeps two test processes apart; then walk the range in order.
    if (cursor < 0) cursor = Math.floor(Math.random() * span);
    for (let tries = 0; tries < span; tries++) {
      const port = from + (cursor++ % span);
      if (handedOut.has(port)) continue;
      if (await canListen(port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  // No room below the ephemeral range (or all of it is taken): let the OS pick, no repeats.
  for (let tries = 0; tries < 100; tries++) {
    const port = await osPick();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("freePort: no free TCP port on 127.0.0.1");
}
