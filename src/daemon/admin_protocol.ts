//! The admin socket protocol between `mirra adm` and `mirra node run` (docs/daemon.md):
//! line-delimited JSON over a Unix socket, one request line answered by one response line,
//! in order, on a connection that may carry many requests. Pure: types, request validation
//! and the drbdadm-like status text.

import type { VolumeIoSnapshot } from "../metrics/io_counters.js";
import type { MetadataWriteCounters } from "./metadata_store.js";
import type { LocalIoStatus, PeerTrafficStatus } from "./volume_host.js";

export type { LocalIoStatus, MetadataWriteCounters, PeerTrafficStatus, VolumeIoSnapshot };

export const adminCommands = [
  "up",
  "down",
  "primary",
  "secondary",
  "connect",
  "disconnect",
  "verify",
  "invalidate",
  "resize",
  "status",
] as const;

export type AdminCommandName = (typeof adminCommands)[number];

/** Default path of the admin socket. */
export const adminSocketDefault = "/run/mirra/mirra.sock";

export interface AdminRequest {
  /** Echoed in the response, so a client may pipeline requests. */
  readonly id?: number;
  readonly command: AdminCommandName;
  /** Resource name; optional for `status` (all resources). */
  readonly resource?: string;
  /** `primary --force`. */
  readonly force?: boolean;
  /** `connect`, `disconnect`, `verify`: one peer, by node name or node id. */
  readonly peer?: string | number;
  /** `connect --discard-my-data`. */
  readonly discardMyData?: boolean;
  /** `resize --size`: the new size in bytes (a multiple of 4 KiB). */
  readonly size?: number;
  /** `resize --assume-clean`: do not resync the new blocks. */
  readonly assumeClean?: boolean;
}

export interface AdminResponse {
  readonly id?: number;
  readonly ok: boolean;
  /** DRBD's error string when the engine gives one ("No quorum", ...). */
  readonly error?: string;
  /** `status`: one entry per resource asked about. */
  readonly status?: readonly ResourceStatus[];
}

export interface VolumeStatusLine {
  readonly volume: number;
  readonly sizeBytes: number;
  readonly disk: string;
  readonly quorum: boolean;
  readonly suspended: boolean;
  readonly writesInFlight: number;
  /** URI of this volume's NBD export on this node. */
  readonly nbd?: string;
  /** Client IO through this node's export since the daemon started (counts, bytes, latency). */
  readonly io?: VolumeIoSnapshot;
  /** Activity-log and bitmap updates since attach; absent when diskless or down. */
  readonly metadata?: MetadataWriteCounters;
  /** IO on the backing disk (DRBD's read/written and lower_pending). */
  readonly localIo?: LocalIoStatus;
  /** Client requests in the engine not answered yet (DRBD's upper_pending). */
  readonly upperPending?: number;
}

export interface PeerVolumeLine {
  readonly volume: number;
  readonly replication: string;
  readonly peerDisk: string;
  readonly outOfSyncKiB: number;
  /** Resync progress in percent while syncing. */
  readonly donePercent?: number;
  /** Data sent and received, resync rate and what is left, link round trips. */
  readonly traffic?: PeerTrafficStatus;
}

export interface ConnectionStatus {
  readonly nodeId: number;
  readonly name: string;
  readonly connection: string;
  readonly role: string;
  readonly volumes: readonly PeerVolumeLine[];
}

export interface ResourceStatus {
  readonly resource: string;
  readonly nodeId: number;
  readonly nodeName: string;
  readonly up: boolean;
  readonly role: string;
  readonly volumes: readonly VolumeStatusLine[];
  readonly connections: readonly ConnectionStatus[];
}

/** Checks a decoded request line; returns the request or why it is refused. */
export function parseAdminRequest(value: unknown): AdminRequest | string {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "a request must be a JSON object";
  const r = value as Record<string, unknown>;
  const known = ["id", "command", "resource", "force", "peer", "discardMyData", "size"];
  known.push("assumeClean");
  for (const k of Object.keys(r)) if (!known.includes(k)) return `unknown request field "${k}"`;
  if (r["id"] !== undefined && !Number.isSafeInteger(r["id"])) return "id must be an integer";
  const command = r["command"];
  if (typeof command !== "string" || !(adminCommands as readonly string[]).includes(command))
    return `command must be one of ${adminCommands.join(", ")}`;
  if (r["resource"] !== undefined && typeof r["resource"] !== "string")
    return "resource must be a string";
  if (r["resource"] === undefined && command !== "status") return `${command} needs a resource`;
  if (r["size"] !== undefined && !(Number.isSafeInteger(r["size"]) && (r["size"] as number) > 0))
    return "size must be a positive number of bytes";
  for (const k of ["force", "discardMyData", "assumeClean"])
    if (r[k] !== undefined && typeof r[k] !== "boolean") return `${k} must be true or false`;
  const peer = r["peer"];
  if (peer !== undefined && typeof peer !== "string" && !Number.isSafeInteger(peer))
    return "peer must be a node name or node id";
  return r as unknown as AdminRequest;
}

/** drbdadm-status-like text for one resource. */
/** How a state reads at a glance: healthy, in progress, or needing an operator. */
export type StatusTone = "good" | "busy" | "bad";

/** Colors a state in `formatStatus`; the default leaves the text alone. */
export type StatusPaint = (tone: StatusTone, text: string) => string;

const plain: StatusPaint = (_tone, text) => text;

/** The tone of a disk, connection or replication state (DRBD's names). */
export function toneOf(state: string): StatusTone {
  if (/^(UpToDate|Connected|Established|Primary|Secondary|Diskless)$/.test(state)) return "good";
  if (/^(Sync|PausedSync|WFBitMap|Verify|Connecting|Negotiating|Attaching|Consistent)/.test(state))
    return "busy";
  return "bad";
}

export function formatStatus(s: ResourceStatus, paint: StatusPaint = plain): string {
  const lines: string[] = [];
  const st = (state: string): string => paint(toneOf(state), state);
  if (!s.up) {
    lines.push(`${s.resource} node-id:${s.nodeId} role:Unknown ${paint("bad", "(down)")}`);
    return lines.join("\n");
  }
  const multi = s.volumes.length > 1;
  lines.push(`${s.resource} node-id:${s.nodeId} role:${s.role}`);
  for (const v of s.volumes) {
    const extra = [
      v.quorum ? "" : ` ${paint("bad", "quorum:no")}`,
      v.suspended ? ` ${paint("bad", "suspended:yes")}` : "",
      v.nbd !== undefined ? ` nbd:${v.nbd}` : "",
    ].join("");
    lines.push(`  ${multi ? `volume:${v.volume} ` : ""}disk:${st(v.disk)}${extra}`);
  }
  for (const c of s.connections) {
    const head = `  ${c.name} node-id:${c.nodeId}`;
    if (c.connection !== "Connected") {
      lines.push(`${head} connection:${st(c.connection)}`);
      continue;
    }
    lines.push(`${head} role:${c.role}`);
    for (const v of c.volumes) {
      const parts = [
        multi ? `volume:${v.volume}` : "",
        `replication:${st(v.replication)}`,
        `peer-disk:${st(v.peerDisk)}`,
        v.donePercent !== undefined ? paint("busy", `done:${v.donePercent.toFixed(1)}`) : "",
        v.outOfSyncKiB > 0 ? `out-of-sync:${v.outOfSyncKiB}KiB` : "",
      ].filter((p) => p !== "");
      lines.push(`    ${parts.join(" ")}`);
    }
  }
  return lines.join("\n");
}

/** Whether every peer is Connected and in sync, and every disk (own and peers') UpToDate or Diskless. */
export function allHealthy(s: ResourceStatus): boolean {
  const good = (d: string): boolean => d === "UpToDate" || d === "Diskless";
  return (
    s.up &&
    s.volumes.every((v) => good(v.disk)) &&
    s.connections.every(
      (c) =>
        c.connection === "Connected" &&
        // Established with bits still set is a resync about to start (after a resize, for
        // one): not healthy yet.
        c.volumes.every(
          (v) => v.replication === "Established" && good(v.peerDisk) && v.outOfSyncKiB === 0,
        ),
    )
  );
}

/** Which drbdsetup-events2 object an engine state change is about. */
function eventObject(kind: string): string {
  if (kind === "role") return "resource";
  if (kind === "disk" || kind === "quorum" || kind === "suspended") return "device";
  if (kind === "connection" || kind === "peerRole") return "connection";
  return "peer-device";
}

/** Names as drbdsetup events2 writes them (peerDisk -> peer-disk). */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * One line of `mirra events` in drbdsetup events2's text style, from one line of the daemon's
 * event stream (`{"event":"exists","status":...}` or `{"event":"change",...}`); exists
 * lines expand to one line per object.
 */
export function formatEvent(event: Record<string, unknown>): string[] {
  if (event["event"] === "exists") {
    const s = event["status"] as ResourceStatus;
    if (!s.up) return [`exists resource name:${s.resource} role:Unknown up:no`];
    const lines = [`exists resource name:${s.resource} role:${s.role}`];
    for (const v of s.volumes)
      lines.push(
        `exists device name:${s.resource} volume:${v.volume} disk:${v.disk} quorum:${v.quorum ? "yes" : "no"}`,
      );
    for (const c of s.connections) {
      lines.push(
        `exists connection name:${s.resource} peer-node-id:${c.nodeId} conn-name:${c.name} connection:${c.connection} role:${c.role}`,
      );
      for (const v of c.volumes)
        lines.push(
          `exists peer-device name:${s.resource} peer-node-id:${c.nodeId} conn-name:${c.name} volume:${v.volume} replication:${v.replication} peer-disk:${v.peerDisk}`,
        );
    }
    return lines;
  }
  const kind = String(event["kind"] ?? "");
  const where = [`name:${String(event["resource"])}`];
  if (event["peer"] !== undefined) where.push(`peer-node-id:${String(event["peer"])}`);
  if (eventObject(kind) !== "resource" && eventObject(kind) !== "connection")
    where.push(`volume:${String(event["volume"])}`);
  const fields = Object.entries(event)
    .filter(([k]) => !["event", "resource", "volume", "peer", "kind"].includes(k))
    .map(([k, v]) => `${kebab(k)}:${typeof v === "boolean" ? (v ? "yes" : "no") : String(v)}`);
  return [`change ${eventObject(kind)} ${[...where, ...fields].join(" ")}`];
}
