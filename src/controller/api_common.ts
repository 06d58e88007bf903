//! What every REST handler shares: the context it runs in, its request and reply shapes, name,
//! property, layer and volume-number rules, and the ApiCallRc replies. Handlers are plain
//! functions of (context, request) so that the HTTP framework stays a thin shell around them.

import type { ObservedState } from "./observed_state.js";
import {
  apiCallRcJson,
  apiError,
  type ApiCallError,
  httpStatusOf,
  retCode,
  type ApiCallRc,
  type ObjectKind,
  type Operation,
  type RcCodeName,
} from "./api_call_rc.js";
import type { JsonValue } from "./json.js";
import { ObjectReader, type Query } from "./input.js";
import type {
  ControllerStore,
  Props,
  ProviderKind,
  ResourceDefinitionRecord,
  StoreReader,
} from "./store/store.js";

export interface ApiContext {
  store: ControllerStore;
  /** Wall clock in epoch milliseconds; injected so tests are deterministic. */
  nowMs(): number;
  newUuid(): string;
  /** A fresh shared secret for a resource definition's peer links. */
  newSecret(): string;
  /** What satellites reported (pool capacity for placement). @default nothing known */
  observed?: ObservedState;
}

export interface ApiRequest {
  params: Record<string, string>;
  query: Query;
  /** The raw body text, or undefined when there was none. */
  body: string | undefined;
}

export interface ApiReply {
  status: number;
  body: JsonValue;
}

export type ApiHandler = (ctx: ApiContext, req: ApiRequest) => ApiReply | Promise<ApiReply>;

export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  url: string;
  handler: ApiHandler;
}

export function rcReply(
  ctx: ApiContext,
  rcs: readonly ApiCallRc[],
  successStatus: number,
): ApiReply {
  const at = new Date(ctx.nowMs()).toISOString();
  return { status: httpStatusOf(rcs, successStatus), body: rcs.map((rc) => apiCallRcJson(rc, at)) };
}

export function okRc(
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
  message: string,
  objRefs?: Record<string, string>,
): ApiCallRc {
  return {
    retCode: retCode("success", code, object, operation),
    message,
    ...(objRefs ? { objRefs } : {}),
  };
}

export function param(req: ApiRequest, name: string): string {
  const v = req.params[name];
  return v ?? "";
}

/** LINSTOR names: a letter or underscore, then letters, digits, `_` and `-`; 2..48 long. */
const namePattern = /^[A-Za-z_][A-Za-z0-9_-]{1,47}$/;
/** Node names are host names: may start with a digit and contain dots; 2..255 long. */
const nodeNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{1,254}$/;

export function checkName(
  name: string,
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
  what: string,
): string {
  const ok = object === "node" ? nodeNamePattern.test(name) : namePattern.test(name);
  if (!ok) {
    throw apiError(code, object, operation, `The ${what} name '${name}' is invalid.`, {
      correction:
        object === "node"
          ? "Use 2 to 255 letters, digits, '_', '-' and '.', not starting with '-' or '.'."
          : "Use 2 to 48 letters, digits, '_' and '-', starting with a letter or '_'.",
    });
  }
  return name;
}

/** Property keys: printable, no leading or trailing '/', no empty path segment. */
function checkPropKey(key: string, object: ObjectKind, operation: Operation): void {
  const ok =
    key.length > 0 &&
    key.length <= 256 &&
    ![...key].some((ch) => ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f) &&
    !key.startsWith("/") &&
    !key.endsWith("/") &&
    !key.includes("//");
  if (!ok) {
    throw apiError("FAIL_INVLD_PROP", object, operation, `The property key '${key}' is invalid.`);
  }
}

const propValueBytesMax = 64 * 1024;

export function checkProps(props: Props, object: ObjectKind, operation: Operation): Props {
  for (const [k, v] of Object.entries(props)) {
    checkPropKey(k, object, operation);
    if (v.length > propValueBytesMax) {
      throw apiError("FAIL_INVLD_PROP", object, operation, `The value of '${k}' is too long.`);
    }
  }
  return props;
}

/**
 * Applies LINSTOR's props modification (`override_props`, `delete_props`,
 * `delete_namespaces`) to a copy of `props`. Deleting a key that is not set is a warning,
 * as in LINSTOR, not an error.
 */
export function modifyProps(
  props: Props,
  body: ObjectReader,
  object: ObjectKind,
): { props: Props; warnings: ApiCallRc[] } {
  const override = checkProps(body.props("override_props") ?? {}, object, "modify");
  const deletes = body.strList("delete_props") ?? [];
  const namespaces = body.strList("delete_namespaces") ?? [];
  const out: Props = { ...props };
  const warnings: ApiCallRc[] = [];
  for (const key of deletes) {
    if (Object.prototype.hasOwnProperty.call(out, key)) delete out[key];
    else {
      warnings.push({
        retCode: retCode("warn", "WARN_DEL_UNSET_PROP", object, "modify"),
        message: `Could not delete property '${key}' as it did not exist.`,
      });
    }
  }
  for (const ns of namespaces) {
    const prefix = ns.endsWith("/") ? ns : `${ns}/`;
    for (const key of Object.keys(out)) if (key.startsWith(prefix)) delete out[key];
  }
  Object.assign(out, override);
  return { props: out, warnings };
}

/** Applies `+FLAG`/`-FLAG` style flag edits (VolumeDefinitionModify, VolumeGroupModify). */
export function modifyFlags(flags: string[], edits: string[] | undefined): string[] {
  const out = new Set(flags);
  for (const e of edits ?? []) {
    if (e.startsWith("-")) out.delete(e.slice(1).toUpperCase());
    else out.add(e.replace(/^\+/, "").toUpperCase());
  }
  return [...out].sort();
}

/**
 * Looks an object up or throws LINSTOR's not-found error (HTTP 404). A plain GET
 * (`operation` "none") answers the bare FAIL_NOT_FOUND_* code, without object bits, as
 * LINSTOR's `RequestHelper.notFoundResponse` does; a mutation's error carries both.
 */
export function found<T>(
  value: T | undefined,
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
  message: string,
): T {
  if (value === undefined) throw notFound(code, object, operation, message);
  return value;
}

export function notFound(
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
  message: string,
): ApiCallError {
  return apiError(code, operation === "none" ? "none" : object, operation, message);
}

/** The lowest integer in [min, max] not in `used`, or undefined when all are taken. */
export function lowestFree(used: Iterable<number>, min: number, max: number): number | undefined {
  const taken = new Set(used);
  for (let n = min; n <= max; n++) if (!taken.has(n)) return n;
  return undefined;
}

export function json(status: number, body: JsonValue): ApiReply {
  return { status, body };
}

export const layerTypes = [
  "DRBD",
  "LUKS",
  "STORAGE",
  "NVME",
  "WRITECACHE",
  "CACHE",
  "BCACHE",
] as const;

/** Storage provider kinds, as LINSTOR names them (storage pools, select filters). */
export const providerKinds: readonly ProviderKind[] = [
  "DISKLESS",
  "LVM",
  "LVM_THIN",
  "ZFS",
  "ZFS_THIN",
  "FILE",
  "FILE_THIN",
  "SPDK",
  "EBS_TARGET",
  "EBS_INIT",
  "REMOTE_SPDK",
  "EXOS",
  "STORAGE_SPACES",
];

/** Volume numbers run 0..65535, as LINSTOR's do. */
export const volumeNumberMax = 65535;

/** A volume number from the path; anything but a small integer is simply not found. */
export function pathVolumeNumber(
  req: ApiRequest,
  object: "volumeGroup" | "volumeDefinition",
  operation: Operation,
): number {
  const s = param(req, "nr");
  if (!/^\d{1,5}$/.test(s) || Number(s) > volumeNumberMax) {
    throw notFound(
      object === "volumeGroup" ? "FAIL_NOT_FOUND_VLM_GRP" : "FAIL_NOT_FOUND_VLM_DFN",
      object,
      operation,
      `Volume number '${s}' not found.`,
    );
  }
  return Number(s);
}

export function readLayerStack(body: ObjectReader, operation: Operation): string[] | undefined {
  return body.strList(body.has("layer_stack") ? "layer_stack" : "layer_list")?.map((s) => {
    const v = s.trim().toUpperCase();
    if (!(layerTypes as readonly string[]).includes(v)) {
      throw apiError(
        "FAIL_INVLD_LAYER_KIND",
        "resourceDefinition",
        operation,
        `Unknown layer '${s}'.`,
        { correction: `Use ${layerTypes.join(", ")}.` },
      );
    }
    return v;
  });
}

/**
 * A resource definition's properties as LINSTOR resolves them: the controller's, overridden by
 * its resource group's, overridden by its own.
 */
export function inheritedProps(tx: StoreReader, rd: ResourceDefinitionRecord): Props {
  return {
    ...tx.controllerProps(),
    ...(tx.resourceGroup(rd.resourceGroup)?.props ?? {}),
    ...rd.props,
  };
}
