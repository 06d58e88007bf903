import assert from "node:assert/strict";
import { test } from "node:test";

import type { FioFigures } from "./fio_json.js";
import {
  median,
  ratiosTable,
  resultsTable,
  summarise,
  type BenchReport,
  type RunRecord,
} from "./report.js";
import { selectWorkloads, workloads } from "./workloads.js";

function figures(iops: number, clatMeanUs: number, flushLatMeanUs = 0): FioFigures {
  const d = { ios: 1, iops, bytesPerSecond: iops * 4096, clatMeanUs, clatP99Us: clatMeanUs * 2 };
  return {
    iops,
    megabytesPerSecond: (iops * 4096) / 1e6,
    clatMeanUs,
    clatP99Us: clatMeanUs * 2,
    flushLatMeanUs,
    flushLatP99Us: flushLatMeanUs * 2,
    read: d,
    write: d,
    fioError: 0,
  };
}

function runOf(workload: string, config: string, f: FioFigures | null): RunRecord {
  const error = f === null ? "fio failed" : null;
  return { workload, config, repeat: 1, randSeed: 1, commandLine: "fio", figures: f, error };
}

test("median of odd and even lists", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test("the workload matrix keeps the issue's order and selects by name", () => {
  assert.deepEqual(
    workloads.map((w) => w.name),
    [
      "randread",
      "randrw",
      "randwrite",
      "seqread",
      "seqwrite",
      "read-latency",
      "write-latency",
      "durable-write-latency",
    ],
  );
  assert.deepEqual(
    selectWorkloads(["write-latency", "randread"]).map((w) => w.name),
    ["randread", "write-latency"],
  );
  assert.throws(() => selectWorkloads(["nope"]), /unknown workload/);
});

test("ratios use medians; latency includes the flush; a failed side gives no ratio", () => {
  const durable = selectWorkloads(["durable-write-latency"])[0]!;
  const runs = [
    runOf(durable.name, "nbdkit", figures(1000, 100, 400)),
    runOf(durable.name, "nbdkit", figures(3000, 100, 400)),
    runOf(durable.name, "nbdkit", figures(2000, 100, 400)),
    runOf(durable.name, "mirra", figures(1000, 200, 800)),
  ];
  const s = summarise(durable, ["nbdkit", "mirra"], "nbdkit", runs);
  assert.equal(s.medians["nbdkit"]!.iops, 2000);
  assert.equal(s.iopsRatio["mirra"], 0.5);
  assert.equal(s.latencyRatio["mirra"], 2); // (200 + 800) / (100 + 400)

  const randread = selectWorkloads(["randread"])[0]!;
  const failed = summarise(randread, ["nbdkit", "mirra"], "nbdkit", [
    runOf("randread", "nbdkit", figures(1000, 10)),
    runOf("randread", "mirra", null),
  ]);
  assert.equal(failed.iopsRatio["mirra"], null);
  assert.deepEqual(failed.latencyRatio, {});

  const report = {
    baseline: "nbdkit",
    references: ["nbdkit"],
    servers: [{ name: "nbdkit" }, { name: "mirra" }],
  };
  const table = ratiosTable({ ...report, summary: [s, failed] } as unknown as BenchReport);
  assert.deepEqual(table.split("\n").slice(2), [
    "| durable write latency 4k qd1 fsync=1 | nbdkit | 1.00 | 1.00 |",
    "| durable write latency 4k qd1 fsync=1 | mirra | 0.50 | 2.00 |",
    "| random read 4k qd64 | nbdkit | 1.00 | — |",
    "| random read 4k qd64 | mirra | — | — |",
  ]);
});

test("ratios against nbdkit and 1r side by side, medians with their min–max spread", () => {
  const randwrite = selectWorkloads(["randwrite"])[0]!;
  const runs = [
    runOf("randwrite", "nbdkit", figures(4000, 10)),
    runOf("randwrite", "nbdkit", figures(4000, 10)),
    runOf("randwrite", "1r", figures(1000, 40)),
    runOf("randwrite", "1r", figures(3000, 20)),
    runOf("randwrite", "3r", figures(1000, 50)),
    runOf("randwrite", "3r", figures(1000, 50)),
  ];
  const configs = ["nbdkit", "1r", "3r"];
  const s = summarise(randwrite, configs, "nbdkit", runs, ["nbdkit", "1r"]);
  assert.equal(s.medians["1r"]!.iops, 2000);
  assert.deepEqual(s.medians["1r"]!.spread.iops, { min: 1000, max: 3000 });
  assert.equal(s.ratios["nbdkit"]!.iops["3r"], 0.25);
  assert.equal(s.ratios["1r"]!.iops["3r"], 0.5);
  assert.equal(s.ratios["1r"]!.iops["nbdkit"], 2);
  const report = {
    baseline: "nbdkit",
    references: ["nbdkit", "1r"],
    servers: configs.map((name) => ({ name })),
    summary: [s],
  } as unknown as BenchReport;
  assert.deepEqual(ratiosTable(report).split("\n").slice(0, 1), [
    "| workload | config | IOPS / nbdkit | latency / nbdkit | IOPS / 1r | latency / 1r |",
  ]);
  assert.match(ratiosTable(report), /\| random write 4k qd64 \| 3r \| 0\.25 \| — \| 0\.50 \| — \|/);
  const medians = resultsTable(report).split("\n");
  assert.match(medians[3]!, /^\| random write 4k qd64 \| 1r \| 2000 \(1000–3000\) \|/);
  assert.match(
    medians[2]!,
    /^\| random write 4k qd64 \| nbdkit \| 4000 \|/,
    "no spread when equal",
  );
});
