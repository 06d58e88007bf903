//! mirra's own metrics, for what drbd-reactor does not export: client IOPS and latency
//! histograms per volume, replication and peer-disk state per peer volume (one-hot, in
//! drbd-reactor's label style), resync progress, speed and time left, peer-link round trips,
//! and activity-log/bitmap counts. Pure: statuses in, exposition text out. Every family is
//! listed in docs/metrics.md; labels are drbd-reactor's device set (`name`, `volume`) and
//! peer-device set (`name`, `conn_name`, `peer_node_id`, `volume`), so the two join.

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import type { ReplicationState } from "../engine/types.js";
import { drbdDiskStates } from "./drbd_reactor.js";
import { Exposition, histogramLines, oneHot, type Family, type Labels } from "./exposition.js";

/** DRBD's replication states (drbdsetup's names), in DRBD's order; the engine uses them. */
export const drbdReplicationStates = [
  "Off",
  "Established",
  "StartingSyncS",
  "StartingSyncT",
  "WFBitMapS",
  "WFBitMapT",
  "WFSyncUUID",
  "SyncSource",
  "SyncTarget",
  "VerifyS",
  "VerifyT",
  "PausedSyncS",
  "PausedSyncT",
  "Ahead",
  "Behind",
] as const satisfies readonly ReplicationState[];

const blockBytes = 4096;

/** The families, in output order. Names carry their unit last (Prometheus convention). */
export const mirraFamilies = {
  reads: {
    name: "mirra_device_reads_total",
    type: "counter",
    help: "Read requests clients sent to this node's export of the volume",
  },
  writes: {
    name: "mirra_device_writes_total",
    type: "counter",
    help: "Write requests (including write-zeroes) clients sent to this node's export",
  },
  flushes: {
    name: "mirra_device_flushes_total",
    type: "counter",
    help: "Flush requests clients sent to this node's export",
  },
  clientReadBytes: {
    name: "mirra_device_client_read_bytes_total",
    type: "counter",
    help: "Bytes clients read through this node's export",
  },
  clientWrittenBytes: {
    name: "mirra_device_client_written_bytes_total",
    type: "counter",
    help: "Bytes clients wrote through this node's export",
  },
  ioErrors: {
    name: "mirra_device_io_errors_total",
    type: "counter",
    help: "Client requests answered with an error",
  },
  readLatency: {
    name: "mirra_device_read_latency_seconds",
    type: "histogram",
    help: "Time from a read request reaching the device to its completion",
  },
  writeLatency: {
    name: "mirra_device_write_latency_seconds",
    type: "histogram",
    help: "Time from a write request reaching the device to its completion (replicated per the protocol)",
  },
  bitmapBits: {
    name: "mirra_device_bitmap_bit_updates_total",
    type: "counter",
    help: "Bitmap bits (4 KiB blocks) set or cleared in the metadata",
  },
  metadataSyncs: {
    name: "mirra_device_metadata_syncs_total",
    type: "counter",
    help: "fdatasync calls that made metadata updates durable",
  },
  replication: {
    name: "mirra_peerdevice_replication_state",
    type: "gauge",
    help: "Replication state toward this peer (DRBD's names)",
  },
  peerDisk: {
    name: "mirra_peerdevice_peer_disk_state",
    type: "gauge",
    help: "Disk state of this peer, as last heard from it",
  },
  resyncSent: {
    name: "mirra_peerdevice_resync_sent_bytes_total",
    type: "counter",
    help: "Resync data sent to this peer as SyncSource",
  },
  resyncReceived: {
    name: "mirra_peerdevice_resync_received_bytes_total",
    type: "counter",
    help: "Resync data received from this peer as SyncTarget",
  },
  resyncDone: {
    name: "mirra_peerdevice_resync_done_bytes_total",
    type: "counter",
    help: "Bytes resyncs with this peer finished, either role, transferred or found equal by checksum",
  },
  resyncSpeed: {
    name: "mirra_peerdevice_resync_speed_bytes_per_second",
    type: "gauge",
    help: "Resync (or online verify) speed over the last second",
  },
  resyncRemaining: {
    name: "mirra_peerdevice_resync_remaining_bytes",
    type: "gauge",
    help: "What the running resync still has to move (exact on the source, estimated on the target)",
  },
  resyncDoneRatio: {
    name: "mirra_peerdevice_resync_done_ratio",
    type: "gauge",
    help: "Progress of the running resync, 0 to 1",
  },
  resyncEta: {
    name: "mirra_peerdevice_resync_eta_seconds",
    type: "gauge",
    help: "Time the running resync needs at its current speed",
  },
  verifyDone: {
    name: "mirra_peerdevice_verify_done_bytes_total",
    type: "counter",
    help: "Bytes online verifies with this peer compared, either role",
  },
  verifyRemaining: {
    name: "mirra_peerdevice_verify_remaining_bytes",
    type: "gauge",
    help: "What the running online verify has still to compare",
  },
  verifyDoneRatio: {
    name: "mirra_peerdevice_verify_done_ratio",
    type: "gauge",
    help: "Progress of the running online verify, 0 to 1",
  },
  rtt: {
    name: "mirra_peerdevice_rtt_seconds",
    type: "histogram",
    help: "Round-trip time of the peer link: its pings (keepalive, engine) to their answers",
  },
  rttLast: {
    name: "mirra_peerdevice_rtt_last_seconds",
    type: "gauge",
    help: "The latest round-trip time measured on the peer link",
  },
} as const satisfies Record<string, Family>;

/** mirra's own metrics for one node's resources (resources that are down are left out). */
export function mirraMetrics(status: readonly ResourceStatus[]): string {
  const x = new Exposition(mirraFamilies);
  for (const r of status) {
    if (!r.up) continue;
    const res: Labels = [["name", r.resource]];
    for (const v of r.volumes) {
      const dev: Labels = [...res, ["volume", String(v.volume)]];
      if (v.io !== undefined) {
        x.value("reads", dev, v.io.reads);
        x.value("writes", dev, v.io.writes);
        x.value("flushes", dev, v.io.flushes);
        x.value("clientReadBytes", dev, v.io.readBytes);
        x.value("clientWrittenBytes", dev, v.io.writtenBytes);
        x.value("ioErrors", dev, v.io.errors);
        x.add("readLatency", histogramLines(x.name("readLatency"), dev, v.io.readLatency));
        x.add("writeLatency", histogramLines(x.name("writeLatency"), dev, v.io.writeLatency));
      }
      if (v.metadata !== undefined) {
        x.value("bitmapBits", dev, v.metadata.bitmapBitUpdates);
        x.value("metadataSyncs", dev, v.metadata.syncs);
      }
    }
    for (const c of r.connections) {
      const conn: Labels = [...res, ["conn_name", c.name], ["peer_node_id", String(c.nodeId)]];
      for (const pv of c.volumes) {
        const pd: Labels = [...conn, ["volume", String(pv.volume)]];
        x.add(
          "replication",
          oneHot(x.name("replication"), drbdReplicationStates, pv.replication, pd),
        );
        x.add("peerDisk", oneHot(x.name("peerDisk"), drbdDiskStates, pv.peerDisk, pd));
        const t = pv.traffic;
        if (t === undefined) continue;
        x.value("resyncSent", pd, t.resyncSentBytes);
        x.value("resyncReceived", pd, t.resyncReceivedBytes);
        x.value("resyncDone", pd, t.resyncDoneBlocks * blockBytes);
        x.value("resyncSpeed", pd, t.resyncRateBytesPerSecond);
        if (t.resyncRemainingBlocks !== undefined) {
          const remaining = t.resyncRemainingBlocks * blockBytes;
          x.value("resyncRemaining", pd, remaining);
          if (pv.donePercent !== undefined) x.value("resyncDoneRatio", pd, pv.donePercent / 100);
          if (t.resyncRateBytesPerSecond > 0)
            x.value("resyncEta", pd, remaining / t.resyncRateBytesPerSecond);
        }
        x.value("verifyDone", pd, t.verifyDoneBlocks * blockBytes);
        if (t.verifyRemainingBlocks !== undefined) {
          x.value("verifyRemaining", pd, t.verifyRemainingBlocks * blockBytes);
          if (pv.donePercent !== undefined) x.value("verifyDoneRatio", pd, pv.donePercent / 100);
        }
        if (t.rtt !== undefined) x.add("rtt", histogramLines(x.name("rtt"), pd, t.rtt));
        if (t.rttSecondsLast !== undefined) x.value("rttLast", pd, t.rttSecondsLast);
      }
    }
  }
  return x.text();
}
