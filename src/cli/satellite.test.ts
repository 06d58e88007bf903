import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigError } from "../stdx/errors.js";
import { parseMetrics } from "./satellite.js";

test("satellite --metrics: default, port, host:port, [v6]:port and off", () => {
  assert.deepEqual(parseMetrics(undefined, "127.0.0.2"), { host: "127.0.0.2", port: 9942 });
  assert.deepEqual(parseMetrics("19942", "127.0.0.2"), { host: "127.0.0.2", port: 19942 });
  assert.deepEqual(parseMetrics("0.0.0.0:9942", "127.0.0.2"), { host: "0.0.0.0", port: 9942 });
  assert.deepEqual(parseMetrics("[::1]:9942", "127.0.0.2"), { host: "::1", port: 9942 });
  assert.equal(parseMetrics("off", "127.0.0.2"), null);
  assert.equal(parseMetrics("OFF", "127.0.0.2"), null);
});

test("satellite --metrics: a bad value says what to write", () => {
  for (const bad of ["", "host", "host:", ":9942", "70000", "a:b:9942", "[::1]"])
    assert.throws(
      () => parseMetrics(bad, "127.0.0.1"),
      (err: unknown) => err instanceof ConfigError && /\[HOST:\]PORT/.test(err.message),
      bad,
    );
});
