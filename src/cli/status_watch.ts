//! `mirra status --watch`: the status, refreshed every second, with a progress bar (rate, ETA)
//! for every resync or verify. On a terminal the screen is redrawn in place; otherwise each
//! sample prints plain progress lines (and the status whenever it changes), so a log reads
//! top to bottom.

import { adminCall } from "../daemon/admin_client.js";
import { formatStatus, type ResourceStatus } from "../daemon/admin_protocol.js";
import { admSocketPath, statusPaint, type AdmOptions } from "./adm.js";
import { formatSyncProgress, syncProgress } from "./sync_progress.js";

const intervalMs = 1000;

export async function watchStatus(
  resource: string | undefined,
  options: AdmOptions,
): Promise<void> {
  const live = process.stdout.isTTY === true;
  const paint = statusPaint(options);
  let previous: readonly ResourceStatus[] | undefined;
  let lastText = "";
  for (;;) {
    const response = await adminCall(admSocketPath(options), {
      command: "status",
      ...(resource !== undefined ? { resource } : {}),
    });
    const current = response.status ?? [];
    const text = current.map((r) => formatStatus(r, paint)).join("\n\n");
    const bars = syncProgress(previous, current, intervalMs / 1000).map((p) =>
      formatSyncProgress(p),
    );
    if (live) {
      process.stdout.write(
        `\x1b[H\x1b[2J${text}\n${bars.length ? "\n" + bars.join("\n") + "\n" : ""}`,
      );
    } else {
      if (text !== lastText) process.stdout.write(text + "\n");
      for (const b of bars) process.stdout.write(b + "\n");
    }
    lastText = text;
    previous = current;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
