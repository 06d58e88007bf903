import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigError } from "../stdx/errors.js";
import { configNames, resolveBenchOptions } from "./options.js";

test("bench options: --configs defaults to every configuration and accepts a subset", () => {
  assert.deepEqual(resolveBenchOptions({}).configs, configNames);
  assert.deepEqual(resolveBenchOptions({ configs: "nbdkit,raw,qemu-quorum,ceph-rbd" }).configs, [
    "nbdkit",
    "raw",
    "qemu-quorum",
    "ceph-rbd",
  ]);
  const o = resolveBenchOptions({ configs: "nbdkit, 1r,3r,3r-diskless,2r-A", resync: true });
  assert.deepEqual(o.configs, ["nbdkit", "1r", "3r", "3r-diskless", "2r-A"]);
  assert.equal(o.resync, true);
});

test("bench options: an unknown configuration is a clear error", () => {
  assert.throws(
    () => resolveBenchOptions({ configs: "nbdkit,4r" }),
    (err: unknown) =>
      err instanceof ConfigError && /unknown configuration\(s\) 4r/.test(err.message),
  );
});
