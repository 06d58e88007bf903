//! `mirra status` without `--socket` on a machine where satellites run the daemons: drbdadm
//! status asks the one kernel module, but here each resource has its own daemon, started by a
//! satellite (`mirra satellite`, or the three of `mirra up`) with its admin socket in the
//! satellite's run directory. Those sockets are found and asked one by one.

import * as fs from "node:fs";
import * as path from "node:path";
import { adm, admSocketPath, type AdmOptions } from "./adm.js";
import { satelliteDataDirDefault } from "./satellite.js";
import { upDataDirDefault } from "./up.js";

/** Admin sockets of the daemons satellites run here, by node: `[node, socket]`, sorted. */
export function localDaemonSockets(upDataDir = upDataDirDefault()): [string, string][] {
  const found: [string, string][] = [];
  const add = (node: string, runDir: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(runDir);
    } catch {
      return; // no such satellite here
    }
    for (const n of names.sort()) if (n.endsWith(".sock")) found.push([node, path.join(runDir, n)]);
  };
  add("satellite", path.join(satelliteDataDirDefault, "run"));
  const satellites = path.join(upDataDir, "satellites");
  let nodes: string[] = [];
  try {
    nodes = fs.readdirSync(satellites).sort();
  } catch {
    // not a `mirra up` directory
  }
  for (const node of nodes) add(node, path.join(satellites, node, "run"));
  return found;
}

/**
 * The local satellites' daemon sockets, unless one daemon is meant: `--socket` or
 * MIRRA_ADMIN_SOCKET given, or a daemon on the default socket. Empty: use that one.
 */
export function localSocketsUnlessOne(options: AdmOptions & { data?: string }): [string, string][] {
  const one = options.socket !== undefined || process.env["MIRRA_ADMIN_SOCKET"] !== undefined;
  return one || fs.existsSync(admSocketPath(options)) ? [] : localDaemonSockets(options.data);
}

/**
 * Status of one daemon (`--socket`, MIRRA_ADMIN_SOCKET or the default socket when it exists),
 * else of every daemon the local satellites run, each under its node's name.
 */
export async function statusLocal(
  resource: string | undefined,
  options: AdmOptions & { data?: string },
): Promise<void> {
  const sockets = localSocketsUnlessOne(options).filter(
    ([, socket]) => resource === undefined || path.basename(socket, ".sock") === resource,
  );
  // One daemon meant, or none found (then its usual "cannot reach" error).
  if (sockets.length === 0) return adm("status", resource, options);
  const all: unknown[] = [];
  for (const [node, socket] of sockets) {
    const print = options.json
      ? (text: string) => all.push({ node, status: JSON.parse(text) as unknown })
      : (text: string) => process.stdout.write(`${node}:\n${indent(text)}\n`);
    await adm("status", resource, { ...options, socket }, print);
  }
  if (options.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? l : `  ${l}`))
    .join("\n");
}
