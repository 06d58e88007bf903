//! Everything one node serves on its metrics port (9942): drbd-reactor's families
//! (drbd_reactor.ts) followed by mirra's own (mirra_metrics.ts). Pure. A process that runs
//! several daemons (the satellite) gathers all their statuses and calls this once: the text
//! format allows each family's TYPE and HELP only once per scrape.

import type { ResourceStatus } from "../daemon/admin_protocol.js";
import { drbdReactorMetrics, type DrbdReactorOptions } from "./drbd_reactor.js";
import { mirraMetrics } from "./mirra_metrics.js";

export function nodeMetrics(
  status: readonly ResourceStatus[],
  options: DrbdReactorOptions = {},
): string {
  const names = new Set<string>();
  for (const r of status) {
    if (names.has(r.resource))
      throw new Error(`resource ${r.resource} is in two statuses: its series would collide`);
    names.add(r.resource);
  }
  return drbdReactorMetrics(status, options) + mirraMetrics(status);
}
