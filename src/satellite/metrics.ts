//! What a satellite serves on its metrics port (9942, drbd-reactor's): one exposition over the
//! statuses of every node daemon it runs, as drbd-reactor exports every DRBD resource of its
//! host, followed by the satellite's own `mirra_satellite_daemon_up`. Pure: the statuses are
//! gathered by `Satellite.metricsText` (satellite.ts) at scrape time.
//!
//! A daemon that does not answer in time is left out of the drbd and mirra families (as a
//! DRBD resource that is not up is absent from drbd-reactor's) and shows as 0 in
//! `mirra_satellite_daemon_up`, so "no series" and "daemon hung" can be told apart.

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { nodeMetrics } from "../metrics/node_metrics.js";
import { Exposition, bit } from "../metrics/exposition.js";

/** drbd-reactor's port, which LINBIT's dashboard and Piraeus' scrape configs expect. */
export const satelliteMetricsPortDefault = 9942;

const families = {
  daemonUp: {
    name: "mirra_satellite_daemon_up",
    type: "gauge",
    help:
      "Whether the node daemon of this resource answered the satellite's status request of " +
      "this scrape in time (0: not running, starting, or hung)",
  },
} as const;

/**
 * The exposition for `answers` (resource name → its daemon's status, or null when the daemon
 * did not answer), in the map's order. `isClient` says whether a resource is configured
 * diskless on this node (undefined: not known, and drbd_device_client is left out for it).
 */
export function satelliteMetrics(
  answers: ReadonlyMap<string, ResourceStatus | null>,
  isClient: (resource: string) => boolean | undefined,
): string {
  const statuses: ResourceStatus[] = [];
  const own = new Exposition(families);
  for (const [resource, status] of answers) {
    if (status !== null) statuses.push(status);
    own.value("daemonUp", [["name", resource]], bit(status !== null));
  }
  return nodeMetrics(statuses, { isClient: (resource) => isClient(resource) }) + own.text();
}
