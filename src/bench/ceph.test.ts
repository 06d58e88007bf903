import assert from "node:assert/strict";
import { test } from "node:test";

import {
  allPgsClean,
  cephConf,
  describeCephStatus,
  monAddrs,
  osdBlockBytes,
  type CephStatus,
} from "./ceph.js";
import { shellQuoteWithEnv } from "./child.js";

const params = {
  fsid: "0bd3dfe6-e8a6-47d2-a0f0-2d772cc54ce2",
  dir: "/tmp/b/ceph",
  monV2Port: 24300,
  monV1Port: 24789,
  osdBlockBytes: 6 * 1024 ** 3,
};

/** The `key = value` lines of the [global] section. */
function settings(conf: string): Map<string, string> {
  const lines = conf.split("\n").filter((l) => l.includes(" = "));
  return new Map(lines.map((l) => [l.slice(0, l.indexOf(" = ")), l.slice(l.indexOf(" = ") + 3)]));
}

test("ceph.conf: size 3 on one host, auth off, every path under the cluster directory", () => {
  const conf = cephConf(params);
  assert.ok(conf.startsWith("[global]\n"));
  const s = settings(conf);
  assert.equal(s.get("fsid"), params.fsid);
  assert.equal(s.get("mon host"), "[v2:127.0.0.1:24300,v1:127.0.0.1:24789]");
  assert.equal(s.get("osd pool default size"), "3");
  assert.equal(s.get("osd pool default min size"), "2");
  assert.equal(s.get("osd crush chooseleaf type"), "0");
  for (const k of ["auth cluster required", "auth service required", "auth client required"])
    assert.equal(s.get(k), "none", k);
  assert.equal(s.get("rbd cache"), "false", "BENCH.md: no client cache");
  assert.equal(s.get("bluestore block size"), String(params.osdBlockBytes));
  for (const [k, v] of s) {
    if (v.startsWith("/")) assert.ok(v.startsWith(`${params.dir}/`), `${k} = ${v} stays inside`);
  }
  assert.ok(!conf.includes("/etc/ceph") && !conf.includes("/var/lib/ceph"));
});

test("monitor address vector and OSD file size", () => {
  assert.equal(monAddrs(params), "[v2:127.0.0.1:24300,v1:127.0.0.1:24789]");
  const MiB = 1024 * 1024;
  assert.equal(osdBlockBytes(256 * MiB), (512 + 4096) * MiB);
  assert.equal(osdBlockBytes(1) % MiB, 0, "whole MiB");
  assert.ok(osdBlockBytes(1024 ** 3) >= 2 * 1024 ** 3, "a full copy and slack");
});

test("PGs count as clean only when all exist and all are active+clean", () => {
  const status = (states: [string, number][], total: number): CephStatus => ({
    pgmap: {
      num_pgs: total,
      pgs_by_state: states.map(([state_name, count]) => ({ state_name, count })),
    },
  });
  assert.equal(allPgsClean(status([["active+clean", 33]], 33), 32), true);
  assert.equal(allPgsClean(status([["active+clean", 1]], 1), 32), false, "pool not created yet");
  assert.equal(
    allPgsClean(
      status(
        [
          ["active+clean", 30],
          ["peering", 3],
        ],
        33,
      ),
      32,
    ),
    false,
  );
  assert.equal(allPgsClean({}, 32), false);
});

test("a status reads like `ceph -s`: health with its checks, OSDs, PG states", () => {
  const s: CephStatus = {
    health: {
      status: "HEALTH_WARN",
      checks: { OSD_DOWN: { summary: { message: "1 osds down" } } },
    },
    osdmap: { num_osds: 3, num_up_osds: 2 },
    pgmap: {
      num_pgs: 33,
      pgs_by_state: [
        { state_name: "active+undersized", count: 30 },
        { state_name: "peering", count: 3 },
      ],
    },
  };
  assert.equal(
    describeCephStatus(s),
    "HEALTH_WARN (1 osds down); osd: 2 of 3 up; pgs: 33 (30 active+undersized, 3 peering)",
  );
  assert.equal(describeCephStatus({}), "health unknown; osd: 0 of 0 up; pgs: 0");
});

test("fio's command line carries CEPH_CONF in front, quoted for a shell", () => {
  assert.equal(
    shellQuoteWithEnv({ CEPH_CONF: "/tmp/a b/ceph.conf" }, ["fio", "--ioengine=rbd"]),
    "CEPH_CONF='/tmp/a b/ceph.conf' fio --ioengine=rbd",
  );
  assert.equal(shellQuoteWithEnv({}, ["fio"]), "fio");
});
