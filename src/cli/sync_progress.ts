//! Progress of resyncs and online verifies for `mirra status --watch`: a bar with the percentage, the rate (the
//! daemon's measured resync speed, else how fast the out-of-sync amount shrinks between two
//! samples) and the time left. On a SyncTarget both come from the daemon's estimate of what
//! the resync moves (volume_host.ts, targetProgress), so the target's line is not stuck at 100%.
//! Pure: the watcher in status_watch.ts samples the daemon and prints these lines.

import type { PeerVolumeLine, ResourceStatus } from "../daemon/admin_protocol.js";

export interface SyncProgress {
  readonly resource: string;
  readonly peer: string;
  readonly volume: number;
  readonly replication: string;
  readonly donePercent: number;
  readonly outOfSyncBytes: number;
  /** Bytes per second; undefined on the first sample when the daemon has no speed yet. */
  readonly rateBytesPerSecond: number | undefined;
  /** Seconds left at that rate; undefined when there is no rate yet. */
  readonly etaSeconds: number | undefined;
}

/** What the resync (out-of-sync bytes) or online verify (bytes not compared yet) has left. */
function leftBytes(v: PeerVolumeLine): number {
  const verify = v.traffic?.verifyRemainingBlocks;
  return verify !== undefined ? verify * 4096 : v.outOfSyncKiB * 1024;
}

function key(resource: string, peer: string, volume: number): string {
  return `${resource}\u0000${peer}\u0000${volume}`;
}

/** Every peer volume that is syncing now, with its rate against the previous sample. */
export function syncProgress(
  previous: readonly ResourceStatus[] | undefined,
  current: readonly ResourceStatus[],
  intervalSeconds: number,
): SyncProgress[] {
  const before = new Map<string, number>();
  for (const r of previous ?? [])
    for (const c of r.connections)
      for (const v of c.volumes) before.set(key(r.resource, c.name, v.volume), leftBytes(v));
  const out: SyncProgress[] = [];
  for (const r of current)
    for (const c of r.connections)
      for (const v of c.volumes) {
        if (v.donePercent === undefined) continue;
        const was = before.get(key(r.resource, c.name, v.volume));
        // The daemon's own speed (blocks finished over its last second) when it has one;
        // else how fast the out-of-sync amount shrank between the two samples.
        const measured = v.traffic?.resyncRateBytesPerSecond ?? 0;
        const bytes = leftBytes(v);
        const rate =
          measured > 0
            ? measured
            : was !== undefined && intervalSeconds > 0
              ? Math.max(0, (was - bytes) / intervalSeconds)
              : undefined;
        out.push({
          resource: r.resource,
          peer: c.name,
          volume: v.volume,
          replication: v.replication,
          donePercent: v.donePercent,
          outOfSyncBytes: bytes,
          rateBytesPerSecond: rate,
          etaSeconds: rate !== undefined && rate > 0 ? bytes / rate : undefined,
        });
      }
  return out;
}

function bytesText(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function durationText(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** One line: `r0 n1/0 SyncTarget [#####-----]  50.0%  12.0 MiB/s  ETA 0:42`. */
export function formatSyncProgress(p: SyncProgress, barWidth = 20): string {
  const filled = Math.max(0, Math.min(barWidth, Math.round((p.donePercent / 100) * barWidth)));
  const bar = `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]`;
  const rate = p.rateBytesPerSecond !== undefined ? `${bytesText(p.rateBytesPerSecond)}/s` : "-";
  const eta = p.etaSeconds !== undefined ? `ETA ${durationText(p.etaSeconds)}` : "ETA -";
  return [
    `${p.resource} ${p.peer}/${p.volume} ${p.replication}`,
    bar,
    `${p.donePercent.toFixed(1).padStart(5)}%`,
    `${bytesText(p.outOfSyncBytes)} left`,
    rate,
    eta,
  ].join("  ");
}
