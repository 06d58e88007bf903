//! The node daemon's status as Prometheus metrics under drbd-reactor's names, labels and units
//! (docs: ../shared/reference/metrics.md), so that LINBIT's Grafana dashboard and the Piraeus
//! alert rules work unchanged. Pure: one status snapshot in, one exposition text (format 0.0.4)
//! out; no I/O, no clocks. The HTTP server on port 9942 is somebody else's job.
//!
//! Written by hand rather than with prom-client: the format is a few lines of text; prom-client
//! keeps a mutable global registry (not pure), writes HELP before TYPE (drbd-reactor writes TYPE
//! first) and would be a new runtime dependency for eleven gauges.
//!
//! Behaviour that follows drbd-reactor with `enums = true` (the setting the dashboard and the
//! alerts need):
//! * Each family is `# TYPE name type` then `# HELP name help`, then its samples; the help texts
//!   are drbd-reactor's. A family with no samples is left out, as in drbd-reactor.
//! * Enum metrics are one-hot: one sample per possible value, 1 on the current state, 0 on the
//!   others, in a label named like the metric (`drbd_device_state{...,drbd_device_state="X"}`).
//! * Families come in the fixed order of metrics.md (drbd-reactor uses HashMap order, which
//!   Prometheus ignores); samples keep the order of the input.
//!
//! Where mirra differs from DRBD, and how this maps it:
//! * Roles, disk states and connection states: the engine (src/engine/types.ts) uses DRBD's own
//!   names, so they pass through unchanged. A value outside DRBD's list is a programmer error
//!   and throws, because a one-hot group without its 1 would silently break the alerts.
//! * A resource that is down is left out altogether: in DRBD, `drbdadm down` removes the
//!   resource from the kernel, and drbd-reactor forgets it on the Destroy event. So
//!   `drbd_resource_resources` counts the resources that are up.
//! * `drbd_resource_suspended`: DRBD suspends a whole resource; mirra suspends per volume
//!   (on-no-quorum suspend-io), so the resource counts as suspended if any volume is.
//! * Connection state: a DRBD connection is per resource; mirra runs one link per volume and
//!   the daemon's status already reports the least connected of them (resource_host.ts).
//! * `drbd_peerdevice_outofsync_bytes`: the status gives KiB (4 KiB bitmap blocks × 4), which is
//!   multiplied by 1024 exactly as drbd-reactor multiplies events2's KiB.
//! * `conn_name` is the peer's node name, which is DRBD's default connection name.
//! * The device label set is `name, volume, minor` in drbd-reactor, but mirra has no DRBD minor
//!   (devices are NBD exports, not /dev/drbdN), so `minor` is left out rather than invented.
//!   Prometheus treats a missing label as an empty one, so `{minor=""}` selectors still match.
//! * `drbd_device_client` (intentional diskless) is not in the status snapshot; it comes from
//!   the resource file (`"disk": "none"`) through `DrbdReactorOptions.isClient`. Without it,
//!   both `drbd_device_client` and `drbd_device_unintentionaldiskless` are left out.

import type { ResourceStatus } from "../daemon/admin_protocol.js";

/** drbd-reactor's enum values (src/drbd.rs), in its order. */
export const drbdRoles = ["Unknown", "Primary", "Secondary"] as const;
export const drbdConnectionStates = [
  "StandAlone",
  "Disconnecting",
  "Unconnected",
  "Timeout",
  "BrokenPipe",
  "NetworkFailure",
  "ProtocolError",
  "TearDown",
  "Connecting",
  "Connected",
] as const;
export const drbdDiskStates = [
  "Diskless",
  "Attaching",
  "Detaching",
  "Failed",
  "Negotiating",
  "Inconsistent",
  "Outdated",
  "DUnknown",
  "Consistent",
  "UpToDate",
] as const;

export interface DrbdReactorOptions {
  /**
   * Whether this node's volume is configured diskless (`"disk": "none"` in the resource file),
   * which DRBD calls a client. Undefined: not known, and the two metrics that need it are left
   * out.
   */
  readonly isClient?: (resource: string, volume: number) => boolean;
}

type MetricType = "gauge" | "counter";
type Labels = readonly (readonly [string, string])[];

interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
}

/** The families this module writes, in output order, with drbd-reactor's help texts. */
const families = {
  up: {
    name: "drbdreactor_up",
    type: "gauge",
    help: "Boolean indicating whether or not drbdreactor is running. Always 1",
  },
  resources: { name: "drbd_resource_resources", type: "gauge", help: "Number of resources" },
  role: { name: "drbd_resource_role", type: "gauge", help: "DRBD role of the resource" },
  suspended: {
    name: "drbd_resource_suspended",
    type: "gauge",
    help: "Boolean whether the resource is suspended",
  },
  connection: { name: "drbd_connection_state", type: "gauge", help: "DRBD connection state" },
  outOfSync: {
    name: "drbd_peerdevice_outofsync_bytes",
    type: "gauge",
    help: "Number of bytes currently out of sync with this peer, according to the bitmap that DRBD has for it",
  },
  disk: { name: "drbd_device_state", type: "gauge", help: "DRBD device state" },
  client: {
    name: "drbd_device_client",
    type: "gauge",
    help: "Boolean whether this device is a client (i.e., intentional diskless)",
  },
  unintentionalDiskless: {
    name: "drbd_device_unintentionaldiskless",
    type: "gauge",
    help: "Boolean whether the devices is unintentional diskless",
  },
  quorum: {
    name: "drbd_device_quorum",
    type: "gauge",
    help: "Boolean if this device has DRBD quorum",
  },
  size: { name: "drbd_device_size_bytes", type: "gauge", help: "Device size in bytes" },
} as const satisfies Record<string, Family>;

type FamilyKey = keyof typeof families;

/** Escapes a label value per the text format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text per the text format: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function sampleLine(name: string, labels: Labels, value: number): string {
  if (!Number.isFinite(value)) throw new Error(`metric ${name}: value ${value} is not finite`);
  const body = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
  return `${name}${labels.length > 0 ? `{${body}}` : ""} ${value}`;
}

function oneHot<T extends string>(
  metric: string,
  values: readonly T[],
  current: string,
  labels: Labels,
): string[] {
  if (!(values as readonly string[]).includes(current))
    throw new Error(`${metric}: "${current}" is not one of ${values.join(", ")}`);
  return values.map((v) => sampleLine(metric, [...labels, [metric, v]], v === current ? 1 : 0));
}

const bit = (b: boolean): number => (b ? 1 : 0);

/**
 * The exposition text (Prometheus format 0.0.4) for one node's resources, under drbd-reactor's
 * metric names. Ends with a line feed.
 */
export function drbdReactorMetrics(
  status: readonly ResourceStatus[],
  options: DrbdReactorOptions = {},
): string {
  const samples = new Map<FamilyKey, string[]>(
    (Object.keys(families) as FamilyKey[]).map((k) => [k, []]),
  );
  const add = (key: FamilyKey, lines: readonly string[]): void => {
    samples.get(key)!.push(...lines);
  };
  const up = status.filter((r) => r.up);

  add("up", [sampleLine(families.up.name, [], 1)]);
  add("resources", [sampleLine(families.resources.name, [], up.length)]);
  for (const r of up) {
    const res: Labels = [["name", r.resource]];
    add("role", oneHot(families.role.name, drbdRoles, r.role, res));
    const suspended = r.volumes.some((v) => v.suspended);
    add("suspended", [sampleLine(families.suspended.name, res, bit(suspended))]);

    for (const c of r.connections) {
      const conn: Labels = [...res, ["conn_name", c.name], ["peer_node_id", String(c.nodeId)]];
      add("connection", oneHot(families.connection.name, drbdConnectionStates, c.connection, conn));
      for (const pv of c.volumes) {
        const labels: Labels = [...conn, ["volume", String(pv.volume)]];
        add("outOfSync", [sampleLine(families.outOfSync.name, labels, pv.outOfSyncKiB * 1024)]);
      }
    }

    for (const v of r.volumes) {
      const dev: Labels = [...res, ["volume", String(v.volume)]];
      add("disk", oneHot(families.disk.name, drbdDiskStates, v.disk, dev));
      if (options.isClient !== undefined) {
        const client = options.isClient(r.resource, v.volume);
        const unintentional = !client && v.disk === "Diskless";
        add("client", [sampleLine(families.client.name, dev, bit(client))]);
        add("unintentionalDiskless", [
          sampleLine(families.unintentionalDiskless.name, dev, bit(unintentional)),
        ]);
      }
      add("quorum", [sampleLine(families.quorum.name, dev, bit(v.quorum))]);
      add("size", [sampleLine(families.size.name, dev, v.sizeBytes)]);
    }
  }

  const out: string[] = [];
  for (const [key, lines] of samples) {
    if (lines.length === 0) continue;
    const f: Family = families[key];
    out.push(`# TYPE ${f.name} ${f.type}`, `# HELP ${f.name} ${escapeHelp(f.help)}`, ...lines);
  }
  return out.join("\n") + "\n";
}
