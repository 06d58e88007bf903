import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ApiCallError,
  apiCallParseError,
  apiCallRcJson,
  httpStatusOf,
  maskError,
  parseError,
  retCode,
  type ApiCallRc,
} from "./api_call_rc.js";
import { toJson } from "./json.js";

// Expected values are derived by hand from consts.json's masks (see API_NOTES.md §2.4), not
// from the code under test.
test("api_call_rc: ret codes match LINSTOR's values exactly", () => {
  assert.equal(retCode("success", "CREATED", "resourceDefinition", "create"), 20447233n);
  assert.equal(
    retCode("error", "FAIL_EXISTS_RSC_DFN", "resourceDefinition", "create"),
    -4611686018406940171n,
  );
  assert.equal(retCode("success", "CREATED", "node", "create"), 20709377n);
  assert.equal(retCode("error", "FAIL_EXISTS_NODE", "node", "create"), -4611686018406678028n);
  assert.equal(retCode("success", "MODIFIED", "keyValueStore", "modify"), 37748739n);
  assert.equal(retCode("warn", "WARN_DEL_UNSET_PROP", "node", "modify"), -9223372036817288211n);
  assert.equal(apiCallParseError, -3458764513820540931n);
});

test("api_call_rc: golinstor's match on (uint64(rc) & (MASK_ERROR|0x7FFF)) finds the code", () => {
  const rc = retCode("error", "FAIL_EXISTS_RSC_DFN", "resourceDefinition", "create");
  const failExistsRscDfn = BigInt.asUintN(64, maskError) | 501n;
  assert.equal(
    BigInt.asUintN(64, rc) & (BigInt.asUintN(64, maskError) | 0x7fffn),
    failExistsRscDfn,
  );
});

test("api_call_rc: JSON carries the signed 64-bit value, which a JS number would corrupt", () => {
  const rc: ApiCallRc = {
    retCode: retCode("error", "FAIL_EXISTS_RSC_DFN", "resourceDefinition", "create"),
    message: 'Resource definition "r1" already exists.',
    objRefs: { RscDfn: "r1" },
  };
  const text = toJson([apiCallRcJson(rc, "2026-12-04T21:00:00.000Z")]);
  assert.equal(
    text,
    '[{"ret_code":-4611686018406940171,"message":"Resource definition \\"r1\\" already exists.",' +
      '"obj_refs":{"RscDfn":"r1"},"created_at":"2026-12-04T21:00:00.000Z"}]',
  );
  // Why BigInt: a double cannot hold the value, and the code bits would be lost.
  assert.notEqual(String(Number(-4611686018406940171n)), "-4611686018406940171");
});

test("json: values, nesting and omitted undefined fields", () => {
  assert.equal(
    toJson({ a: 1, b: undefined, c: [true, null, "x\n"], d: { e: 2n ** 63n - 1n }, f: -0.5 }),
    '{"a":1,"c":[true,null,"x\\n"],"d":{"e":9223372036854775807},"f":-0.5}',
  );
  assert.equal(toJson([]), "[]");
  assert.throws(() => toJson(Number.NaN));
});

test("api_call_rc: HTTP status derives from the first error", () => {
  const rc = (
    severity: "error" | "warn" | "success",
    code: Parameters<typeof retCode>[1],
  ): ApiCallRc => ({ retCode: retCode(severity, code, "node", "create"), message: "m" });
  assert.equal(httpStatusOf([rc("success", "CREATED")], 201), 201);
  assert.equal(
    httpStatusOf([rc("success", "CREATED"), rc("warn", "WARN_DEL_UNSET_PROP")], 201),
    201,
  );
  assert.equal(httpStatusOf([rc("error", "FAIL_NOT_FOUND_NODE")], 200), 404);
  assert.equal(httpStatusOf([rc("error", "FAIL_ACC_DENIED_COMMAND")], 200), 403);
  assert.equal(httpStatusOf([rc("error", "FAIL_SIGN_IN")], 200), 403);
  assert.equal(httpStatusOf([rc("error", "FAIL_SIGN_IN_MISSING_CREDENTIALS")], 200), 401);
  assert.equal(httpStatusOf([rc("error", "FAIL_EXISTS_NODE")], 201), 500);
  assert.equal(httpStatusOf([rc("error", "FAIL_IN_USE")], 200), 500);
  // Validation errors are 500 in LINSTOR too; only a parse error is 400.
  assert.equal(httpStatusOf([rc("error", "FAIL_INVLD_NODE_NAME")], 201), 500);
  assert.equal(httpStatusOf(parseError("bad").rcs, 201), 400);
  assert.equal(
    httpStatusOf([rc("error", "FAIL_INVLD_NODE_NAME"), ...parseError("bad").rcs], 201),
    500,
  );
  // The first error decides, even after a success entry.
  assert.equal(
    httpStatusOf(
      [rc("success", "CREATED"), rc("error", "FAIL_NOT_FOUND_NODE"), rc("error", "FAIL_IN_USE")],
      201,
    ),
    404,
  );
  assert.equal(new ApiCallError([rc("error", "FAIL_NOT_FOUND_NODE")]).status, 404);
  assert.equal(new ApiCallError([rc("error", "FAIL_IMPL_ERROR")], 501).status, 501);
});
