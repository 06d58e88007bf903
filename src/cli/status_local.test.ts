import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { localDaemonSockets } from "./status_local.js";

test("status: the daemons of a `mirra up` directory are found by node, sockets only", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mirra-status-"));
  try {
    for (const [node, files] of [
      ["node2", ["r0.sock", "r0.pid", "r0.log"]],
      ["node1", ["r1.sock", "r0.sock"]],
    ] as const) {
      const run = path.join(dir, "satellites", node, "run");
      fs.mkdirSync(run, { recursive: true });
      for (const f of files) fs.writeFileSync(path.join(run, f), "");
    }
    const found = localDaemonSockets(dir).filter(([node]) => node !== "satellite");
    assert.deepEqual(
      found.map(([node, socket]) => `${node} ${path.relative(dir, socket)}`),
      [
        "node1 satellites/node1/run/r0.sock",
        "node1 satellites/node1/run/r1.sock",
        "node2 satellites/node2/run/r0.sock",
      ],
    );
    assert.deepEqual(
      localDaemonSockets(path.join(dir, "nothing-here")).filter(([n]) => n !== "satellite"),
      [],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
