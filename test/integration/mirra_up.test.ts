//! `mirra up --detach` and `mirra down`: the local cluster starts, serves its volume over NBD,
//! refuses a second `up` on the same data directory, stops completely, and a second `up`
//! reuses the state (the data written before reads back), and each satellite serves its
//! daemons' metrics on the scrape target it prints. In the foreground, SIGINT stops it.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { runCommand } from "../../src/bench/child.js";
import { must } from "./daemon_cluster.js";
import { mirraMain } from "./nbd_helpers.js";

let dir: string;
const upArgs = () => [
  mirraMain,
  "up",
  "--detach",
  "--data",
  dir,
  "--addresses",
  "127.0.10.4,127.0.10.5,127.0.10.6",
  "--port",
  "21470",
  "--satellite-port",
  "21466",
  "--metrics-port",
  "21942",
  "--nbd-port",
  "21909",
  "--size",
  "64M",
  "--timeout",
  "60",
];

function pids(): number[] {
  const p = JSON.parse(readFileSync(join(dir, "mirra-up.pid"), "utf8")) as {
    controller: number;
    satellites: number[];
  };
  return [p.controller, ...p.satellites];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

before(() => {
  mkdirSync("/tmp/h-sat", { recursive: true });
  dir = mkdtempSync("/tmp/h-sat/up-");
});

after(async () => {
  await runCommand(process.execPath, [mirraMain, "down", "--data", dir], { timeoutMs: 90_000 });
  rmSync(dir, { recursive: true, force: true });
});

test("mirra up --detach serves a replicated volume; mirra down stops it; up again reuses it", async () => {
  const out = await must(process.execPath, upArgs(), 90_000);
  const uris = [...out.matchAll(/^ {2}(nbd:\/\/\S+)/gm)].map((m) => m[1]!);
  assert.deepEqual(uris, ["nbd://127.0.10.4:21909/r0", "nbd://127.0.10.5:21909/r0"]);
  assert.equal((await must("nbdinfo", ["--size", uris[0]!])).trim(), String(64 * 1024 * 1024));
  const running = pids();
  assert.ok(running.every(alive));
  // Each satellite serves its daemons' metrics on its own address, as printed for Prometheus.
  const targets = /satellites \(drbd-reactor's metrics\): (.*)$/m.exec(out)?.[1]?.split(" ");
  assert.deepEqual(targets, ["127.0.10.4:21942", "127.0.10.5:21942", "127.0.10.6:21942"], out);
  assert.match(out, /controller \(linstor_\* metrics\): 127\.0\.0\.1:21470$/m);
  const scraped = await (await fetch(`http://${targets[0]}/metrics`)).text();
  assert.match(
    scraped,
    /^drbd_device_state\{name="r0",volume="0",drbd_device_state="UpToDate"\} 1$/m,
  );
  assert.match(scraped, /^mirra_satellite_daemon_up\{name="r0"\} 1$/m);

  const again = await runCommand(process.execPath, upArgs(), { timeoutMs: 30_000 });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already runs from .*mirra down/);

  const data = Buffer.alloc(1024 * 1024, "mirra up ");
  const input = join(dir, "in.bin");
  writeFileSync(input, data);
  await must("nbdcopy", [input, uris[0]!]);

  await must(process.execPath, [mirraMain, "down", "--data", dir], 90_000);
  assert.ok(!existsSync(join(dir, "mirra-up.pid")));
  assert.ok(running.every((pid) => !alive(pid)));

  await must(process.execPath, upArgs(), 90_000);
  const output = join(dir, "out.bin");
  await must("nbdcopy", [uris[1]!, output]);
  assert.ok(readFileSync(output).subarray(0, data.length).equals(data));
  await must(process.execPath, [mirraMain, "down", "--data", dir], 90_000);
});

test("mirra up in the foreground stops everything on SIGINT", async () => {
  const args = upArgs().filter((a) => a !== "--detach");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("stop it with Ctrl-C")) resolve();
    });
    void exited.then((code) => reject(new Error(`mirra up exited ${code}: ${out}${err}`)));
  });
  const running = pids();
  assert.ok(running.every(alive));
  child.kill("SIGINT");
  assert.equal(await exited, 0);
  assert.ok(running.every((pid) => !alive(pid)));
  assert.ok(!existsSync(join(dir, "mirra-up.pid")));
});
