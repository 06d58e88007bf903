//! A real Prometheus server (the Debian package) scrapes a control-plane cluster as it would
//! scrape LINSTOR with drbd-reactor: three `mirra satellite` processes on their own loopback
//! addresses, each serving the metrics of its node daemons on /metrics, and the controller's
//! `linstor_*` on /metrics of its REST port. The Piraeus alert expressions run unchanged.
//! Healthy, nothing fires; when a whole node dies (its satellite and its node daemons
//! SIGKILLed, as when a machine loses power) the peer-down alert fires on the two survivors for
//! that peer and the node-offline alert fires for that node; once its satellite is started
//! again (and restarts its daemons) both clear.
//!
//! Addresses 127.0.20.1-3 (satellites: API 26366, metrics 26942) and 127.0.20.10 (controller
//! 26370, Prometheus 26090); NBD from 26500. Every wait polls with a deadline.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { startServer, type RunningServer } from "../../src/bench/child.js";
import { startController, type RunningController } from "../../src/controller/mod.js";
import { createLogger } from "../../src/io/log.js";
import { waitFor } from "./daemon_cluster.js";
import { mirraMain } from "./nbd_helpers.js";
import { registerSatellites, restCall, viewResources } from "./test_data.js";
import {
  Prometheus,
  describeAlerts,
  noPrometheus,
  piraeusDrbdAlerts,
  piraeusLinstorNodeAlert,
  type Alert,
} from "./prometheus_helpers.js";

const quiet = createLogger({ write: () => undefined });
const hosts = ["127.0.20.1", "127.0.20.2", "127.0.20.3"];
const names = ["m1", "m2", "m3"];
const satellitePort = 26366;
const metricsPort = 26942;
const controllerAt = "127.0.20.10:26370";
const prometheusAt = "127.0.20.10:26090";
const nbdPortBase = 26500;
const resource = "pm0";
const metricsTargets = hosts.map((h) => `${h}:${metricsPort}`);

describe(
  "prometheus: a real server scrapes three satellites and the controller",
  { skip: noPrometheus },
  () => {
    let dir = "";
    let controller: RunningController | undefined;
    let prometheus: Prometheus | undefined;
    const satellites: (RunningServer | undefined)[] = [];

    const satelliteDir = (i: number): string => join(dir, "satellites", names[i]!);

    async function startSatelliteProcess(i: number): Promise<RunningServer> {
      return startServer(
        process.execPath,
        [
          mirraMain,
          "satellite",
          "--listen",
          `${hosts[i]}:${satellitePort}`,
          "--metrics",
          metricsTargets[i]!,
          "--node",
          names[i]!,
          "--data",
          satelliteDir(i),
        ],
        { readyPattern: /^satellite \S+ serves metrics on (\S+)$/m, timeoutMs: 20_000 },
      );
    }

    /** The node daemons' pids, from the satellite's pid files. */
    function daemonPids(i: number): number[] {
      const run = join(satelliteDir(i), "run");
      return readdirSync(run)
        .filter((f) => f.endsWith(".pid"))
        .map((f) => (JSON.parse(readFileSync(join(run, f), "utf8")) as { pid: number }).pid);
    }

    function alive(pid: number): boolean {
      try {
        process.kill(pid, 0);
        // A killed process whose parent died may linger as a zombie until init reaps it.
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    }

    const controllerUrl = `http://${controllerAt}`;
    const call = (method: string, path: string, body?: unknown): Promise<unknown> =>
      restCall(controllerUrl, method, path, body);

    /** True once every replica is UpToDate and Established with both others. */
    async function healthy(): Promise<true | undefined> {
      const rs = await viewResources(controllerUrl, resource);
      if (rs.length !== 3) return undefined;
      for (const r of rs) {
        const v = r.volumes[0];
        if (v?.state?.disk_state !== "UpToDate") return undefined;
        const peers = Object.values(v.state.replication_states ?? {});
        if (peers.length !== 2 || peers.some((p) => p.replication_state !== "Established"))
          return undefined;
      }
      return true;
    }

    after(async () => {
      await prometheus?.stop();
      // A clean satellite stop stops its daemons too.
      for (const s of satellites) await s?.stop(30_000);
      for (const i of names.keys()) {
        try {
          for (const pid of daemonPids(i)) if (alive(pid)) process.kill(pid, "SIGKILL");
        } catch {
          // no run directory: nothing was started
        }
      }
      await controller?.close();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    test("peer-down and node-offline fire when a node dies, and clear when it is back", async (t) => {
      const began = Date.now();
      mkdirSync("/tmp/h-sm", { recursive: true });
      dir = mkdtempSync("/tmp/h-sm/prom-sat-");
      const [cHost, cPort] = controllerAt.split(":");
      controller = await startController({
        dataDir: join(dir, "controller"),
        host: cHost!,
        port: Number(cPort),
        logger: quiet,
        satellites: { pollIntervalMs: 250, applyTimeoutMs: 30_000 },
      });
      for (const i of names.keys()) satellites.push(await startSatelliteProcess(i));
      await registerSatellites(
        controllerUrl,
        names.map((name, i) => ({
          name,
          address: hosts[i]!,
          port: satellitePort,
          poolDir: join(dir, "pools", name),
        })),
        "FILE_THIN",
        nbdPortBase,
      );
      await call("POST", "/v1/resource-groups", {
        name: "rg3",
        select_filter: { place_count: 3, storage_pool: "pool" },
      });
      await call("POST", "/v1/resource-groups/rg3/spawn", {
        resource_definition_name: resource,
        volume_sizes: [8 * 1024],
      });
      await waitFor("three replicas UpToDate and connected", healthy, 30_000);

      const p = await Prometheus.start({
        dir,
        listen: prometheusAt,
        jobs: [
          { job: "drbd-reactor", targets: metricsTargets },
          { job: "linstor-controller", targets: [controllerAt] },
        ],
        alerts: { ...piraeusDrbdAlerts, ...piraeusLinstorNodeAlert },
      });
      prometheus = p;

      // Healthy: four targets up, every series in, the rules evaluated on them, nothing firing.
      await p.waitTargetsUp(4);
      await waitFor("every satellite's and the controller's series", async () => {
        const links = await p.query(
          'count(drbd_connection_state{drbd_connection_state="Connected"} == 1)',
        );
        const daemons = await p.query("count(mirra_satellite_daemon_up == 1)");
        const online = await p.query('count(linstor_node_state{nodetype="SATELLITE"} == 2)');
        return links[0]?.value[1] === "6" &&
          daemons[0]?.value[1] === "3" &&
          online[0]?.value[1] === "3"
          ? true
          : undefined;
      });
      await p.waitEvaluatedAfter(Date.now());
      const quietAlerts = await p.firing();
      assert.deepEqual(
        quietAlerts,
        [],
        `alerts firing on a healthy cluster:\n${describeAlerts(quietAlerts)}`,
      );

      // The whole of node m2 dies: its satellite and every node daemon it runs.
      const victim = 1;
      const pids = daemonPids(victim);
      assert.equal(pids.length, 1, `m2 runs one node daemon: ${JSON.stringify(pids)}`);
      process.kill(satellites[victim]!.pid, "SIGKILL");
      for (const pid of pids) process.kill(pid, "SIGKILL");
      await waitFor("m2's satellite and daemon to be gone", async () =>
        satellites[victim]!.isRunning() || pids.some(alive) ? undefined : true,
      );
      satellites[victim] = undefined;

      const survivors = [metricsTargets[0], metricsTargets[2]].sort();
      let last: Alert[] = [];
      const down = await waitFor(
        "peer-down for m2 on m1 and m3, and node-offline for m2",
        async () => {
          last = await p.firing();
          const peerDown = last
            .filter((a) => a.labels["alertname"] === "drbdConnectionNotConnected")
            .filter((a) => a.labels["conn_name"] === "m2")
            .map((a) => a.labels["instance"])
            .sort();
          const offline = last.filter((a) => a.labels["alertname"] === "linstorSatelliteNotOnline");
          return JSON.stringify(peerDown) === JSON.stringify(survivors) &&
            offline.length === 1 &&
            offline[0]!.labels["node"] === "m2"
            ? last
            : undefined;
        },
        20_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; firing:\n${describeAlerts(last)}`);
      });
      const unrelated = down.filter(
        (a) =>
          !(
            a.labels["alertname"] === "drbdConnectionNotConnected" && a.labels["conn_name"] === "m2"
          ) && a.labels["alertname"] !== "linstorSatelliteNotOnline",
      );
      assert.deepEqual(unrelated, [], `only m2's alerts fire:\n${describeAlerts(unrelated)}`);

      // m2 comes back: its satellite finds stale pid files, the controller pushes again, and
      // the daemon starts and reconnects.
      satellites[victim] = await startSatelliteProcess(victim);
      await waitFor(
        "every alert to clear, with m2's daemon scraped again and every link Connected",
        async () => {
          last = await p.firing();
          const back = await p.query(
            `mirra_satellite_daemon_up{instance="${metricsTargets[victim]}"} == 1`,
          );
          const links = await p.query(
            'count(drbd_connection_state{drbd_connection_state="Connected"} == 1)',
          );
          return last.length === 0 && back.length === 1 && links[0]?.value[1] === "6"
            ? true
            : undefined;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; firing:\n${describeAlerts(last)}`);
      });
      t.diagnostic(`took ${((Date.now() - began) / 1000).toFixed(1)} s`);
    });
  },
);
