//! Smoke test of the bench tool: a tiny run (two workloads, one second each, 64 MiB) must
//! finish, and its markdown tables and results.json must be well formed. It never looks at
//! the numbers themselves: the bench is a tool, and figures are not test outcomes.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";

import type { BenchReport } from "../../src/bench/mod.js";
import { cleanupAll, describeResult, makeTempDir, run } from "./nbd_helpers.js";

const benchScript = fileURLToPath(new URL("../../scripts/bench.js", import.meta.url));
const workloadNames = ["randread", "write-latency"];

/** The markdown table that follows `heading`, as rows of trimmed cells. */
function tableAfter(markdown: string, heading: string): string[][] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `missing heading ${heading}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("|"))
      rows.push(
        line
          .slice(1, -1)
          .split("|")
          .map((c) => c.trim()),
      );
    else if (rows.length > 0) break;
  }
  return rows;
}

function assertWellFormed(rows: string[][], dataRows: number, what: string): void {
  assert.equal(rows.length, 2 + dataRows, `${what}: header, separator and ${dataRows} rows`);
  const width = rows[0]!.length;
  for (const row of rows) assert.equal(row.length, width, `${what}: every row has ${width} cells`);
  assert.ok(
    rows[1]!.every((c) => c === "---"),
    `${what}: separator row`,
  );
  for (const row of rows.slice(2)) {
    for (const cell of row.slice(1)) {
      assert.match(
        cell,
        /^(—|-?\d+(\.\d+)?|[a-z]+)$/,
        `${what}: cell "${cell}" is a number, a name or —`,
      );
    }
  }
}

describe("bench smoke", { timeout: 180_000 }, () => {
  after(cleanupAll);

  test("a quick run prints well-formed tables and writes report.md and results.json", async () => {
    const out = await makeTempDir("mirra-bench-smoke-");
    const args = [benchScript, "--quick", "--duration", "1", "--repeat", "1"];
    args.push("--workloads", workloadNames.join(","), "--size", "64M", "--out", out, "--dir", out);
    const r = await run(process.execPath, args, { timeoutMs: 150_000 });
    assert.equal(r.code, 0, describeResult(r));

    const markdown = r.stdout;
    assert.equal(
      await readFile(join(out, "report.md"), "utf8"),
      markdown,
      "report.md is what was printed",
    );
    assertWellFormed(tableAfter(markdown, "## Ratios"), workloadNames.length, "ratios table");
    assertWellFormed(tableAfter(markdown, "## Medians"), workloadNames.length * 2, "medians table");
    assert.match(markdown, /## Machine/);
    assert.match(markdown, /^ {4}fio --name=randread --ioengine=nbd /m, "exact fio command lines");

    const report = JSON.parse(await readFile(join(out, "results.json"), "utf8")) as BenchReport;
    assert.equal(report.format, "mirra-bench/1");
    assert.equal(report.baseline, "nbdkit");
    assert.deepEqual(report.settings.workloads, workloadNames);
    assert.equal(report.settings.durationSeconds, 1);
    assert.equal(report.settings.sizeBytes, 64 * 1024 * 1024);
    assert.deepEqual(
      report.servers.map((s) => s.name),
      ["nbdkit", "mirra"],
    );
    assert.equal(report.runs.length, workloadNames.length * 2);
    for (const run of report.runs) {
      assert.equal(run.error, null, `run ${run.workload} on ${run.config} failed`);
      assert.ok(run.figures !== null);
      for (const value of Object.values(run.figures)) {
        if (typeof value === "number") assert.ok(Number.isFinite(value) && value >= 0);
      }
      assert.match(run.commandLine, /^fio /);
    }
    assert.deepEqual(
      report.summary.map((s) => s.workload),
      workloadNames,
    );
    for (const s of report.summary) {
      assert.deepEqual(Object.keys(s.medians).sort(), ["mirra", "nbdkit"]);
      assert.ok("mirra" in s.iopsRatio);
    }
    assert.equal(typeof report.machine.cpus, "number");
    assert.match(report.machine.fio, /fio/);
  });
});
