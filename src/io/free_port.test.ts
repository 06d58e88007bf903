import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { test } from "node:test";

import { freePort } from "./free_port.js";

test("freePort never hands out the same port twice, and never one the kernel picks itself", async () => {
  const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
    .trim()
    .split(/\s+/)
    .map(Number);
  const ports = [];
  for (let i = 0; i < 300; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports) assert.ok(port < low!, `port ${port} is in the ephemeral range`);
});

test("freePort skips a port that someone is listening on", async () => {
  const first = await freePort();
  // Occupy the next few candidates; the following calls must not return any of them.
  const held: net.Server[] = [];
  for (let p = first + 1; p <= first + 3; p++) {
    const server = net.createServer();
    await new Promise<void>((resolve) => {
      server.once("error", () => resolve());
      server.listen(p, "127.0.0.1", () => resolve());
    });
    held.push(server);
  }
  try {
    const next = await freePort();
    assert.ok(next < first + 1 || next > first + 3, `got ${next}, which is held`);
  } finally {
    for (const server of held) server.close();
  }
});
