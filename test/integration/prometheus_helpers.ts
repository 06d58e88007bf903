//! A real Prometheus server (the Debian package) for the integration tests: started on a
//! config written from scrape jobs and alert expressions (`for: 0s`, 1 s intervals, so no test
//! waits minutes), and read through its HTTP API. Every wait polls with a deadline.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { startServer, type RunningServer } from "../../src/bench/child.js";
import { waitFor } from "./daemon_cluster.js";

export const prometheusBin = "/usr/bin/prometheus";

/** A skip reason when Prometheus is not installed, else false. */
export const noPrometheus: string | false = existsSync(prometheusBin)
  ? false
  : `${prometheusBin} is not installed (apt-get install prometheus; scripts/install-deps.sh)`;

/**
 * The Piraeus alert expressions on drbd-reactor's metrics (piraeus-operator
 * config/extras/monitoring/alerts.yaml, as listed in metrics.md), verbatim.
 */
export const piraeusDrbdAlerts: Readonly<Record<string, string>> = {
  drbdConnectionNotConnected: 'drbd_connection_state{drbd_connection_state!="Connected"} > 0',
  drbdDeviceNotUpToDate: 'drbd_device_state{drbd_device_state!~"UpToDate|Diskless"} > 0',
  drbdDeviceUnintentionalDiskless: "drbd_device_unintentionaldiskless > 0",
  drbdDeviceWithoutQuorum: "drbd_device_quorum == 0",
  drbdResourceSuspended: "drbd_resource_suspended > 0",
  drbdResyncNotProgressing:
    'drbd_device_state{drbd_device_state="Inconsistent"} and delta(drbd_peerdevice_outofsync_bytes[5m]) >= 0',
  drbdNoUpToDateReplica: 'sum by (name) (drbd_device_state{drbd_device_state="UpToDate"}) == 0',
};

/** The Piraeus alert on the LINSTOR controller's node state (2 is ONLINE), verbatim. */
export const piraeusLinstorNodeAlert = {
  linstorSatelliteNotOnline: 'linstor_node_state{nodetype="SATELLITE"} != 2',
} as const;

export interface Alert {
  readonly labels: Record<string, string>;
  readonly state: string;
}

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface ScrapeJob {
  readonly job: string;
  readonly targets: readonly string[];
}

export const describeAlerts = (alerts: readonly Alert[]): string =>
  alerts.map((a) => JSON.stringify(a.labels)).join("\n") || "(none)";

export class Prometheus {
  private constructor(
    private readonly server: RunningServer,
    private readonly api: string,
    private readonly ruleCount: number,
  ) {}

  /** Starts Prometheus on `listen` (HOST:PORT) with its config and data in `dir`. */
  static async start(options: {
    readonly dir: string;
    readonly listen: string;
    readonly jobs: readonly ScrapeJob[];
    readonly alerts: Readonly<Record<string, string>>;
  }): Promise<Prometheus> {
    const { dir, listen } = options;
    writeFileSync(
      join(dir, "alerts.yaml"),
      JSON.stringify({
        groups: [
          {
            name: "piraeus",
            interval: "1s",
            rules: Object.entries(options.alerts).map(([alert, expr]) => ({
              alert,
              expr,
              for: "0s",
            })),
          },
        ],
      }),
    );
    writeFileSync(
      join(dir, "prometheus.yml"),
      JSON.stringify({
        global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
        rule_files: [join(dir, "alerts.yaml")],
        scrape_configs: options.jobs.map((j) => ({
          job_name: j.job,
          static_configs: [{ targets: j.targets }],
        })),
      }),
    );
    const server = await startServer(
      prometheusBin,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=${listen}`,
        "--log.level=warn",
      ],
      {
        readyProbe: async () =>
          (await fetch(`http://${listen}/-/ready`).catch(() => null))?.ok === true,
        timeoutMs: 20_000,
      },
    );
    return new Prometheus(server, `http://${listen}/api/v1`, Object.keys(options.alerts).length);
  }

  async stop(): Promise<void> {
    await this.server.stop(3000);
  }

  async apiGet<T>(path: string): Promise<T> {
    const res = await fetch(`${this.api}/${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  }

  async firing(): Promise<Alert[]> {
    const data = await this.apiGet<{ alerts: Alert[] }>("alerts");
    return data.alerts.filter((a) => a.state === "firing");
  }

  async query(expr: string): Promise<Sample[]> {
    const data = await this.apiGet<{ result: Sample[] }>(`query?query=${encodeURIComponent(expr)}`);
    return data.result;
  }

  /** Waits until `count` targets are up; the error lists the others' last errors. */
  async waitTargetsUp(count: number, timeoutMs = 15_000): Promise<void> {
    let seen = "";
    try {
      await waitFor(
        `Prometheus to scrape ${count} targets`,
        async () => {
          const data = await this.apiGet<{
            activeTargets: { scrapeUrl: string; health: string; lastError: string }[];
          }>("targets");
          seen = data.activeTargets
            .map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`)
            .join("; ");
          return data.activeTargets.filter((t) => t.health === "up").length === count
            ? true
            : undefined;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message} (targets: ${seen})`);
    }
  }

  /** Waits until every rule has been evaluated after `sinceMs` (epoch milliseconds). */
  async waitEvaluatedAfter(sinceMs: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      "the alert rules to be evaluated",
      async () => {
        const data = await this.apiGet<{ groups: { rules: { lastEvaluation: string }[] }[] }>(
          "rules",
        );
        const rules = data.groups.flatMap((g) => g.rules);
        return rules.length === this.ruleCount &&
          rules.every((r) => Date.parse(r.lastEvaluation) > sinceMs)
          ? true
          : undefined;
      },
      timeoutMs,
    );
  }
}
