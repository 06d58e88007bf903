//! The client side of the admin socket (admin_protocol.ts): one request, one response.

import * as net from "node:net";
import { MirraError } from "../stdx/errors.js";
import type { AdminRequest, AdminResponse } from "./admin_protocol.js";

/** Sends `request` to the daemon at `socketPath` and returns its response. */
export function adminCall(
  socketPath: string,
  request: AdminRequest,
  timeoutMs = 60_000,
): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let buffered = "";
    let settled = false;
    const finish = (err: Error | null, response?: AdminResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(
      () =>
        finish(
          new MirraError(
            "MIRRA_E_CONFLICT",
            `the node daemon at ${socketPath} did not answer "${request.command}" within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    socket.once("connect", () => socket.write(JSON.stringify(request) + "\n"));
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const nl = buffered.indexOf("\n");
      if (nl < 0) return;
      try {
        finish(null, JSON.parse(buffered.slice(0, nl)) as AdminResponse);
      } catch (err) {
        finish(
          new MirraError("MIRRA_E_PROTOCOL", `bad answer from the node daemon: ${String(err)}`),
        );
      }
    });
    socket.once("error", (err: NodeJS.ErrnoException) =>
      finish(
        new MirraError(
          "MIRRA_E_NOT_FOUND",
          `cannot reach the mirra node daemon at ${socketPath}: ${err.code ?? err.message} ` +
            "(is `mirra node run` running? give its socket with --socket)",
          { cause: err },
        ),
      ),
    );
    socket.once("close", () =>
      finish(new MirraError("MIRRA_E_PROTOCOL", "the node daemon closed the connection")),
    );
  });
}
