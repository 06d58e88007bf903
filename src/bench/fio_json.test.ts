import assert from "node:assert/strict";
import { test } from "node:test";

import { parseFioFigures } from "./fio_json.js";

/** A trimmed fio 3.33 report with the fields the parser reads, as its nbd engine prints it. */
function fioReport(job: object): string {
  return `fio: connected to NBD server\n${JSON.stringify({ "fio version": "fio-3.33", jobs: [job] })}\n`;
}

function dir(ios: number, iops: number, bw: number, meanNs: number, p99Ns: number): object {
  return {
    total_ios: ios,
    iops,
    bw_bytes: bw,
    clat_ns: { mean: meanNs, percentile: { "99.000000": p99Ns } },
  };
}

test("parses a read-only job: IOPS, MB/s, mean and p99 clat in µs", () => {
  const f = parseFioFigures(
    fioReport({ error: 0, read: dir(1000, 500, 2_048_000, 1500, 9000), write: dir(0, 0, 0, 0, 0) }),
  );
  assert.equal(f.iops, 500);
  assert.equal(f.megabytesPerSecond, 2.048);
  assert.equal(f.clatMeanUs, 1.5);
  assert.equal(f.clatP99Us, 9);
  assert.equal(f.flushLatMeanUs, 0);
  assert.equal(f.fioError, 0);
});

test("a mixed job sums rates, weights the mean by I/O count and takes the worse p99", () => {
  const f = parseFioFigures(
    fioReport({
      error: 0,
      read: dir(300, 30, 3e6, 1000, 5000),
      write: dir(100, 10, 1e6, 5000, 7000),
    }),
  );
  assert.equal(f.iops, 40);
  assert.equal(f.megabytesPerSecond, 4);
  assert.equal(f.clatMeanUs, 2); // (1 µs × 300 + 5 µs × 100) / 400
  assert.equal(f.clatP99Us, 7);
});

test("--fsync=1 flush latency comes from the sync section", () => {
  const f = parseFioFigures(
    fioReport({
      error: 0,
      read: dir(0, 0, 0, 0, 0),
      write: dir(1456, 727.6, 2980397, 112565.5, 1646592),
      sync: { total_ios: 1456, lat_ns: { mean: 1223500, percentile: { "99.000000": 6717440 } } },
    }),
  );
  assert.equal(f.flushLatMeanUs, 1223.5);
  assert.equal(f.flushLatP99Us, 6717.44);
});

test("no JSON or not exactly one job is an error, not zeros", () => {
  assert.throws(() => parseFioFigures("fio: connected to NBD server\n"), /no JSON/);
  assert.throws(() => parseFioFigures(JSON.stringify({ jobs: [] })), /one job/);
});
