//! The controller's Prometheus metrics under LINSTOR's `linstor_*` names and labels (docs:
//! ../shared/reference/metrics.md), so that the Piraeus alerts on `linstor_node_state`, pool
//! capacity and error reports work unchanged. Pure: one snapshot in, exposition text (format
//! 0.0.4) out; `api_metrics.ts` gathers the snapshot and serves it on `/metrics`.
//!
//! Written by hand, as `src/metrics/drbd_reactor.ts` is (same escaping). What follows LINSTOR's
//! PrometheusBuilder, and where mirra differs:
//! * Values LINSTOR defines for "unknown" are used as LINSTOR uses them: `linstor_resource_state`
//!   -1 when no satellite said whether the resource is in use, `linstor_volume_state` -1
//!   (DUnknown) without a disk state.
//! * Where LINSTOR writes NaN for an unknown number (pool capacity, allocated size), mirra
//!   leaves the sample out: "only where known". A diskless pool has capacity 0, as in LINSTOR.
//! * Families without samples are left out; each family is `# HELP`, then `# TYPE`, then its
//!   samples, in LINSTOR's order. The names (`_count` gauges, a counter without `_total`) are
//!   LINSTOR's and stay, although Prometheus's naming lint dislikes them.

import { escapeLabelValue } from "../metrics/drbd_reactor.js";
import { nodeConnectionStatuses, type NodeConnectionStatus } from "./observed_state.js";

export interface NodeSample {
  name: string;
  type: string;
  connectionStatus: NodeConnectionStatus;
  flags: readonly string[];
  /** The active satellite connection, when the node has one. */
  satellite?: { address: string; encryption: string; port: number };
}

export interface ResourceDefinitionSample {
  name: string;
  resourceGroup: string;
  volumes: readonly { volumeNumber: number; sizeKib: number }[];
}

export interface ResourceSample {
  name: string;
  node: string;
  /** Whether the resource is in use (Primary) there; undefined: not known. */
  inUse: boolean | undefined;
  /** The resource is diskless by intent (DRBD_DISKLESS), so "Diskless" is its normal state. */
  drbdDiskless: boolean;
  volumes: readonly {
    volumeNumber: number;
    storagePool: string;
    devicePath: string;
    diskState: string | undefined;
  }[];
}

export interface StoragePoolSample {
  name: string;
  node: string;
  driver: string;
  backingPool: string;
  freeKib: number | undefined;
  totalKib: number | undefined;
}

export interface ControllerMetricsSnapshot {
  version: string;
  buildTime: string;
  gitId: string;
  nodes: readonly NodeSample[];
  resourceDefinitions: readonly ResourceDefinitionSample[];
  /** Undefined when the scrape asked for `resource=false`. */
  resources: readonly ResourceSample[] | undefined;
  /** Undefined when the scrape asked for `storage_pools=false`. */
  storagePools: readonly StoragePoolSample[] | undefined;
  /** Undefined when the scrape asked for `error_reports=false`. */
  errorReports: readonly { hostname: string; module: string }[] | undefined;
  scrapeRequests: number;
  scrapeDurationSeconds: number;
}

/** LINSTOR's volume state values (PrometheusBuilder.VolumeStates); anything else is -1. */
export const volumeStateValues: Readonly<Record<string, number>> = {
  UpToDate: 1,
  Created: 2,
  Attached: 3,
  Diskless: 4,
  Inconsistent: 5,
  Failed: 6,
  "To: Creating": 7,
  "To: Attachable": 8,
  "To: Attaching": 9,
  "Diskless(Detached)": 90,
  DUnknown: -1,
};

/** The node flags LINSTOR exports as `linstor_node_flag`. */
const exportedNodeFlags = ["DELETE", "EVICTED", "EVACUATE"] as const;

type Labels = readonly (readonly [string, string])[];

function sample(name: string, labels: Labels, value: number): string {
  if (!Number.isFinite(value)) throw new Error(`metric ${name}: value ${value} is not finite`);
  const body = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
  return `${name}${labels.length > 0 ? `{${body}}` : ""} ${value}`;
}

function nodeLabels(n: NodeSample): Labels {
  return [
    ["node", n.name],
    ["nodetype", n.type],
    ...(n.satellite === undefined
      ? []
      : ([
          ["address", n.satellite.address],
          ["encryption", n.satellite.encryption],
          ["port", String(n.satellite.port)],
        ] as const)),
  ];
}

function volumeState(r: ResourceSample, diskState: string | undefined): number {
  if (diskState === undefined) return -1;
  const state = diskState === "Diskless" && !r.drbdDiskless ? "Diskless(Detached)" : diskState;
  const key = Object.keys(volumeStateValues).find((k) => k.toLowerCase() === state.toLowerCase());
  return key === undefined ? -1 : volumeStateValues[key]!;
}

const statusHelp = nodeConnectionStatuses.map((s, i) => `${i}="${s}"`).join(", ");
const volumeStateHelp = Object.entries(volumeStateValues)
  .map(([k, v]) => `${v}="${k}"`)
  .join(", ");

/** The exposition text for one scrape; ends with a line feed. */
export function controllerMetrics(s: ControllerMetricsSnapshot): string {
  const out: string[] = [];
  const family = (
    name: string,
    type: "gauge" | "counter",
    help: string,
    lines: readonly string[],
  ): void => {
    if (lines.length === 0) return;
    out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${name} ${type}`, ...lines);
  };

  family("linstor_info", "gauge", "LINSTOR controller version information", [
    sample(
      "linstor_info",
      [
        ["version", s.version],
        ["buildtime", s.buildTime],
        ["gitid", s.gitId],
      ],
      1,
    ),
  ]);
  family(
    "linstor_node_state",
    "gauge",
    statusHelp,
    s.nodes.map((n) =>
      sample(
        "linstor_node_state",
        nodeLabels(n),
        nodeConnectionStatuses.indexOf(n.connectionStatus),
      ),
    ),
  );
  family(
    "linstor_node_flag",
    "gauge",
    "1 if the node flag is set, 0 otherwise",
    s.nodes.flatMap((n) =>
      exportedNodeFlags.map((flag) => {
        const evicted = n.flags.includes("EVICTED");
        const set = n.flags.includes(flag) && !(flag === "DELETE" && evicted);
        return sample("linstor_node_flag", [...nodeLabels(n), ["flag", flag]], set ? 1 : 0);
      }),
    ),
  );

  family("linstor_resource_definition_count", "gauge", "Number of resource definitions", [
    sample("linstor_resource_definition_count", [], s.resourceDefinitions.length),
  ]);
  const resources = s.resources;
  if (resources !== undefined) {
    family(
      "linstor_resource_definition_resource_count",
      "gauge",
      "Number of resources of each resource definition",
      s.resourceDefinitions.map((rd) =>
        sample(
          "linstor_resource_definition_resource_count",
          [
            ["name", rd.name],
            ["resource_group", rd.resourceGroup],
          ],
          resources.filter((r) => r.name.toLowerCase() === rd.name.toLowerCase()).length,
        ),
      ),
    );
  }
  family(
    "linstor_volume_definition_size_bytes",
    "gauge",
    "Size of each volume definition in bytes",
    s.resourceDefinitions.flatMap((rd) =>
      rd.volumes.map((v) =>
        sample(
          "linstor_volume_definition_size_bytes",
          [
            ["name", rd.name],
            ["volume_number", String(v.volumeNumber)],
            ["resource_group", rd.resourceGroup],
          ],
          v.sizeKib * 1024,
        ),
      ),
    ),
  );

  if (resources !== undefined) {
    family(
      "linstor_resource_state",
      "gauge",
      '-1="unknown state", 0="secondary", 1="primary"',
      resources.map((r) =>
        sample(
          "linstor_resource_state",
          [
            ["name", r.name],
            ["node", r.node],
          ],
          r.inUse === undefined ? -1 : r.inUse ? 1 : 0,
        ),
      ),
    );
    family(
      "linstor_volume_state",
      "gauge",
      volumeStateHelp,
      resources.flatMap((r) =>
        r.volumes.map((v) =>
          sample(
            "linstor_volume_state",
            [
              ["resource", r.name],
              ["node", r.node],
              ["volume", String(v.volumeNumber)],
              ["device_path", v.devicePath],
              ["storage_pool", v.storagePool],
            ],
            volumeState(r, v.diskState),
          ),
        ),
      ),
    );
  }

  if (s.storagePools !== undefined) {
    const poolLabels = (p: StoragePoolSample): Labels => [
      ["storage_pool", p.name],
      ["node", p.node],
      ["driver", p.driver],
      ["backing_pool", p.backingPool],
    ];
    const capacity = (p: StoragePoolSample, kib: number | undefined): number | undefined =>
      p.driver === "DISKLESS" ? 0 : kib === undefined ? undefined : kib * 1024;
    for (const [name, pick, help] of [
      [
        "linstor_storage_pool_capacity_free_bytes",
        (p: StoragePoolSample) => p.freeKib,
        "Free capacity of each storage pool in bytes",
      ],
      [
        "linstor_storage_pool_capacity_total_bytes",
        (p: StoragePoolSample) => p.totalKib,
        "Total capacity of each storage pool in bytes",
      ],
    ] as const) {
      family(
        name,
        "gauge",
        help,
        s.storagePools.flatMap((p) => {
          const v = capacity(p, pick(p));
          return v === undefined ? [] : [sample(name, poolLabels(p), v)];
        }),
      );
    }
  }

  if (s.errorReports !== undefined) {
    const counts = new Map<string, { hostname: string; module: string; n: number }>();
    for (const r of s.errorReports) {
      const key = `${r.hostname}\n${r.module}`;
      const c = counts.get(key) ?? { hostname: r.hostname, module: r.module, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    family("linstor_error_reports_count", "gauge", "Number of error reports", [
      sample("linstor_error_reports_count", [], s.errorReports.length),
      ...[...counts.values()]
        .sort((a, b) => (a.hostname + a.module < b.hostname + b.module ? -1 : 1))
        .map((c) =>
          sample(
            "linstor_error_reports_count",
            [
              ["hostname", c.hostname],
              ["module", c.module],
            ],
            c.n,
          ),
        ),
    ]);
  }

  family("linstor_scrape_requests_count", "counter", "Number of scrapes of /metrics", [
    sample("linstor_scrape_requests_count", [], s.scrapeRequests),
  ]);
  family("linstor_scrape_duration_seconds", "gauge", "Time this scrape took to build", [
    sample("linstor_scrape_duration_seconds", [], s.scrapeDurationSeconds),
  ]);
  return out.join("\n") + "\n";
}
