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
//! * `drbd_device_read_bytes_total` / `_written_bytes_total` count what this node read from and
//!   wrote to its backing disk, as DRBD's `read`/`written` do: on a Secondary the replicated
//!   writes, on a SyncTarget the resync. `drbd_device_upperpending` is the client requests in
//!   the engine, `drbd_device_lowerpending` the requests open on the backing disk.
//!   `drbd_device_alwrites_total` counts activity-log transactions, `drbd_device_bmwrites_total`
//!   bitmap pages written, both since the volume was attached (a diskless volume has neither).
//! * `drbd_peerdevice_sent_bytes` / `_received_bytes` are block data to and from that peer
//!   (replicated writes, resync, remote reads). drbd-reactor declares them `counter` without
//!   the `_total` suffix, which `promtool check metrics` rejects; mirra keeps the names and
//!   declares them `untyped` (rate() works on them all the same).
//! * Still left out, for want of data: the in-flight byte gauges, `congested`,
//!   `maypromote`/`promotionscore`, `forceiofailures`, `open`, `alsuspended`, `drbd_version`.

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { Exposition, bit, oneHot, type Family, type Labels } from "./exposition.js";

export { escapeLabelValue } from "./exposition.js";

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
   * which DRBD calls a client. Undefined (the option, or its answer for one volume): not known,
   * and the two metrics that need it are left out (for that volume).
   */
  readonly isClient?: (resource: string, volume: number) => boolean | undefined;
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
  sent: {
    name: "drbd_peerdevice_sent_bytes",
    type: "untyped",
    help: "Number of bytes currently sent to this peer",
  },
  received: {
    name: "drbd_peerdevice_received_bytes",
    type: "untyped",
    help: "Number of bytes currently received from this peer",
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
  readBytes: {
    name: "drbd_device_read_bytes_total",
    type: "counter",
    help: "Net data read from local hard disk",
  },
  writtenBytes: {
    name: "drbd_device_written_bytes_total",
    type: "counter",
    help: "Net data written on local disk",
  },
  alWrites: {
    name: "drbd_device_alwrites_total",
    type: "counter",
    help: "Number of updates of the activity log area of the meta data",
  },
  bmWrites: {
    name: "drbd_device_bmwrites_total",
    type: "counter",
    help: "Number of updates of the bitmap area of the meta data",
  },
  upperPending: {
    name: "drbd_device_upperpending",
    type: "gauge",
    help: "Number of block I/O requests forwarded to DRBD, but not yet answered by DRBD.",
  },
  lowerPending: {
    name: "drbd_device_lowerpending",
    type: "gauge",
    help: "Number of open requests to the local I/O sub-system issued by DRBD",
  },
} as const satisfies Record<string, Family>;

/**
 * The exposition text (Prometheus format 0.0.4) for one node's resources, under drbd-reactor's
 * metric names. Ends with a line feed. The satellite calls it once with the statuses of all
 * its daemons, so each family appears once.
 */
export function drbdReactorMetrics(
  status: readonly ResourceStatus[],
  options: DrbdReactorOptions = {},
): string {
  const x = new Exposition(families);
  const up = status.filter((r) => r.up);

  x.value("up", [], 1);
  x.value("resources", [], up.length);
  for (const r of up) {
    const res: Labels = [["name", r.resource]];
    x.add("role", oneHot(x.name("role"), drbdRoles, r.role, res));
    x.value("suspended", res, bit(r.volumes.some((v) => v.suspended)));

    for (const c of r.connections) {
      const conn: Labels = [...res, ["conn_name", c.name], ["peer_node_id", String(c.nodeId)]];
      x.add("connection", oneHot(x.name("connection"), drbdConnectionStates, c.connection, conn));
      for (const pv of c.volumes) {
        const labels: Labels = [...conn, ["volume", String(pv.volume)]];
        x.value("outOfSync", labels, pv.outOfSyncKiB * 1024);
        if (pv.traffic !== undefined) {
          x.value("sent", labels, pv.traffic.sentBytes);
          x.value("received", labels, pv.traffic.receivedBytes);
        }
      }
    }

    for (const v of r.volumes) {
      const dev: Labels = [...res, ["volume", String(v.volume)]];
      x.add("disk", oneHot(x.name("disk"), drbdDiskStates, v.disk, dev));
      const client = options.isClient?.(r.resource, v.volume);
      if (client !== undefined) {
        x.value("client", dev, bit(client));
        x.value("unintentionalDiskless", dev, bit(!client && v.disk === "Diskless"));
      }
      x.value("quorum", dev, bit(v.quorum));
      x.value("size", dev, v.sizeBytes);
      if (v.localIo !== undefined) {
        x.value("readBytes", dev, v.localIo.readBytes);
        x.value("writtenBytes", dev, v.localIo.writtenBytes);
      }
      if (v.metadata !== undefined) {
        x.value("alWrites", dev, v.metadata.alWrites);
        x.value("bmWrites", dev, v.metadata.bitmapPageWrites);
      }
      if (v.upperPending !== undefined) x.value("upperPending", dev, v.upperPending);
      if (v.localIo !== undefined) x.value("lowerPending", dev, v.localIo.pending);
    }
  }
  return x.text();
}
