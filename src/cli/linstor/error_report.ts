//! `mirra error-reports` (err): the reports the controller writes when a request fails in a way
//! nobody planned for. `list` shows them, `show` prints their text, `delete` removes them by id
//! or by filter, as `linstor err l|show|delete` do.

import type { Command } from "commander";
import { ConfigError } from "../../stdx/errors.js";
import { aliases, contextOf, verb } from "./common.js";
import { exitCodes, LinstorCliError } from "./errors.js";
import { asNumber, asObjects, asString, formatJson, type JsonObject } from "./json.js";
import { enc, fetchJson, listCommand, mutate, query } from "./output.js";

/** The id is the report file's name without `ErrorReport-` and `.log`. */
export function reportId(report: JsonObject): string {
  return asString(report["filename"])
    .replace(/^ErrorReport-/, "")
    .replace(/\.log$/, "");
}

/**
 * A point in time for --since and --to: a span back from now (`3d`, `12h`, `2d6h`, `30m`) or
 * a date (`2026-12-01`, `2026-12-01T10:00:00Z`). Returns epoch milliseconds.
 */
export function parseTime(option: string, text: string, nowMs: number): number {
  const span = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/.exec(text.trim());
  if (span !== null && text.trim() !== "") {
    const [, d, h, m] = span;
    const minutes = Number(d ?? 0) * 1440 + Number(h ?? 0) * 60 + Number(m ?? 0);
    return nowMs - minutes * 60_000;
  }
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new ConfigError(`bad ${option} "${text}": use a span back from now (3d, 12h) or a date`);
  return ms;
}

function when(ms: number | undefined): string {
  return ms === undefined ? "" : new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

interface ListOptions {
  nodes?: string[];
  since?: string;
  to?: string;
}

interface DeleteOptions extends ListOptions {
  exception?: string;
  version?: string;
}

export function registerErrorReports(program: Command): void {
  const err = program
    .command("error-reports")
    .alias("err")
    .description("error reports: details of failures the controller did not plan for");

  verb(err, "list", aliases.list)
    .description("list error reports")
    .option("-n, --nodes <names...>", "only of these nodes")
    .option("-s, --since <time>", "only newer: a span back from now (3d, 12h) or a date")
    .option("-t, --to <time>", "only older: a span back from now or a date")
    .action(async (opts: ListOptions, cmd: Command) => {
      const ctx = contextOf(cmd);
      const now = Date.now();
      // The API filters by one node; several are filtered here.
      const since = opts.since === undefined ? undefined : parseTime("--since", opts.since, now);
      const to = opts.to === undefined ? undefined : parseTime("--to", opts.to, now);
      const path = `/v1/error-reports${query({
        since: since === undefined ? undefined : String(since),
        to: to === undefined ? undefined : String(to),
      })}`;
      const wanted = new Set((opts.nodes ?? []).map((n) => n.toLowerCase()));
      await listCommand(ctx, path, (reports) => [
        ["Id", "Datetime", "Node", "Exception"],
        reports
          .filter((r) => wanted.size === 0 || wanted.has(asString(r["node_name"]).toLowerCase()))
          .map((r) => [
            reportId(r),
            when(asNumber(r["error_time"])),
            asString(r["node_name"]),
            `${asString(r["exception"])}: ${asString(r["exception_message"])}`,
          ]),
      ]);
    });

  verb(err, "show")
    .description("print error reports in full")
    .argument("<ids...>", "report ids, as `err list` shows them")
    .action(async (ids: string[], _opts: object, cmd: Command) => {
      const ctx = contextOf(cmd);
      const found: JsonObject[] = [];
      for (const id of ids) {
        const reports = asObjects(await fetchJson(ctx, `/v1/error-reports/${enc(id)}`));
        if (reports.length === 0)
          throw new LinstorCliError(`no error report with id "${id}"`, exitCodes.apiError, false);
        found.push(...reports);
      }
      if (ctx.machine) ctx.stdout(formatJson(found) + "\n");
      else ctx.stdout(found.map((r) => asString(r["text"])).join("\n"));
    });

  verb(err, "delete", aliases.delete)
    .description("delete error reports by id, or all that match the filters")
    .argument("[ids...]", "report ids")
    .option("-n, --nodes <names...>", "of these nodes")
    .option("-s, --since <time>", "newer than: a span back from now (3d, 12h) or a date")
    .option("-t, --to <time>", "older than: a span back from now or a date")
    .option("--exception <name>", "with this exception class")
    .option("--version <version>", "written by this version")
    .action(async (ids: string[], opts: DeleteOptions, cmd: Command) => {
      const ctx = contextOf(cmd);
      const now = Date.now();
      const body: JsonObject = {};
      if (ids.length > 0) body["ids"] = ids;
      if (opts.nodes !== undefined) body["nodes"] = opts.nodes;
      if (opts.since !== undefined) body["since"] = parseTime("--since", opts.since, now);
      if (opts.to !== undefined) body["to"] = parseTime("--to", opts.to, now);
      if (opts.exception !== undefined) body["exception"] = opts.exception;
      if (opts.version !== undefined) body["version"] = opts.version;
      if (Object.keys(body).length === 0)
        throw new ConfigError("err delete: name report ids or a filter (--to 0m deletes all)");
      await mutate(ctx, "PATCH", "/v1/error-reports", body);
    });
}
