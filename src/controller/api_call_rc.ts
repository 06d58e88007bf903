//! LINSTOR's ApiCallRc: every mutating call answers with a list of these, and every error
//! body is one. `ret_code` is a signed 64-bit mask (Java `long`, linstor-common consts.json):
//!
//!   bits 63..62  severity: error 0xC000…, warning 0x8000…, info 0x4000…, success 0
//!   bits 25..24  operation: create 0x1000000, modify 0x2000000, delete 0x3000000
//!   bits 22..18  object: node 0x3C0000, resource definition 0x380000, ...
//!   bits 14..0   code: 1 created, 2 deleted, 3 modified, 2xx invalid, 3xx not found, ...
//!
//! Errors and warnings are negative and exceed 2^53, so ret codes are BigInt end to end and are
//! written by `toJson`. Clients match on `ret_code & (MASK_ERROR | 0x7FFF)`, so the code bits
//! must be LINSTOR's exactly.

import type { JsonValue } from "./json.js";

const mask64 = (v: bigint): bigint => BigInt.asIntN(64, v);

export const maskError = mask64(0xc000000000000000n);
export const maskWarn = mask64(0x8000000000000000n);
export const maskInfo = 0x4000000000000000n;
export const maskSeverity = maskError;
export const maskCode = 0x7fffn;

export const operationMask = {
  none: 0n,
  create: 0x1000000n,
  modify: 0x2000000n,
  delete: 0x3000000n,
} as const;
export type Operation = keyof typeof operationMask;

export const objectMask = {
  none: 0n,
  node: 0x3c0000n,
  resourceDefinition: 0x380000n,
  resource: 0x340000n,
  volumeDefinition: 0x300000n,
  volume: 0x2c0000n,
  netInterface: 0x1c0000n,
  storagePoolDefinition: 0x180000n,
  storagePool: 0x140000n,
  controllerConfig: 0x100000n,
  snapshot: 0xc0000n,
  resourceGroup: 0x440000n,
  volumeGroup: 0x480000n,
  keyValueStore: 0x400000n,
} as const;
export type ObjectKind = keyof typeof objectMask;

/** Code bits (0..0x7FFF) by their linstor-common names. */
export const rcCode = {
  CREATED: 1,
  DELETED: 2,
  MODIFIED: 3,
  FAIL_SQL: 100,
  FAIL_INVLD_NODE_NAME: 200,
  FAIL_INVLD_NODE_TYPE: 201,
  FAIL_INVLD_RSC_NAME: 202,
  FAIL_INVLD_RSC_PORT: 203,
  FAIL_INVLD_NODE_ID: 204,
  FAIL_INVLD_VLM_NR: 205,
  FAIL_INVLD_VLM_SIZE: 206,
  FAIL_INVLD_MINOR_NR: 207,
  FAIL_INVLD_STOR_POOL_NAME: 208,
  FAIL_INVLD_NET_NAME: 209,
  FAIL_INVLD_NET_ADDR: 210,
  FAIL_INVLD_NET_PORT: 211,
  FAIL_INVLD_NET_TYPE: 212,
  FAIL_INVLD_PROP: 213,
  FAIL_INVLD_TRANSPORT_TYPE: 214,
  FAIL_INVLD_ENCRYPT_TYPE: 217,
  FAIL_INVLD_PLACE_COUNT: 219,
  FAIL_INVLD_STOR_DRIVER: 221,
  FAIL_INVLD_KVS_NAME: 223,
  FAIL_INVLD_LAYER_KIND: 224,
  FAIL_INVLD_LAYER_STACK: 225,
  FAIL_INVLD_EXT_NAME: 226,
  FAIL_INVLD_PROVIDER: 227,
  FAIL_INVLD_VLM_SIZES: 228,
  FAIL_NOT_FOUND_NODE: 300,
  FAIL_NOT_FOUND_RSC_DFN: 301,
  FAIL_NOT_FOUND_RSC: 302,
  FAIL_NOT_FOUND_VLM_DFN: 303,
  FAIL_NOT_FOUND_VLM: 304,
  FAIL_NOT_FOUND_NET_IF: 305,
  FAIL_NOT_FOUND_STOR_POOL: 310,
  FAIL_NOT_FOUND_DFLT_STOR_POOL: 311,
  FAIL_NOT_FOUND_KVS: 316,
  FAIL_NOT_FOUND_RSC_GRP: 317,
  FAIL_NOT_FOUND_VLM_GRP: 318,
  FAIL_ACC_DENIED_COMMAND: 412,
  FAIL_EXISTS_NODE: 500,
  FAIL_EXISTS_RSC_DFN: 501,
  FAIL_EXISTS_RSC: 502,
  FAIL_EXISTS_VLM_DFN: 503,
  FAIL_EXISTS_NET_IF: 505,
  FAIL_EXISTS_STOR_POOL: 510,
  FAIL_EXISTS_EXT_NAME: 517,
  FAIL_EXISTS_RSC_GRP: 522,
  FAIL_EXISTS_VLM_GRP: 523,
  FAIL_POOL_EXHAUSTED_VLM_NR: 800,
  FAIL_POOL_EXHAUSTED_MINOR_NR: 801,
  FAIL_POOL_EXHAUSTED_TCP_PORT: 802,
  FAIL_POOL_EXHAUSTED_NODE_ID: 803,
  FAIL_UNDECIDABLE_AUTOPLACMENT: 985,
  FAIL_INSUFFICIENT_REPLICA_COUNT: 991,
  FAIL_NOT_ENOUGH_NODES: 996,
  FAIL_IN_USE: 997,
  FAIL_UNKNOWN_ERROR: 998,
  FAIL_IMPL_ERROR: 999,
  WARN_NOT_CONNECTED: 1003,
  WARN_DEL_UNSET_PROP: 1005,
  WARN_RSC_ALREADY_DEPLOYED: 1006,
  WARN_RSC_ALREADY_HAS_DISK: 1007,
  WARN_RSC_ALREADY_DISKLESS: 1008,
  WARN_NOT_ENOUGH_NODES_FOR_TIE_BREAKER: 1013,
  INFO_NO_RSC_SPAWNED: 10000,
  INFO_TIE_BREAKER_CREATED: 10003,
  FAIL_SIGN_IN: 10000,
  FAIL_SIGN_IN_MISSING_CREDENTIALS: 10001,
} as const;
export type RcCodeName = keyof typeof rcCode;

/** UNKNOWN_API_CALL and API_CALL_PARSE_ERROR: whole values, object and operation bits all set. */
export const unknownApiCall = mask64(0x0fffffffffffffffn | 0xc000000000000000n);
export const apiCallParseError = mask64(0x0ffffffffffffffdn | 0xc000000000000000n);

export type Severity = "error" | "warn" | "info" | "success";
const severityMask: Record<Severity, bigint> = {
  error: maskError,
  warn: maskWarn,
  info: maskInfo,
  success: 0n,
};

/** Builds a ret_code: severity | operation | object | code. */
export function retCode(
  severity: Severity,
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
): bigint {
  const v =
    severityMask[severity] | operationMask[operation] | objectMask[object] | BigInt(rcCode[code]);
  return mask64(v);
}

export interface ApiCallRc {
  retCode: bigint;
  message: string;
  cause?: string;
  details?: string;
  correction?: string;
  /** Error reports written for this failure (`GET /v1/error-reports/{id}`). */
  errorReportIds?: readonly string[];
  /** Names of the objects involved, under LINSTOR's keys ("Node", "RscDfn", "VlmNr", ...). */
  objRefs?: Record<string, string>;
}

export function isError(rc: ApiCallRc): boolean {
  return (rc.retCode & maskSeverity) === maskError;
}

export function codeOf(rc: ApiCallRc): number {
  return Number(rc.retCode & maskCode);
}

/**
 * HTTP status of a reply, from its first error (LINSTOR's `ApiCallRcRestUtils.toResponse`):
 * not found 404, access denied or failed sign-in 403, missing credentials 401, a parse error
 * 400, anything else 500 (FAIL_INVLD_* validation errors and FAIL_EXISTS_* included, as
 * LINSTOR answers them). No error: `successStatus`.
 */
export function httpStatusOf(rcs: readonly ApiCallRc[], successStatus: number): number {
  const first = rcs.find(isError);
  if (first === undefined) return successStatus;
  if (first.retCode === apiCallParseError) return 400;
  const code = codeOf(first);
  if (code >= 300 && code <= 399) return 404;
  if ((code >= 400 && code <= 499) || code === rcCode.FAIL_SIGN_IN) return 403;
  if (code === rcCode.FAIL_SIGN_IN_MISSING_CREDENTIALS) return 401;
  return 500;
}

/** The wire shape; `createdAt` is ISO-8601 with offset, as the Java server writes it. */
export function apiCallRcJson(rc: ApiCallRc, createdAt: string): JsonValue {
  return {
    ret_code: rc.retCode,
    message: rc.message,
    cause: rc.cause,
    details: rc.details,
    correction: rc.correction,
    error_report_ids: rc.errorReportIds,
    obj_refs: rc.objRefs,
    created_at: createdAt,
  };
}

/**
 * A request failed with these ApiCallRc entries. `status` overrides the derived HTTP status
 * where LINSTOR has no ret code for the case (an unknown path, an unimplemented call).
 */
export class ApiCallError extends Error {
  override name = "ApiCallError";
  readonly rcs: readonly ApiCallRc[];
  readonly status: number;
  constructor(rcs: readonly ApiCallRc[], status?: number) {
    super(rcs.map((r) => r.message).join("; "));
    this.rcs = rcs;
    this.status = status ?? httpStatusOf(rcs, 500);
  }
}

/** Shorthand for the common single-entry error. */
export function apiError(
  code: RcCodeName,
  object: ObjectKind,
  operation: Operation,
  message: string,
  extra: Omit<ApiCallRc, "retCode" | "message"> = {},
): ApiCallError {
  return new ApiCallError([
    { retCode: retCode("error", code, object, operation), message, ...extra },
  ]);
}

/** A body or query that cannot be read: LINSTOR's API_CALL_PARSE_ERROR, status 400. */
export function parseError(message: string, correction?: string): ApiCallError {
  return new ApiCallError([
    { retCode: apiCallParseError, message, ...(correction === undefined ? {} : { correction }) },
  ]);
}
