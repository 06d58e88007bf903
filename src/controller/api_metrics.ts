//! `GET /metrics` on the controller's port: gathers a snapshot from the store and the observed
//! state and renders it with `metrics.ts`. LINSTOR's query parameters `resource`,
//! `storage_pools` and `error_reports` (each true unless `false`) leave those families out.

import type { FastifyInstance } from "fastify";
import { queryList, type Query } from "./input.js";
import { controllerMetrics, type ControllerMetricsSnapshot } from "./metrics.js";
import type { ObservedState } from "./observed_state.js";
import type { ControllerStore, StoreReader } from "./store/store.js";

export interface MetricsRouteOptions {
  store: ControllerStore;
  observed: ObservedState;
  version: string;
  /** Monotonic seconds, for the scrape's duration. */
  monotonicSeconds: () => number;
}

function wanted(q: Query, key: string): boolean {
  const v = queryList(q, key);
  return v.length === 0 || v[v.length - 1]!.toLowerCase() !== "false";
}

export function metricsSnapshot(
  tx: StoreReader,
  observed: ObservedState,
  version: string,
  include: { resources: boolean; storagePools: boolean; errorReports: boolean },
): Omit<ControllerMetricsSnapshot, "scrapeRequests" | "scrapeDurationSeconds"> {
  const vds = tx.volumeDefinitions();
  return {
    version,
    buildTime: "",
    gitId: "",
    nodes: tx.nodes().map((n) => {
      const active = n.netInterfaces.find((i) => i.isActive && i.satellitePort !== null);
      return {
        name: n.name,
        type: n.type,
        connectionStatus: observed.nodeConnectionStatus(n.name),
        flags: n.flags,
        ...(active === undefined
          ? {}
          : {
              satellite: {
                address: active.address,
                encryption: active.encryptionType,
                port: active.satellitePort!,
              },
            }),
      };
    }),
    resourceDefinitions: tx.resourceDefinitions().map((rd) => ({
      name: rd.name,
      resourceGroup: rd.resourceGroup,
      volumes: vds
        .filter((v) => v.resourceDefinition.toLowerCase() === rd.name.toLowerCase())
        .map((v) => ({ volumeNumber: v.volumeNumber, sizeKib: v.sizeKib })),
    })),
    resources: include.resources
      ? tx.resources().map((r) => ({
          name: r.resourceDefinition,
          node: r.node,
          inUse: observed.resourceInUse(r.resourceDefinition, r.node),
          drbdDiskless: r.flags.includes("DRBD_DISKLESS"),
          volumes: vds
            .filter(
              (v) => v.resourceDefinition.toLowerCase() === r.resourceDefinition.toLowerCase(),
            )
            .map((v) => ({
              volumeNumber: v.volumeNumber,
              storagePool: r.storagePool,
              // mirra's devices are NBD exports named by the satellite; none is known here.
              devicePath: "",
              diskState: observed.volumeDiskState(r.resourceDefinition, r.node, v.volumeNumber),
            })),
        }))
      : undefined,
    storagePools: include.storagePools
      ? tx.storagePools().map((p) => {
          const capacity = observed.poolCapacity(p.node, p.name);
          return {
            name: p.name,
            node: p.node,
            driver: p.providerKind,
            backingPool: p.props["StorDriver/StorPoolName"] ?? "",
            freeKib: capacity?.freeKib,
            totalKib: capacity?.totalKib,
          };
        })
      : undefined,
    errorReports: include.errorReports
      ? tx.errorReports().map((r) => ({ hostname: r.nodeName, module: r.module }))
      : undefined,
  };
}

export function registerMetricsRoute(app: FastifyInstance, options: MetricsRouteOptions): void {
  let scrapes = 0;
  app.get("/metrics", (request, reply) => {
    const start = options.monotonicSeconds();
    scrapes++;
    const q = request.query as Query;
    const snapshot = options.store.read((tx) =>
      metricsSnapshot(tx, options.observed, options.version, {
        resources: wanted(q, "resource"),
        storagePools: wanted(q, "storage_pools"),
        errorReports: wanted(q, "error_reports"),
      }),
    );
    const text = controllerMetrics({
      ...snapshot,
      scrapeRequests: scrapes,
      scrapeDurationSeconds: Math.max(0, options.monotonicSeconds() - start),
    });
    return reply.code(200).type("text/plain; version=0.0.4; charset=utf-8").send(text);
  });
}
