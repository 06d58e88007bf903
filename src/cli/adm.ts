//! `mirra adm COMMAND RESOURCE`: talk to the node daemon over its admin socket, as drbdadm
//! talks to the kernel. Prints nothing on success (like drbdadm) except for `status`.

import * as path from "node:path";
import { MirraError } from "../stdx/errors.js";
import { parseSize } from "../stdx/units.js";
import { adminCall } from "../daemon/admin_client.js";
import {
  adminSocketDefault,
  formatStatus,
  type AdminCommandName,
  type StatusPaint,
  type AdminRequest,
} from "../daemon/admin_protocol.js";

export interface AdmOptions {
  socket?: string;
  json?: boolean;
  /** commander's --no-color: false when given. */
  color?: boolean;
  /** `mirra status --watch`: refresh every second, with resync progress bars. */
  watch?: boolean;
  force?: boolean;
  peer?: string;
  discardMyData?: boolean;
  timeout?: string;
  /** `resize --size`, e.g. "2G". */
  size?: string;
  assumeClean?: boolean;
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
    ...(options.size !== undefined ? { size: parseSize(options.size) } : {}),
    ...(options.assumeClean ? { assumeClean: true } : {}),
    ...(options.peer !== undefined
      ? { peer: /^\d+$/.test(options.peer) ? Number(options.peer) : options.peer }
      : {}),
  };
  const timeoutMs = options.timeout !== undefined ? Number(options.timeout) * 1000 : 60_000;
  const response = await adminCall(admSocketPath(options), request, timeoutMs);
  if (command === "status" && response.status !== undefined) {
    if (options.json) print(JSON.stringify(response.status, null, 2));
    else {
      const paint = statusPaint(options);
      print(response.status.map((r) => formatStatus(r, paint)).join("\n\n"));
    }
  }
  if (!response.ok)
    throw new MirraError(
      "MIRRA_E_CONFLICT",
      `${resource ?? ""}${resource ? ": " : ""}${command}: ${response.error ?? "failed"}`,
    );
}

const ansi = { good: "\x1b[32m", busy: "\x1b[33m", bad: "\x1b[31m" } as const;

/** Colors on a terminal (drbdadm status style), unless --no-color or NO_COLOR says no. */
export function statusPaint(options: AdmOptions): StatusPaint | undefined {
  const color =
    options.color !== false &&
    process.env["NO_COLOR"] === undefined &&
    (process.stdout.isTTY || process.env["FORCE_COLOR"] === "1");
  return color ? (tone, text) => `${ansi[tone]}${text}\x1b[0m` : undefined;
}
