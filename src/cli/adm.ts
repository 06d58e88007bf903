//! `mirra adm COMMAND RESOURCE`: talk to the node daemon over its admin socket, as drbdadm
//! talks to the kernel. Prints nothing on success (like drbdadm) except for `status`.

import * as path from "node:path";
import { MirraError } from "../stdx/errors.js";
import { adminCall } from "../daemon/admin_client.js";
import {
  adminSocketDefault,
  formatStatus,
  type AdminCommandName,
  type AdminRequest,
} from "../daemon/admin_protocol.js";

export interface AdmOptions {
  socket?: string;
  json?: boolean;
  force?: boolean;
  peer?: string;
  discardMyData?: boolean;
  timeout?: string;
}

export function admSocketPath(options: AdmOptions): string {
  return path.resolve(options.socket ?? process.env["MIRRA_ADMIN_SOCKET"] ?? adminSocketDefault);
}

export async function adm(
  command: AdminCommandName,
  resource: string | undefined,
  options: AdmOptions,
  print: (text: string) => void = (t) => process.stdout.write(t + "\n"),
): Promise<void> {
  const request: AdminRequest = {
    command,
    ...(resource !== undefined ? { resource } : {}),
    ...(options.force ? { force: true } : {}),
    ...(options.discardMyData ? { discardMyData: true } : {}),
    ...(options.peer !== undefined
      ? { peer: /^\d+$/.test(options.peer) ? Number(options.peer) : options.peer }
      : {}),
  };
  const timeoutMs = options.timeout !== undefined ? Number(options.timeout) * 1000 : 60_000;
  const response = await adminCall(admSocketPath(options), request, timeoutMs);
  if (command === "status" && response.status !== undefined) {
    if (options.json) print(JSON.stringify(response.status, null, 2));
    else print(response.status.map(formatStatus).join("\n\n"));
  }
  if (!response.ok)
    throw new MirraError(
      "MIRRA_E_CONFLICT",
      `${resource ?? ""}${resource ? ": " : ""}${command}: ${response.error ?? "failed"}`,
    );
}
