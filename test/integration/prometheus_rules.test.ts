//! The shipped Prometheus alert rules (deploy/prometheus/) pass Prometheus's own checker, and
//! their unit tests (synthetic series: which alerts fire, which stay quiet) pass promtool; the
//! Grafana dashboard (deploy/grafana/) is well formed and queries only what mirra serves.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { mirraFamilies } from "../../src/metrics/mirra_metrics.js";

const dir = fileURLToPath(new URL("../../../deploy/prometheus/", import.meta.url));

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd: dir, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}${r.error?.message ?? ""}` };
}

test("alert rules: promtool check rules accepts every rule", () => {
  const r = promtool("check", "rules", "mirra-alerts.yaml");
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS: 13 rules found/);
});

test("alert rules: each alert fires on the series that should trigger it, not otherwise", () => {
  const r = promtool("test", "rules", "mirra-alerts.test.yaml");
  assert.equal(r.status, 0, r.output);
});

interface DashboardPanel {
  id: number;
  title: string;
  type: string;
  targets: { expr: string; refId: string }[];
}

test("grafana dashboard: well formed, every query parses as PromQL and uses metrics mirra exports", () => {
  const file = fileURLToPath(
    new URL("../../../deploy/grafana/mirra-dashboard.json", import.meta.url),
  );
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as {
    uid: string;
    panels: DashboardPanel[];
  };
  assert.equal(dashboard.uid, "mirra-replication");
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 10);
  // The metric names the daemon serves (src/metrics/drbd_reactor.ts), and Prometheus's `up`.
  const served = new Set([
    "drbd_device_read_bytes_total",
    "drbd_device_written_bytes_total",
    "drbd_device_alwrites_total",
    "drbd_device_bmwrites_total",
    "drbd_device_upperpending",
    "drbd_device_lowerpending",
    "drbd_peerdevice_sent_bytes",
    "drbd_peerdevice_received_bytes",
    "drbd_resource_resources",
    "drbd_resource_role",
    "drbd_resource_suspended",
    "drbd_connection_state",
    "drbd_peerdevice_outofsync_bytes",
    "drbd_device_state",
    "drbd_device_quorum",
    "drbd_device_size_bytes",
    "drbd_device_client",
    "drbd_device_unintentionaldiskless",
  ]);
  for (const e of exprs)
    for (const name of e.match(/\bdrbd_[a-z_]+\b/g) ?? [])
      assert.ok(served.has(name), `${name} in "${e}" is not served`);
  // mirra's own families (src/metrics/mirra_metrics.ts), histograms by their series names.
  const mirra = new Set(
    Object.values(mirraFamilies).flatMap((f) =>
      f.type === "histogram" ? ["_bucket", "_sum", "_count"].map((x) => f.name + x) : [f.name],
    ),
  );
  for (const e of exprs)
    for (const name of e.match(/\bmirra_[a-z_]+\b/g) ?? [])
      assert.ok(mirra.has(name), `${name} in "${e}" is not served`);
  // The controller's (LINSTOR's names).
  const linstor = new Set([
    "linstor_storage_pool_capacity_free_bytes",
    "linstor_storage_pool_capacity_total_bytes",
  ]);
  for (const e of exprs)
    for (const name of e.match(/\blinstor_[a-z_]+\b/g) ?? [])
      assert.ok(linstor.has(name), `${name} in "${e}" is not served by the controller`);
  // promtool parses PromQL when it checks rules: one recording rule per query (JSON is YAML).
  const tmp = mkdtempSync(join(tmpdir(), "mirra-dash-"));
  try {
    const rules = {
      groups: [
        { name: "dashboard", rules: exprs.map((expr, i) => ({ record: `dash:q${i}`, expr })) },
      ],
    };
    writeFileSync(join(tmp, "rules.yaml"), JSON.stringify(rules));
    const r = spawnSync("promtool", ["check", "rules", "rules.yaml"], {
      cwd: tmp,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
