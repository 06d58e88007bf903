//! What the CLI prints: tables with colored states for people, the API's JSON for `-m`, and
//! the controller's ApiCallRc messages in the SUCCESS/WARNING/ERROR blocks of LINSTOR's client.
//!
//! Tables use a small renderer here rather than a table package: the box style is LINSTOR's
//! (a few lines of code), cells hold ANSI colors that must not count towards column widths,
//! and it keeps the CLI's dependency list at the three packages the project already has.

import { ApiReplyError } from "./errors.js";
import {
  asArray,
  asNumber,
  asObjects,
  asString,
  formatJson,
  type Json,
  type JsonObject,
} from "./json.js";
import type { Method, RestClient } from "./client.js";

export interface CliContext {
  client: RestClient;
  /** `-m`: print the API's JSON instead of tables and messages. */
  machine: boolean;
  /** ANSI colors: stdout is a terminal and neither --no-color nor NO_COLOR is set. */
  color: boolean;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const ansi = { red: 31, green: 32, yellow: 33, bold: 1 } as const;
export type Color = keyof typeof ansi;

export function paint(ctx: Pick<CliContext, "color">, color: Color, text: string): string {
  return ctx.color && text !== "" ? `\x1b[${ansi[color]}m${text}\x1b[0m` : text;
}

// eslint-disable-next-line no-control-regex
const ansiPattern = /\x1b\[[0-9;]*m/g;
const visibleLength = (s: string): number => s.replace(ansiPattern, "").length;

/** Healthy states are green, transitional or unknown ones yellow, failures red. */
const stateColors: [RegExp, Color][] = [
  [/^(UpToDate|Online|Ok|Diskless|InUse|Unused|Created|Connected|Established)$/i, "green"],
  [/(error|fail|offline|split|standalone|DUnknown|Outdated|Detached|lost)/i, "red"],
  [
    /(sync|Inconsistent|Unknown|Connecting|Negotiating|Attaching|Creating|Deleting|Warn)/i,
    "yellow",
  ],
];

export function colorState(ctx: Pick<CliContext, "color">, state: string): string {
  for (const [pattern, color] of stateColors)
    if (pattern.test(state)) return paint(ctx, color, state);
  return state;
}

/** Renders rows in LINSTOR's box style; cells may already hold colors. */
export function renderTable(headers: readonly string[], rows: readonly string[][]): string {
  const widths = headers.map((h, c) =>
    Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[c] ?? ""))),
  );
  const line = (cells: readonly string[]): string =>
    "┊ " +
    cells.map((cell, c) => cell + " ".repeat(widths[c]! - visibleLength(cell))).join(" ┊ ") +
    " ┊";
  const inner = widths.reduce((sum, w) => sum + w + 3, 0) - 1;
  return [
    `╭${"─".repeat(inner)}╮`,
    line(headers),
    `╞${"═".repeat(inner)}╡`,
    ...rows.map((r) => line(headers.map((_, c) => r[c] ?? ""))),
    `╰${"─".repeat(inner)}╯`,
    "",
  ].join("\n");
}

export type Severity = "success" | "info" | "warning" | "error";

/** Severity from the two top bits of the signed 64-bit `ret_code` (LINSTOR's MASK_ERROR...). */
export function severityOf(retCode: Json | undefined): Severity {
  const rc = typeof retCode === "bigint" ? retCode : BigInt(asNumber(retCode) ?? 0);
  switch (BigInt.asUintN(64, rc) >> 62n) {
    case 3n:
      return "error";
    case 2n:
      return "warning";
    case 1n:
      return "info";
    default:
      return "success";
  }
}

const severityLabel: Record<Severity, [string, Color]> = {
  success: ["SUCCESS", "green"],
  info: ["INFO", "green"],
  warning: ["WARNING", "yellow"],
  error: ["ERROR", "red"],
};

/** One ApiCallRc as LINSTOR's client prints it: a severity line, then its texts indented. */
export function formatRc(ctx: Pick<CliContext, "color">, rc: JsonObject): string {
  const [label, color] = severityLabel[severityOf(rc["ret_code"])];
  const lines = [paint(ctx, color, `${label}:`)];
  for (const [title, key] of [
    ["Description", "message"],
    ["Cause", "cause"],
    ["Correction", "correction"],
    ["Details", "details"],
  ] as const) {
    const text = asString(rc[key]);
    if (text === "") continue;
    lines.push(`${title}:`, ...text.split("\n").map((l) => `    ${l}`));
  }
  // As LINSTOR's client does: where the controller kept the details of an unplanned failure.
  const reports = asArray(rc["error_report_ids"]).map(asString);
  if (reports.length > 0)
    lines.push("Show reports:", `    mirra error-reports show ${reports.join(" ")}`);
  return lines.join("\n") + "\n";
}

/** A reply that is not an ApiCallRc list still has a status to report. */
function rcsOf(reply: { status: number; body: Json }): JsonObject[] {
  const rcs = asObjects(reply.body).filter((o) => "ret_code" in o);
  if (rcs.length > 0 || reply.status < 400) return rcs;
  return [{ ret_code: -4611686018427387904n, message: `HTTP status ${reply.status}` }];
}

/**
 * Prints an ApiCallRc reply (JSON with `-m`) and throws ApiReplyError when it holds an error,
 * so the command exits non-zero. Errors go to stderr, the rest to stdout.
 */
export function reportRcs(ctx: CliContext, reply: { status: number; body: Json }): void {
  const rcs = rcsOf(reply);
  const errors = rcs.filter((rc) => severityOf(rc["ret_code"]) === "error");
  if (ctx.machine) ctx.stdout(formatJson(reply.body) + "\n");
  else for (const rc of rcs) (errors.includes(rc) ? ctx.stderr : ctx.stdout)(formatRc(ctx, rc));
  if (errors.length > 0 || reply.status >= 400)
    throw new ApiReplyError(asString(errors[0]?.["message"]) || "error", reply.status);
}

/** Sends a mutation and prints what the controller said about it. */
export async function mutate(
  ctx: CliContext,
  method: Method,
  path: string,
  body?: Json,
): Promise<Json> {
  const reply = await ctx.client.request(method, path, body);
  reportRcs(ctx, reply);
  return reply.body;
}

/** Reads a GET reply; an error reply (404 and the like) is printed and exits non-zero. */
export async function fetchJson(ctx: CliContext, path: string): Promise<Json> {
  const reply = await ctx.client.request("GET", path);
  if (reply.status >= 400) reportRcs(ctx, reply);
  return reply.body;
}

/** A list command: the JSON as is with `-m`, else the table `render` builds. */
export async function listCommand(
  ctx: CliContext,
  path: string,
  render: (items: JsonObject[]) => Promise<[string[], string[][]]> | [string[], string[][]],
): Promise<void> {
  const body = await fetchJson(ctx, path);
  if (ctx.machine) {
    ctx.stdout(formatJson(body) + "\n");
    return;
  }
  const [headers, rows] = await render(asObjects(body));
  ctx.stdout(renderTable(headers, rows));
}

/** `name=a&name=b` query parameters for LINSTOR's repeated filters. */
export function query(params: Record<string, readonly string[] | string | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const v of typeof value === "string" ? [value] : value) search.append(key, v);
  }
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

export const enc = encodeURIComponent;

/** Sizes in KiB from the API, shown in binary units as LINSTOR shows them. */
export function formatKib(kib: Json | undefined): string {
  const n = asNumber(kib);
  if (n === undefined) return "";
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[u]}`;
}
