//! Error reports: when a request fails in a way no handler planned for (a bug, a database
//! that broke), the controller keeps the details as LINSTOR does (an ErrorReport with the
//! exception, where it was thrown and the stack) and names its id in the reply's
//! `error_report_ids`, so that an operator can read it later with `mirra err show ID`.
//!
//! Ids follow LINSTOR: `<instance>-<node>-<sequence>`. The instance is the controller's start
//! time in seconds, 8 hex digits; the node part is `00000`, LINSTOR's for the controller; the
//! sequence counts from 1 within the instance and continues after a restart in the same second.

import type { ErrorReportRecord, StoreWriter } from "./store/store.js";

export const controllerModule = "CONTROLLER";
const controllerNodeId = "00000";

export function instanceId(startMs: number): string {
  return Math.floor(startMs / 1000)
    .toString(16)
    .toUpperCase()
    .padStart(8, "0")
    .slice(-8);
}

export function errorReportId(instance: string, sequence: number): string {
  return `${instance}-${controllerNodeId}-${String(sequence).padStart(6, "0")}`;
}

/** LINSTOR's report file name, which ErrorReport.filename carries. */
export function errorReportFileName(id: string): string {
  return `ErrorReport-${id}.log`;
}

/** The next sequence number of `instance`, after every report of it that is stored. */
export function nextSequence(ids: readonly string[], instance: string): number {
  const prefix = `${instance}-${controllerNodeId}-`.toLowerCase();
  let last = 0;
  for (const id of ids) {
    if (!id.toLowerCase().startsWith(prefix)) continue;
    const n = Number(id.slice(prefix.length));
    if (Number.isSafeInteger(n) && n > last) last = n;
  }
  return last + 1;
}

export interface Origin {
  file: string | null;
  method: string | null;
  line: number | null;
}

/** Where the error was thrown: the first frame of a V8 stack ("at fn (file:line:col)"). */
export function originOf(stack: string | undefined): Origin {
  for (const line of (stack ?? "").split("\n")) {
    const m = /^\s*at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (m === null) continue;
    const file = m[2]!.replace(/^file:\/\//, "");
    return { file: file.split("/").pop() ?? file, method: m[1] ?? null, line: Number(m[3]) };
  }
  return { file: null, method: null, line: null };
}

export interface ErrorFacts {
  error: unknown;
  nodeName: string;
  version: string;
  timeMs: number;
  /** The client, e.g. `RestClient(127.0.0.1)`. */
  peer: string | null;
  /** What was being done, e.g. `GET /v1/nodes`. */
  request: string | null;
}

/** Builds the report (all but its id) from a thrown value. */
export function describeError(facts: ErrorFacts): Omit<ErrorReportRecord, "id" | "text"> {
  const err = facts.error;
  const isError = err instanceof Error;
  const origin = originOf(isError ? err.stack : undefined);
  return {
    nodeName: facts.nodeName,
    errorTimeMs: facts.timeMs,
    module: controllerModule,
    version: facts.version,
    peer: facts.peer,
    exception: isError ? err.constructor.name || err.name : typeof err,
    exceptionMessage: isError ? err.message : String(err),
    originFile: origin.file,
    originMethod: origin.method,
    originLine: origin.line,
  };
}

/** The report text, laid out as LINSTOR's report files are. */
export function errorReportText(
  id: string,
  report: Omit<ErrorReportRecord, "id" | "text">,
  stack: string | undefined,
  request: string | null,
): string {
  const row = (label: string, value: string): string => `${`${label}:`.padEnd(36)}${value}`;
  const lines = [
    `ERROR REPORT ${id}`,
    "",
    "============================================================",
    "",
    row("Application", "mirra"),
    row("Module", "Controller"),
    row("Version", report.version),
    row("Node", report.nodeName),
    ...(report.peer === null ? [] : [row("Peer", report.peer)]),
    ...(request === null ? [] : [row("Request", request)]),
    "",
    "============================================================",
    "",
    "Reported error:",
    "===============",
    "",
    row("Category", "Error"),
    row("Class name", report.exception),
    row("Error message", report.exceptionMessage),
    row("Error time", new Date(report.errorTimeMs).toISOString()),
    ...(report.originFile === null
      ? []
      : [
          row(
            "Origin",
            `${report.originMethod ?? "<anonymous>"} (${report.originFile}:${report.originLine ?? "?"})`,
          ),
        ]),
    "",
    "Call backtrace:",
    "",
    ...(stack ?? "(no stack)").split("\n").slice(1),
    "",
    "END OF ERROR REPORT.",
    "",
  ];
  return lines.join("\n");
}

/**
 * Writes one report in `tx` and returns it. The id is chosen inside the transaction, so two
 * failures at once cannot take the same sequence number.
 */
export function storeErrorReport(
  tx: StoreWriter,
  instance: string,
  facts: ErrorFacts,
): ErrorReportRecord {
  const report = describeError(facts);
  const id = errorReportId(
    instance,
    nextSequence(
      tx.errorReports().map((r) => r.id),
      instance,
    ),
  );
  const stack = facts.error instanceof Error ? facts.error.stack : undefined;
  const record: ErrorReportRecord = {
    id,
    ...report,
    text: errorReportText(id, report, stack, facts.request),
  };
  tx.putErrorReport(record);
  return record;
}
