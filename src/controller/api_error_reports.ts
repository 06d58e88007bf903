//! Error reports over REST (`/v1/error-reports`): list with LINSTOR's filters, show one with
//! its text, delete one, or delete by filter (PATCH with an ErrorReportDelete).

import { parseError, retCode } from "./api_call_rc.js";
import {
  json,
  param,
  rcReply,
  type ApiContext,
  type ApiReply,
  type ApiRequest,
  type Route,
} from "./api_common.js";
import { errorReportFileName } from "./error_reports.js";
import { ObjectReader, paginate, queryInt, queryList, type Query } from "./input.js";
import type { JsonValue } from "./json.js";
import type { ErrorReportRecord } from "./store/store.js";

export function errorReportJson(r: ErrorReportRecord, withContent: boolean): JsonValue {
  return {
    node_name: r.nodeName,
    error_time: r.errorTimeMs,
    filename: errorReportFileName(r.id),
    text: withContent ? r.text : undefined,
    module: r.module,
    version: r.version,
    peer: r.peer ?? undefined,
    exception: r.exception,
    exception_message: r.exceptionMessage,
    origin_file: r.originFile ?? undefined,
    origin_method: r.originMethod ?? undefined,
    origin_line: r.originLine ?? undefined,
  };
}

interface ReportFilter {
  nodes: string[];
  sinceMs?: number;
  toMs?: number;
  exception?: string;
  version?: string;
  ids: string[];
}

/** Every criterion that is set must match; names and ids ignore case. */
function matches(r: ErrorReportRecord, f: ReportFilter): boolean {
  const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  return (
    (f.nodes.length === 0 || f.nodes.some((n) => same(n, r.nodeName))) &&
    (f.sinceMs === undefined || r.errorTimeMs >= f.sinceMs) &&
    (f.toMs === undefined || r.errorTimeMs <= f.toMs) &&
    (f.exception === undefined || same(f.exception, r.exception)) &&
    (f.version === undefined || f.version === r.version) &&
    (f.ids.length === 0 || f.ids.some((id) => same(id, r.id)))
  );
}

/** `withContent`, which defaults differently for list (false) and show (true). */
function withContent(q: Query, dflt: boolean): boolean {
  const v = queryList(q, "withContent");
  return v.length === 0 ? dflt : v[v.length - 1]!.toLowerCase() === "true";
}

function queryFilter(q: Query, ids: string[]): ReportFilter {
  const since = queryInt(q, "since");
  const to = queryInt(q, "to");
  return {
    nodes: queryList(q, "node"),
    ...(since === undefined ? {} : { sinceMs: since }),
    ...(to === undefined ? {} : { toMs: to }),
    ids,
  };
}

function list(ctx: ApiContext, req: ApiRequest, ids: string[], dflt: boolean): ApiReply {
  const f = queryFilter(req.query, ids);
  const content = withContent(req.query, dflt);
  const reports = ctx.store.read((tx) => tx.errorReports()).filter((r) => matches(r, f));
  return json(
    200,
    paginate(reports, req.query).map((r) => errorReportJson(r, content)),
  );
}

/** Deletes what matches and says how many; no match is not an error, as in LINSTOR. */
async function deleteMatching(ctx: ApiContext, f: ReportFilter): Promise<ApiReply> {
  const n = await ctx.store.write((tx) => {
    const gone = tx.errorReports().filter((r) => matches(r, f));
    for (const r of gone) tx.deleteErrorReport(r.id);
    return gone.length;
  });
  return rcReply(
    ctx,
    [
      {
        retCode: retCode("success", "DELETED", "none", "delete"),
        message: `Deleted ${n} error report${n === 1 ? "" : "s"}.`,
      },
    ],
    200,
  );
}

async function deleteByFilter(ctx: ApiContext, req: ApiRequest): Promise<ApiReply> {
  const body = ObjectReader.body(req.body);
  const sinceMs = body.int("since", 0, Number.MAX_SAFE_INTEGER);
  const toMs = body.int("to", 0, Number.MAX_SAFE_INTEGER);
  const exception = body.str("exception");
  const version = body.str("version");
  const f: ReportFilter = {
    nodes: body.strList("nodes") ?? [],
    ids: body.strList("ids") ?? [],
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(toMs === undefined ? {} : { toMs }),
    ...(exception === undefined ? {} : { exception }),
    ...(version === undefined ? {} : { version }),
  };
  // An empty filter would delete every report; make the operator say so with a range.
  if (
    f.nodes.length === 0 &&
    f.ids.length === 0 &&
    sinceMs === undefined &&
    toMs === undefined &&
    exception === undefined &&
    version === undefined
  ) {
    throw parseError(
      "The request names no error reports to delete.",
      "Give ids, nodes, since, to, exception or version; to delete all, give since 0.",
    );
  }
  return deleteMatching(ctx, f);
}

export const errorReportRoutes: Route[] = [
  { method: "GET", url: "/v1/error-reports", handler: (ctx, req) => list(ctx, req, [], false) },
  { method: "PATCH", url: "/v1/error-reports", handler: deleteByFilter },
  {
    method: "GET",
    url: "/v1/error-reports/:id",
    handler: (ctx, req) => list(ctx, req, [param(req, "id")], true),
  },
  {
    method: "DELETE",
    url: "/v1/error-reports/:id",
    handler: (ctx, req) => deleteMatching(ctx, { nodes: [], ids: [param(req, "id")] }),
  },
];
