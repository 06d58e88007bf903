import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  errorReportFileName,
  errorReportId,
  instanceId,
  nextSequence,
  originOf,
} from "./error_reports.js";
import { openSqliteStore } from "./store/sqlite_store.js";
import type { ControllerStore, StoreReader } from "./store/store.js";
import {
  arr,
  obj,
  OP,
  PARSE_ERROR,
  rc,
  startTestController,
  testNowMs,
  type TestController,
} from "./test_client.js";

test("error report ids: instance from the start second, node 00000, sequence per instance", () => {
  assert.equal(instanceId(0x5f3a1b2c * 1000 + 999), "5F3A1B2C");
  const inst = instanceId(testNowMs);
  assert.match(inst, /^[0-9A-F]{8}$/);
  assert.equal(errorReportId("5F3A1B2C", 1), "5F3A1B2C-00000-000001");
  assert.equal(
    errorReportFileName("5F3A1B2C-00000-000001"),
    "ErrorReport-5F3A1B2C-00000-000001.log",
  );
  assert.equal(nextSequence([], "5F3A1B2C"), 1);
  assert.equal(
    nextSequence(
      ["5F3A1B2C-00000-000001", "5f3a1b2c-00000-000007", "5F3A1B2D-00000-000099"],
      "5F3A1B2C",
    ),
    8,
  );
});

test("error report origin: the first stack frame, with or without a function name", () => {
  assert.deepEqual(
    originOf(
      "TypeError: x\n    at listNodes (file:///opt/mirra/dist/src/controller/api_nodes.js:165:10)\n    at y (z.js:1:1)",
    ),
    { file: "api_nodes.js", method: "listNodes", line: 165 },
  );
  assert.deepEqual(originOf("Error: x\n    at /srv/a.js:3:4"), {
    file: "a.js",
    method: null,
    line: 3,
  });
  assert.deepEqual(originOf(undefined), { file: null, method: null, line: null });
});

/** A store whose reader throws a plain bug (not an ApiCallRc) on `nodes()`; writes work. */
function brokenNodesStore(dataDir: string): ControllerStore {
  const real = openSqliteStore({ dataDir });
  const breakNodes = (tx: StoreReader): StoreReader =>
    new Proxy(tx, {
      get(target, prop) {
        if (prop === "nodes")
          return () => {
            throw new RangeError("node list exploded");
          };
        const v: unknown = Reflect.get(target, prop);
        return typeof v === "function" ? (v as () => unknown).bind(target) : v;
      },
    });
  return {
    read: (fn) => real.read((tx) => fn(breakNodes(tx))),
    write: (fn) => real.write(fn),
    close: () => real.close(),
  };
}

let dataDir: string;
let t: TestController;
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mirra-ctrl-err-"));
  t = await startTestController({ store: brokenNodesStore(dataDir), hostname: "ctl-1" });
});
after(async () => {
  await t.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const FAIL_UNKNOWN_ERROR = rc("error", 0, OP.none, 998);

test("error reports: an unexpected failure answers 500 with the report's id", async () => {
  const a = await t.call("GET", "/v1/nodes");
  assert.equal(a.status, 500);
  assert.deepEqual(a.retCodes, [FAIL_UNKNOWN_ERROR]);
  const entry = obj(arr(a.body)[0]);
  assert.equal(entry["cause"], "node list exploded");
  const inst = instanceId(testNowMs);
  assert.deepEqual(entry["error_report_ids"], [`${inst}-00000-000001`]);

  // A second failure takes the next number.
  const b = await t.call("GET", "/v1/nodes?limit=0");
  assert.deepEqual(obj(arr(b.body)[0])["error_report_ids"], [`${inst}-00000-000002`]);

  // Planned failures (not found, bad input) write no report.
  assert.equal((await t.call("GET", "/v1/resource-definitions/none")).status, 404);
  assert.equal((await t.call("POST", "/v1/resource-definitions", "{")).status, 400);
  assert.equal(arr((await t.call("GET", "/v1/error-reports")).body).length, 2);
});

test("error reports: list without text, show with it, LINSTOR's fields", async () => {
  const inst = instanceId(testNowMs);
  const list = arr((await t.call("GET", "/v1/error-reports")).body).map(obj);
  assert.deepEqual(
    list.map((r) => r["filename"]),
    [`ErrorReport-${inst}-00000-000001.log`, `ErrorReport-${inst}-00000-000002.log`],
  );
  const first = list[0]!;
  assert.equal(first["node_name"], "ctl-1");
  assert.equal(first["error_time"], testNowMs);
  assert.equal(first["module"], "CONTROLLER");
  assert.equal(first["exception"], "RangeError");
  assert.equal(first["exception_message"], "node list exploded");
  assert.equal(first["origin_file"], "api_error_reports.test.js");
  assert.equal(typeof first["origin_line"], "number");
  assert.equal(first["text"], undefined, "list leaves the text out unless withContent=true");
  assert.match(String(first["peer"]), /^RestClient\(/);

  const withText = arr((await t.call("GET", "/v1/error-reports?withContent=true&limit=1")).body);
  assert.equal(withText.length, 1);
  assert.match(String(obj(withText[0])["text"]), /^ERROR REPORT /);

  const shown = arr((await t.call("GET", `/v1/error-reports/${inst}-00000-000002`)).body).map(obj);
  assert.equal(shown.length, 1);
  const text = String(shown[0]!["text"]);
  assert.match(text, new RegExp(`^ERROR REPORT ${inst}-00000-000002\\n`));
  assert.match(text, /Class name: +RangeError/);
  assert.match(text, /Request: +GET \/v1\/nodes\?limit=0/);
  assert.match(text, /Call backtrace:\n\n +at /);
  assert.match(text, /END OF ERROR REPORT\.\n$/);
  // Ids ignore case; an unknown id is an empty list, as LINSTOR answers.
  assert.equal(
    arr((await t.call("GET", `/v1/error-reports/${inst.toLowerCase()}-00000-000002`)).body).length,
    1,
  );
  assert.deepEqual((await t.call("GET", "/v1/error-reports/00000000-00000-000009")).body, []);
});

test("error reports: filters by node and time", async () => {
  const n = async (q: string): Promise<number> =>
    arr((await t.call("GET", `/v1/error-reports${q}`)).body).length;
  assert.equal(await n("?node=CTL-1"), 2);
  assert.equal(await n("?node=other"), 0);
  assert.equal(await n(`?since=${testNowMs}&to=${testNowMs}`), 2);
  assert.equal(await n(`?since=${testNowMs + 1}`), 0);
  assert.equal(await n(`?to=${testNowMs - 1}`), 0);
  assert.equal((await t.call("GET", "/v1/error-reports?since=yesterday")).status, 400);
});

test("error reports: delete one, delete by filter; an empty filter is refused", async () => {
  const inst = instanceId(testNowMs);
  const DELETED = rc("ok", 0, OP.del, 2);
  const one = await t.call("DELETE", `/v1/error-reports/${inst}-00000-000001`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.retCodes, [DELETED]);
  assert.match(one.text, /Deleted 1 error report\./);
  assert.equal(arr((await t.call("GET", "/v1/error-reports")).body).length, 1);

  const empty = await t.call("PATCH", "/v1/error-reports", {});
  assert.equal(empty.status, 400);
  assert.deepEqual(empty.retCodes, [PARSE_ERROR]);

  const none = await t.call("PATCH", "/v1/error-reports", { nodes: ["other"] });
  assert.match(none.text, /Deleted 0 error reports\./);
  const wrongException = await t.call("PATCH", "/v1/error-reports", {
    since: 0,
    exception: "TypeError",
  });
  assert.match(wrongException.text, /Deleted 0 error reports\./);
  const all = await t.call("PATCH", "/v1/error-reports", { since: 0, exception: "rangeerror" });
  assert.equal(all.status, 200);
  assert.match(all.text, /Deleted 1 error report\./);
  assert.deepEqual((await t.call("GET", "/v1/error-reports")).body, []);
});

test("error reports: kept across a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mirra-ctrl-err2-"));
  const first = await startTestController({ store: brokenNodesStore(dir) });
  try {
    await first.call("GET", "/v1/nodes");
  } finally {
    await first.close();
  }
  const second = await startTestController({ store: openSqliteStore({ dataDir: dir }) });
  try {
    const list = arr((await second.call("GET", "/v1/error-reports")).body).map(obj);
    assert.equal(list.length, 1);
    assert.equal(list[0]!["exception"], "RangeError");
  } finally {
    await second.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
