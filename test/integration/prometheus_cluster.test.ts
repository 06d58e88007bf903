//! A real Prometheus server (the Debian package) scrapes three `mirra node run --metrics`
//! daemons of one resource and evaluates the Piraeus alert expressions, unchanged: the
//! peer-down alert fires on the survivors when a daemon is SIGKILLed and clears once it is
//! back. On the way, the restarted node's resync shows as a SyncTarget with real progress (not
//! 100 % from the start), and Prometheus' own queries over mirra's histograms answer.
//!
//! Ports 25100 (Prometheus) and 25101-25103 (metrics). Every wait polls with a deadline.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { TestClient } from "../../src/nbd/test_client.js";
import * as C from "../../src/nbd/protocol/constants.js";
import type { ResourceStatus } from "../../src/daemon/admin_protocol.js";
import { DaemonCluster, KiB, MiB, waitFor } from "./daemon_cluster.js";
import {
  Prometheus,
  describeAlerts,
  noPrometheus,
  piraeusDrbdAlerts,
} from "./prometheus_helpers.js";

const prometheusPort = 25100;
const metricsPorts = [25101, 25102, 25103];

describe(
  "prometheus: a real server scrapes three daemons and runs the Piraeus alerts",
  {
    skip: noPrometheus,
  },
  () => {
    let cluster: DaemonCluster | undefined;
    let prometheus: Prometheus | undefined;

    after(async () => {
      await prometheus?.stop();
      await cluster?.destroy();
    });

    test("peer-down fires on the survivors when a daemon is killed, and clears when it is back", async (t) => {
      // A slow, fixed resync rate, so the restarted node's resync lasts long enough to watch.
      const c = await DaemonCluster.create({
        volumeBytes: 8 * MiB,
        metricsPorts,
        options: { "c-plan-ahead": 0, "resync-rate": 512, "verify-alg": "crc32c" },
      });
      cluster = c;
      await c.waitHealthy();

      const p = await Prometheus.start({
        dir: c.dir,
        listen: `127.0.0.1:${prometheusPort}`,
        jobs: [{ job: "drbd-reactor", targets: metricsPorts.map((port) => `127.0.0.1:${port}`) }],
        alerts: piraeusDrbdAlerts,
      });
      prometheus = p;
      const firing = () => p.firing();
      const query = (expr: string) => p.query(expr);

      // Healthy: every target up, the rules evaluated on what was scraped, nothing firing.
      await p.waitTargetsUp(3);
      await waitFor("every daemon's series", async () =>
        (await query("drbdreactor_up")).length === 3 ? true : undefined,
      );
      await p.waitEvaluatedAfter(Date.now());
      const quiet = await firing();
      assert.deepEqual(quiet, [], `alerts firing on a healthy cluster:\n${describeAlerts(quiet)}`);
      // mirra's own series are there too: every peer volume Established, on every node.
      const established = await query(
        'count(mirra_peerdevice_replication_state{mirra_peerdevice_replication_state="Established"} == 1)',
      );
      assert.equal(established[0]?.value[1], "6");

      // Node 0 Primary, node 1 killed, 1 MiB written that node 1 then lacks.
      await c.adm(0, "primary");
      await c.kill(1);
      const peerDown = await waitFor(
        "the connection alert for n1 on nodes 0 and 2",
        async () => {
          const alerts = (await firing()).filter(
            (a) => a.labels["alertname"] === "drbdConnectionNotConnected",
          );
          const instances = alerts
            .filter((a) => a.labels["conn_name"] === "n1")
            .map((a) => a.labels["instance"])
            .sort();
          const want = [`127.0.0.1:${metricsPorts[0]}`, `127.0.0.1:${metricsPorts[2]}`];
          return JSON.stringify(instances) === JSON.stringify(want) ? alerts : undefined;
        },
        20_000,
      );
      assert.ok(
        peerDown.every((a) => a.labels["conn_name"] === "n1"),
        `only the link to n1 is down:\n${describeAlerts(peerDown)}`,
      );
      await writeMiB(c);

      // Back: node 1 resyncs as SyncTarget, with progress that starts below 100 %.
      await c.start(1);
      const seen = await waitFor(
        "node 1 as SyncTarget with its progress",
        async () => {
          const s = await c.status(1);
          const v = syncTargetLine(s);
          return v !== undefined && v.outOfSyncKiB > 0 ? v : undefined;
        },
        20_000,
      );
      t.diagnostic(`node 1 as SyncTarget: ${JSON.stringify({ ...seen, traffic: undefined })}`);
      assert.ok(seen.donePercent !== undefined && seen.donePercent < 100, JSON.stringify(seen));
      assert.ok(seen.traffic !== undefined, "the target's line carries its traffic");
      await waitFor(
        "the connection alert to clear",
        async () =>
          (await firing()).some((a) => a.labels["alertname"] === "drbdConnectionNotConnected")
            ? undefined
            : true,
        30_000,
      );
      await c.waitHealthy();

      // Prometheus reads mirra's histograms and counters: write latency on the Primary,
      // replicated bytes on the Secondaries, round trips on every link.
      const p99 = await query(
        `histogram_quantile(0.99, sum by (le) (mirra_device_write_latency_seconds_bucket{instance="127.0.0.1:${metricsPorts[0]}"}))`,
      );
      const latency = Number(p99[0]?.value[1]);
      assert.ok(latency > 0 && latency < 10, `p99 write latency ${p99[0]?.value[1]}`);
      const written = await query(
        `drbd_device_written_bytes_total{instance="127.0.0.1:${metricsPorts[2]}"}`,
      );
      assert.ok(Number(written[0]?.value[1]) >= MiB, `node 2 wrote ${written[0]?.value[1]} bytes`);
      // An online verify (node 0 against n2, at the same slow rate) shows its progress too,
      // in the status and in Prometheus; a disconnect ends it.
      await c.adm(0, "verify", "--peer", "n2");
      const verify = await waitFor("node 0 verifying n2, part way", async () => {
        const v = (await c.status(0)).connections.find((x) => x.name === "n2")?.volumes[0];
        const done = v?.donePercent ?? 0;
        return v?.replication === "VerifyS" && done > 0 ? v : undefined;
      });
      assert.ok(verify.donePercent! < 100, JSON.stringify(verify));
      await waitFor("Prometheus to see the verify's progress", async () => {
        const r = await query('mirra_peerdevice_verify_done_ratio{conn_name="n2"} > 0');
        return r.length === 1 ? true : undefined;
      });
      await c.adm(0, "disconnect", "--peer", "n2");
      await c.adm(0, "connect", "--peer", "n2");
      await c.waitHealthy();

      // Keepalive pings time idle links, on the side that pings: every link, one side at least.
      const timed = await waitFor("round trips on every peer link", async () => {
        const series = await query("mirra_peerdevice_rtt_seconds_count > 0");
        const links = new Set(
          series.map((x) => {
            const node = metricsPorts.findIndex((p) => x.metric["instance"] === `127.0.0.1:${p}`);
            return [node, Number(x.metric["peer_node_id"])].sort().join("-");
          }),
        );
        return links.size === 3 ? series.length : undefined;
      });
      t.diagnostic(`peer volumes with round trips timed: ${timed} of 6`);
    });
  },
);

/** Writes 1 MiB at the start of the volume through node 0's export, 256 KiB at a time. */
async function writeMiB(c: DaemonCluster): Promise<void> {
  const client = await TestClient.open(c.nbdAddress(0));
  try {
    await client.go(c.resource, false);
    const chunk = new Uint8Array(256 * KiB).fill(0x5a);
    for (let i = 0; i < 4; i++) {
      client.send(C.CMD_WRITE, i * chunk.length, chunk.length, BigInt(i + 1), 0, chunk);
      const r = await client.reply();
      assert.equal(r.error, 0, `write ${i}`);
    }
  } finally {
    client.close();
  }
}

function syncTargetLine(s: ResourceStatus) {
  for (const conn of s.connections)
    for (const v of conn.volumes) if (v.replication === "SyncTarget") return v;
  return undefined;
}
