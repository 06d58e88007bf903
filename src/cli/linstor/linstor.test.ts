// Unit tests of the CLI's pure parts: exact ret_codes, sizes, tables and message blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatJson, parseJson, JsonSyntaxError } from "./json.js";
import { parseSizeKib } from "./sizes.js";
import { formatRc, renderTable, severityOf, paint, colorState } from "./output.js";
import { parseControllers } from "./client.js";
import { parseTime, reportId } from "./error_report.js";
import { ConfigError } from "../../stdx/errors.js";

test("linstor json: ret_codes beyond 2^53 parse exactly, small numbers stay numbers", () => {
  const text =
    '[{"ret_code":-4611686018406940171,"n":20447233,"f":1.5,"e":1e3,"s":"a\\"b","z":[],"o":{}}]';
  const v = parseJson(text);
  assert.deepEqual(v, [
    { ret_code: -4611686018406940171n, n: 20447233, f: 1.5, e: 1000, s: 'a"b', z: [], o: {} },
  ]);
  // Written back, the value is the same signed decimal.
  assert.match(formatJson(v), /"ret_code": -4611686018406940171,/);
  assert.deepEqual(parseJson(formatJson(v)), v);
  assert.equal(parseJson(" 9007199254740993 "), 9007199254740993n);
  for (const bad of ["", "[1,]", '{"a" 1}', "[1] x", "tru", '"open']) {
    assert.throws(() => parseJson(bad), JsonSyntaxError, bad);
  }
});

test("linstor sizes: units are binary, no unit means GiB, bytes round up to KiB", () => {
  assert.equal(parseSizeKib("1G"), 1024 * 1024);
  assert.equal(parseSizeKib("100M"), 100 * 1024);
  assert.equal(parseSizeKib("512MiB"), 512 * 1024);
  assert.equal(parseSizeKib("4k"), 4);
  assert.equal(parseSizeKib("2"), 2 * 1024 * 1024);
  assert.equal(parseSizeKib("1000B"), 1);
  for (const bad of ["", "G", "1Q", "-1G", "1.2.3"]) {
    assert.throws(() => parseSizeKib(bad), ConfigError, bad);
  }
});

test("linstor output: severity comes from the top bits of the signed ret_code", () => {
  assert.equal(severityOf(20447233), "success");
  assert.equal(severityOf(-4611686018406940171n), "error");
  assert.equal(severityOf(-9223372036854775808n + 5n), "warning");
  assert.equal(severityOf(4611686018427387904n + 1n), "info");
  const text = formatRc(
    { color: false },
    { ret_code: -4611686018406940171n, message: "It exists.", correction: "Pick\nanother." },
  );
  assert.equal(text, "ERROR:\nDescription:\n    It exists.\nCorrection:\n    Pick\n    another.\n");
  const failed = formatRc(
    { color: false },
    {
      ret_code: -4611686018427386906n,
      message: "Failed.",
      error_report_ids: ["5F3A1B2C-00000-000001"],
    },
  );
  assert.equal(
    failed,
    "ERROR:\nDescription:\n    Failed.\nShow reports:\n    mirra error-reports show 5F3A1B2C-00000-000001\n",
  );
});

test("linstor output: tables align cells whatever their colors", () => {
  const ctx = { color: true };
  const table = renderTable(
    ["Node", "State"],
    [
      ["n1", colorState(ctx, "Online")],
      ["node-22", colorState(ctx, "OFFLINE")],
    ],
  );
  const lines = table.trimEnd().split("\n");
  const plain = lines.map((l) =>
    l.replaceAll("\x1b[32m", "").replaceAll("\x1b[31m", "").replaceAll("\x1b[0m", ""),
  );
  assert.equal(new Set(plain.map((l) => l.length)).size, 1, table);
  assert.ok(lines[3]!.includes("\x1b[32mOnline\x1b[0m"), "Online is green");
  assert.ok(lines[4]!.includes("\x1b[31mOFFLINE\x1b[0m"), "OFFLINE is red");
  assert.equal(colorState(ctx, "SyncTarget(12.00%)"), "\x1b[33mSyncTarget(12.00%)\x1b[0m");
  assert.equal(colorState(ctx, "Unknown"), "\x1b[33mUnknown\x1b[0m");
  assert.equal(paint({ color: false }, "red", "x"), "x");
});

test("linstor client: --controllers takes URLs or bare hosts", () => {
  assert.deepEqual(parseControllers("http://a:1, b ,linstor://c"), [
    "http://a:1",
    "http://b:3370",
    "http://c:3370",
  ]);
  assert.throws(() => parseControllers(" , "), ConfigError);
  assert.throws(() => parseControllers("https://a"), ConfigError);
});

test("linstor err: --since/--to read spans back from now or dates; ids come from file names", () => {
  const now = Date.UTC(2026, 11, 4, 12, 0, 0);
  assert.equal(parseTime("--since", "3d", now), now - 3 * 86_400_000);
  assert.equal(parseTime("--since", "2d6h30m", now), now - (54 * 60 + 30) * 60_000);
  assert.equal(parseTime("--to", "0m", now), now);
  assert.equal(parseTime("--to", "2026-12-01T00:00:00Z", now), Date.UTC(2026, 11, 1));
  for (const bad of ["", "3x", "soon"]) {
    assert.throws(() => parseTime("--since", bad, now), ConfigError, bad);
  }
  assert.equal(
    reportId({ filename: "ErrorReport-5F3A1B2C-00000-000001.log" }),
    "5F3A1B2C-00000-000001",
  );
});
