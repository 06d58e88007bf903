//! `mirra events`: the node daemon's state changes as they happen, like drbdsetup events2:
//! the current state first (`exists` lines), then one `change` line per state change, until
//! interrupted. `--json` prints the daemon's own JSON lines.
//!
//! Without `--socket` and with no daemon on the default socket, it follows every daemon the
//! local satellites run (see status_local.ts) at once: each text line then starts with the
//! node's name, and each JSON line carries it as `node`.

import * as net from "node:net";
import { MirraError } from "../stdx/errors.js";
import { formatEvent } from "../daemon/admin_protocol.js";
import { admSocketPath, type AdmOptions } from "./adm.js";
import { localSocketsUnlessOne } from "./status_local.js";

export async function events(options: AdmOptions & { data?: string }): Promise<void> {
  const sockets = localSocketsUnlessOne(options);
  if (sockets.length === 0) return follow(admSocketPath(options), undefined, options);
  await Promise.all(sockets.map(([node, socket]) => follow(socket, node, options)));
}

async function follow(socketPath: string, node: string | undefined, options: AdmOptions) {
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
      const event = JSON.parse(line) as Record<string, unknown>;
      if (options.json)
        process.stdout.write(
          (node === undefined ? line : JSON.stringify({ node, ...event })) + "\n",
        );
      else
        for (const text of formatEvent(event))
          process.stdout.write((node === undefined ? text : `${node} ${text}`) + "\n");
    }
  });
  await new Promise<void>((resolve) => socket.on("close", () => resolve()));
}
