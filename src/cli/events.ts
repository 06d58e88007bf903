//! `mirra events`: the node daemon's state changes as they happen, like drbdsetup events2:
//! the current state first (`exists` lines), then one `change` line per state change, until
//! interrupted. `--json` prints the daemon's own JSON lines.

import * as net from "node:net";
import { MirraError } from "../stdx/errors.js";
import { formatEvent } from "../daemon/admin_protocol.js";
import { admSocketPath, type AdmOptions } from "./adm.js";

export async function events(options: AdmOptions): Promise<void> {
  const socketPath = admSocketPath(options);
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new MirraError(
          "MIRRA_E_NOT_FOUND",
          `cannot reach the mirra node daemon at ${socketPath}: ${err.code ?? err.message}`,
        ),
      ),
    );
  });
  socket.write(JSON.stringify({ command: "events" }) + "\n");
  let pending = "";
  socket.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() === "") continue;
      if (options.json) process.stdout.write(line + "\n");
      else
        for (const text of formatEvent(JSON.parse(line) as Record<string, unknown>))
          process.stdout.write(text + "\n");
    }
  });
  await new Promise<void>((resolve) => socket.on("close", () => resolve()));
}
