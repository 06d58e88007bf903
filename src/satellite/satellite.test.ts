import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../io/log.js";
import { parseDesiredPush, type DesiredPush, type SatelliteReport } from "./protocol.js";
import { Satellite } from "./satellite.js";

const quiet = createLogger({ write: () => undefined });

async function withSatellite(fn: (s: Satellite, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), "mirra-sat-"));
  try {
    await fn(new Satellite({ node: "n1", dataDir: dir, logger: quiet }), dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function push(generation: number, dir: string, node = "n1"): DesiredPush {
  return {
    node,
    generation,
    state: {
      pools: [{ name: "p", kind: "FILE_THIN", directory: join(dir, "pool") }],
      resources: [],
    },
  };
}

test("satellite: a push is applied before the answer, which reports the pool's capacity", () =>
  withSatellite(async (s, dir) => {
    const r = (await s.receive(push(5, dir))) as SatelliteReport;
    assert.equal(r.appliedGeneration, 5);
    assert.ok(fs.existsSync(join(dir, "pool")));
    assert.equal(r.pools.length, 1);
    assert.ok(r.pools[0]!.freeKib! > 0 && r.pools[0]!.totalKib! >= r.pools[0]!.freeKib!);
  }));

test("satellite: an older generation and another node's state are refused", () =>
  withSatellite(async (s, dir) => {
    await s.receive(push(5, dir));
    assert.deepEqual(await s.receive(push(3, dir)), {
      error: "generation 3 is older than 5",
      generation: 5,
    });
    const other = await s.receive(push(9, dir, "n2"));
    assert.ok("error" in other && /not 'n2'/.test(other.error));
    // The same generation again is answered from the state held.
    const same = (await s.receive(push(5, dir))) as SatelliteReport;
    assert.equal(same.generation, 5);
  }));

test("satellite: before the first push, a pass leaves an earlier run's files alone", () =>
  withSatellite(async (s, dir) => {
    const resources = join(dir, "resources");
    fs.mkdirSync(resources, { recursive: true });
    fs.writeFileSync(join(resources, "r0.json"), "{}");
    s.requestPass();
    await s.idle();
    assert.ok(fs.existsSync(join(resources, "r0.json")));
    assert.equal(s.current().generation, 0);
  }));

test("protocol: a push is checked field by field", () => {
  const good = {
    node: "n1",
    generation: 1,
    state: {
      pools: [{ name: "p", kind: "FILE", directory: "/srv/p" }],
      resources: [
        {
          name: "r0",
          nodeName: "n1",
          host: "127.0.0.1",
          port: 7000,
          sharedSecret: "x",
          nodeId: 0,
          peerSlots: 7,
          diskless: false,
          pool: "p",
          volumes: [{ volume: 0, sizeKib: 4096, nbd: "127.0.0.1:10809" }],
          peers: [{ name: "n2", nodeId: 1, host: "127.0.0.2", poolDirectory: null }],
          options: { quorum: "majority", "on-no-quorum": "io-error", "max-buffers": 8000 } as
            Record<string, unknown> | undefined,
        },
      ],
    },
  };
  // DRBD options reach the satellite (they were dropped, so quorum never did).
  assert.deepEqual(parseDesiredPush(good), good);
  const bad = (patch: (v: typeof good) => void): string => {
    const v = structuredClone(good);
    patch(v);
    const r = parseDesiredPush(v);
    assert.equal(typeof r, "string");
    return r as string;
  };
  assert.match(
    bad((v) => (v.state.resources[0]!.options = { quorum: ["majority"] })),
    /options.quorum must be a string, number or boolean/,
  );
  assert.match(
    bad((v) => (v.state.pools[0]!.kind = "LVM")),
    /kind must be FILE or FILE_THIN/,
  );
  assert.match(
    bad((v) => (v.state.pools[0]!.directory = "rel")),
    /must be absolute/,
  );
  assert.match(
    bad((v) => (v.state.resources[0]!.volumes[0]!.sizeKib = 1022)),
    /multiple of 4/,
  );
  assert.match(
    bad((v) => (v.state.resources[0]!.nodeId = 32)),
    /nodeId must be an integer in 0\.\.31/,
  );
  assert.match(
    bad((v) => (v.generation = 0)),
    /generation/,
  );
});

test("satellite: metrics are served on GET /metrics of their own port", async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), "mirra-sat-"));
  const { startSatellite } = await import("./satellite.js");
  const s = await startSatellite({
    node: "n1",
    dataDir: dir,
    host: "127.0.0.1",
    port: 0,
    logger: quiet,
    metrics: { host: "127.0.0.1", port: 0 },
  });
  try {
    assert.match(s.metricsUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await fetch(s.metricsUrl!);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await r.text(), /^drbd_resource_resources 0$/m);
    const other = await fetch(s.metricsUrl!.replace(/\/metrics$/, "/v1/report"));
    assert.equal(other.status, 404);
    await other.text();
  } finally {
    await s.close(true);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
