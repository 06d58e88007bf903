import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiCallError, apiCallParseError } from "./api_call_rc.js";
import { matchesProps, nameFilter, ObjectReader, paginate, queryInt } from "./input.js";

function parseFails(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApiCallError);
    assert.equal(err.rcs[0]?.retCode, apiCallParseError);
    assert.match(err.message, pattern);
    return true;
  });
}

test("input: lenient reads as Jackson does", () => {
  const r = ObjectReader.body(
    JSON.stringify({ n: "42", s: 7, b: "TRUE", l: ["a", 1], p: { a: 1, b: true }, x: null }),
  );
  assert.equal(r.int("n", 0, 100), 42);
  assert.equal(r.str("s"), "7");
  assert.equal(r.bool("b"), true);
  assert.deepEqual(r.strList("l"), ["a", "1"]);
  assert.deepEqual(r.props("p"), { a: "1", b: "true" });
  assert.equal(r.str("x"), undefined, "null reads as absent");
  assert.equal(r.int("missing", 0, 1), undefined);
});

test("input: what does not fit names the field", () => {
  const r = ObjectReader.body(JSON.stringify({ o: { n: "4x", f: 1.5, big: 2 ** 60 }, a: {} }));
  const o = r.objReq("o");
  parseFails(() => o.int("n", 0, 10), /'o\.n' must be an integer/);
  parseFails(() => o.int("f", 0, 10), /'o\.f' must be an integer/);
  parseFails(() => o.int("big", 0, Number.MAX_SAFE_INTEGER), /'o\.big' must be an integer/);
  parseFails(() => r.strList("a"), /'a' must be an array/);
  parseFails(() => r.objReq("nope"), /'nope' is required/);
  parseFails(() => ObjectReader.body("[]"), /must be a JSON object, not an array/);
  parseFails(() => ObjectReader.body(undefined), /missing/);
  assert.deepEqual(ObjectReader.body(undefined, true).props("p"), undefined);
});

test("input: paging, props and name filters", () => {
  const items = [1, 2, 3, 4, 5];
  assert.deepEqual(paginate(items, { limit: "0", offset: "0" }), items);
  assert.deepEqual(paginate(items, { limit: "2", offset: "1" }), [2, 3]);
  assert.deepEqual(paginate(items, { offset: "9" }), []);
  parseFails(() => queryInt({ limit: "1e3" }, "limit"), /'limit'/);
  assert.equal(matchesProps({ a: "1", b: "2" }, { props: ["a", "b=2"] }), true);
  assert.equal(matchesProps({ a: "1" }, { props: "a=2" }), false);
  assert.equal(matchesProps({ "k=v": "x" }, { props: "k" }), false);
  const f = nameFilter({ nodes: ["Alpha", "beta"] }, "nodes");
  assert.deepEqual(["alpha", "BETA", "gamma"].map(f), [true, true, false]);
  assert.equal(nameFilter({}, "nodes")("anything"), true);
});
