import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { Histogram, VolumeIoCounters, rttBucketsSeconds } from "./io_counters.js";
import { drbdReactorMetrics } from "./drbd_reactor.js";
import { drbdReplicationStates, mirraMetrics } from "./mirra_metrics.js";
import { nodeMetrics } from "./node_metrics.js";

function io(): VolumeIoCounters {
  const c = new VolumeIoCounters();
  c.reads = 10;
  c.readBytes = 40960;
  c.writes = 4;
  c.writtenBytes = 16384;
  c.flushes = 1;
  for (const s of [0.0001, 0.0002, 0.003]) c.readLatency.observe(s);
  c.writeLatency.observe(0.004);
  return c;
}

function rtt(): Histogram {
  const h = new Histogram(rttBucketsSeconds);
  h.observe(0.0002);
  h.observe(0.0004);
  return h;
}

/** Node 1, SyncTarget from node 0 (a quarter done), Established with node 2. */
function status(): ResourceStatus[] {
  const traffic = {
    sentBytes: 4096,
    receivedBytes: 1048576,
    resyncSentBytes: 0,
    resyncReceivedBytes: 1048576,
    resyncDoneBlocks: 256,
    verifyDoneBlocks: 0,
    resyncRateBytesPerSecond: 524288,
    resyncRemainingBlocks: 768,
    verifyRemainingBlocks: undefined,
    rtt: rtt().snapshot(),
    rttSecondsLast: 0.0004,
  };
  return [
    {
      resource: "r0",
      nodeId: 1,
      nodeName: "n1",
      up: true,
      role: "Secondary",
      volumes: [
        {
          volume: 0,
          sizeBytes: 4194304,
          disk: "Inconsistent",
          quorum: true,
          suspended: false,
          writesInFlight: 0,
          io: io().snapshot(),
          metadata: { alWrites: 3, bitmapPageWrites: 5, bitmapBitUpdates: 300, syncs: 7 },
          localIo: { readBytes: 8192, writtenBytes: 1064960, pending: 2 },
          upperPending: 1,
        },
      ],
      connections: [
        {
          nodeId: 0,
          name: "n0",
          connection: "Connected",
          role: "Primary",
          volumes: [
            {
              volume: 0,
              replication: "SyncTarget",
              peerDisk: "UpToDate",
              outOfSyncKiB: 3072,
              donePercent: 25,
              traffic,
            },
          ],
        },
        {
          nodeId: 2,
          name: "n2",
          connection: "Connected",
          role: "Secondary",
          volumes: [
            {
              volume: 0,
              replication: "Established",
              peerDisk: "UpToDate",
              outOfSyncKiB: 0,
              traffic: {
                ...traffic,
                resyncRemainingBlocks: undefined,
                resyncRateBytesPerSecond: 0,
                rtt: undefined,
                rttSecondsLast: undefined,
              },
            },
          ],
        },
      ],
    },
    {
      resource: "r1",
      nodeId: 1,
      nodeName: "n1",
      up: false,
      role: "Unknown",
      volumes: [],
      connections: [],
    },
  ];
}

const lines = (text: string): Set<string> => new Set(text.split("\n"));
const pd0 = 'name="r0",conn_name="n0",peer_node_id="0",volume="0"';
const pd2 = 'name="r0",conn_name="n2",peer_node_id="2",volume="0"';
const dev = 'name="r0",volume="0"';

describe("mirraMetrics", () => {
  test("client IO: counters and latency histograms per volume", () => {
    const l = lines(mirraMetrics(status()));
    for (const want of [
      "# TYPE mirra_device_reads_total counter",
      `mirra_device_reads_total{${dev}} 10`,
      `mirra_device_writes_total{${dev}} 4`,
      `mirra_device_flushes_total{${dev}} 1`,
      `mirra_device_client_read_bytes_total{${dev}} 40960`,
      "# TYPE mirra_device_read_latency_seconds histogram",
      `mirra_device_read_latency_seconds_bucket{${dev},le="0.0001"} 1`,
      `mirra_device_read_latency_seconds_bucket{${dev},le="0.00025"} 2`,
      `mirra_device_read_latency_seconds_bucket{${dev},le="+Inf"} 3`,
      `mirra_device_read_latency_seconds_count{${dev}} 3`,
      `mirra_device_write_latency_seconds_bucket{${dev},le="0.005"} 1`,
      `mirra_device_bitmap_bit_updates_total{${dev}} 300`,
      `mirra_device_metadata_syncs_total{${dev}} 7`,
    ])
      assert.ok(l.has(want), want);
  });

  test("replication state is one-hot in drbd-reactor's label style", () => {
    const text = mirraMetrics(status());
    for (const s of drbdReplicationStates) {
      const v = s === "SyncTarget" ? 1 : 0;
      assert.ok(
        lines(text).has(
          `mirra_peerdevice_replication_state{${pd0},mirra_peerdevice_replication_state="${s}"} ${v}`,
        ),
        s,
      );
    }
    assert.ok(
      lines(text).has(
        `mirra_peerdevice_peer_disk_state{${pd2},mirra_peerdevice_peer_disk_state="UpToDate"} 1`,
      ),
    );
  });

  test("resync progress, speed and ETA only while a resync runs; round trips per link", () => {
    const l = lines(mirraMetrics(status()));
    assert.ok(l.has(`mirra_peerdevice_resync_remaining_bytes{${pd0}} 3145728`));
    assert.ok(l.has(`mirra_peerdevice_resync_done_ratio{${pd0}} 0.25`));
    assert.ok(l.has(`mirra_peerdevice_resync_eta_seconds{${pd0}} 6`));
    assert.ok(l.has(`mirra_peerdevice_resync_speed_bytes_per_second{${pd0}} 524288`));
    assert.ok(l.has(`mirra_peerdevice_resync_done_bytes_total{${pd0}} 1048576`));
    assert.ok(l.has(`mirra_peerdevice_rtt_seconds_count{${pd0}} 2`));
    assert.ok(l.has(`mirra_peerdevice_rtt_last_seconds{${pd0}} 0.0004`));
    const text = [...l].join("\n");
    assert.ok(!text.includes(`mirra_peerdevice_resync_remaining_bytes{${pd2}}`));
    assert.ok(!text.includes(`mirra_peerdevice_rtt_seconds_count{${pd2}}`));
    assert.ok(!text.includes('name="r1"'), "a resource that is down is left out");
  });

  test("drbd-reactor's byte counters, AL and bitmap writes, pending requests", () => {
    const l = lines(drbdReactorMetrics(status()));
    for (const want of [
      "# TYPE drbd_device_read_bytes_total counter",
      `drbd_device_read_bytes_total{${dev}} 8192`,
      `drbd_device_written_bytes_total{${dev}} 1064960`,
      `drbd_device_alwrites_total{${dev}} 3`,
      `drbd_device_bmwrites_total{${dev}} 5`,
      `drbd_device_upperpending{${dev}} 1`,
      `drbd_device_lowerpending{${dev}} 2`,
      "# TYPE drbd_peerdevice_sent_bytes untyped",
      `drbd_peerdevice_sent_bytes{${pd0}} 4096`,
      `drbd_peerdevice_received_bytes{${pd0}} 1048576`,
    ])
      assert.ok(l.has(want), want);
  });

  test("online verify: progress and what is left, apart from the resync series", () => {
    const s = status();
    const r = s[0]!;
    const c = r.connections[1]!;
    const v = c.volumes[0]!;
    const verifying: ResourceStatus = {
      ...r,
      connections: [
        r.connections[0]!,
        {
          ...c,
          volumes: [
            {
              ...v,
              replication: "VerifyS",
              donePercent: 50,
              traffic: { ...v.traffic!, verifyDoneBlocks: 512, verifyRemainingBlocks: 512 },
            },
          ],
        },
      ],
    };
    const l = lines(mirraMetrics([verifying]));
    assert.ok(l.has(`mirra_peerdevice_verify_remaining_bytes{${pd2}} 2097152`));
    assert.ok(l.has(`mirra_peerdevice_verify_done_ratio{${pd2}} 0.5`));
    assert.ok(l.has(`mirra_peerdevice_verify_done_bytes_total{${pd2}} 2097152`));
    assert.ok(!l.has(`mirra_peerdevice_resync_done_ratio{${pd2}} 0.5`));
    assert.ok(!lines(mirraMetrics(status())).has(`mirra_peerdevice_verify_done_ratio{${pd2}} 0.5`));
  });

  test("no resource up: no mirra family at all", () => {
    assert.equal(mirraMetrics([]), "");
    assert.equal(mirraMetrics([status()[1]!]), "");
  });

  test("nodeMetrics: one text, each family once; a resource twice is refused", () => {
    const text = nodeMetrics(status(), { isClient: () => false });
    const types = text.split("\n").filter((x) => x.startsWith("# TYPE "));
    assert.equal(new Set(types).size, types.length);
    assert.throws(() => nodeMetrics([status()[0]!, status()[0]!]), /two statuses/);
  });

  test("promtool check metrics accepts the whole scrape", (t) => {
    const text = nodeMetrics(status(), { isClient: () => false });
    const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    if (r.error !== undefined) return t.skip("promtool is not installed");
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});
