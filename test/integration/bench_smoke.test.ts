//! Smoke test of the bench tool: tiny runs (two workloads, one second each, 64 MiB) must
//! finish, and their markdown tables, results.json and PNG charts must be well formed. It never
//! looks at the numbers themselves: the bench is a tool, and figures are not test outcomes.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";

import {
  rawTarget,
  resolveBenchOptions,
  runBench,
  TargetUnavailableError,
  type BenchReport,
  type TargetConfig,
} from "../../src/bench/mod.js";
import { cleanupAll, describeResult, makeTempDir, mirraMain, run } from "./nbd_helpers.js";

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
        /^(—|-?\d+(\.\d+)?( \(-?\d+(\.\d+)?–-?\d+(\.\d+)?\))?|[a-z0-9-]+)$/,
        `${what}: cell "${cell}" is a number (with its spread), a name or —`,
      );
    }
  }
}

describe("bench smoke", { timeout: 180_000 }, () => {
  after(cleanupAll);

  test("a quick run prints well-formed tables and writes report.md and results.json", async () => {
    const out = await makeTempDir("mirra-bench-smoke-");
    const args = [benchScript, "--quick", "--duration", "1", "--repeat", "1"];
    args.push("--configs", "nbdkit,mirra");
    args.push("--workloads", workloadNames.join(","), "--size", "64M", "--out", out, "--dir", out);
    const r = await run(process.execPath, args, { timeoutMs: 150_000 });
    assert.equal(r.code, 0, describeResult(r));

    const markdown = r.stdout;
    assert.equal(
      await readFile(join(out, "report.md"), "utf8"),
      markdown,
      "report.md is what was printed",
    );
    assertWellFormed(tableAfter(markdown, "## Ratios"), workloadNames.length * 2, "ratios table");
    assertWellFormed(tableAfter(markdown, "## Medians"), workloadNames.length * 2, "medians table");
    assert.match(markdown, /## Machine/);
    assert.match(markdown, /^ {4}fio --name=randread --ioengine=nbd /m, "exact fio command lines");

    const report = JSON.parse(await readFile(join(out, "results.json"), "utf8")) as BenchReport;
    assert.equal(report.format, "mirra-bench/2");
    assert.equal(report.baseline, "nbdkit");
    assert.deepEqual(report.references, ["nbdkit"]);
    assert.deepEqual(report.notRun, []);
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

  // No peer here: whether qemu-quorum or ceph-rbd can run depends on the machine, and a Ceph
  // cluster takes half a minute to build. A peer that cannot run is the last test's subject.
  test("`mirra bench --quick` with raw and 1r writes report, JSON and PNGs", async () => {
    const out = await makeTempDir("mirra-bench-cli-");
    const configs = ["nbdkit", "raw", "1r"];
    const ran = configs;
    const args = [mirraMain, "bench", "--quick", "--duration", "1", "--repeat", "1", "--size"];
    args.push("64M", "--workloads", workloadNames.join(","), "--configs", configs.join(","));
    args.push("--out", out, "--dir", out);
    const r = await run(process.execPath, args, { timeoutMs: 150_000 });
    assert.equal(r.code, 0, describeResult(r));
    assert.ok(!r.stderr.includes("\u001b["), "plain progress lines when not on a terminal");
    assert.match(r.stderr, /^bench: \[1\/6\] randread on nbdkit, repeat 1: /m);

    const markdown = r.stdout;
    assert.equal(await readFile(join(out, "report.md"), "utf8"), markdown);
    const ratios = tableAfter(markdown, "## Ratios");
    assertWellFormed(ratios, workloadNames.length * ran.length, "ratios table");
    assert.deepEqual(ratios[0], [
      ...["workload", "config", "IOPS / nbdkit", "latency / nbdkit"],
      ...["IOPS / 1r", "latency / 1r"],
    ]);
    assertWellFormed(tableAfter(markdown, "## Medians"), workloadNames.length * 3, "medians");
    assert.match(markdown, /^ {4}fio --name=randread --ioengine=(io_uring|libaio) --filename=/m);
    assert.match(markdown, /^!\[IOPS per configuration and workload\]\(iops\.png\)$/m);
    // 1r's depth-1 write latency ran: the report gives the floor a replicated write has here.
    assert.match(
      markdown,
      /^- reference for a protocol C write at depth 1 here: 1r's [\d.]+ µs \+ one loopback round trip .* = [\d.]+ µs, [\d.]+ × nbdkit\. Not a hard floor/m,
    );

    const report = JSON.parse(await readFile(join(out, "results.json"), "utf8")) as BenchReport;
    assert.equal(report.format, "mirra-bench/2");
    assert.deepEqual(
      report.servers.map((s) => s.name),
      ran,
    );
    assert.deepEqual(report.references, ["nbdkit", "1r"]);
    assert.deepEqual(report.notRun, []);
    assert.equal(report.runs.length, workloadNames.length * ran.length);
    for (const run of report.runs)
      assert.equal(run.error, null, `${run.workload} on ${run.config}`);
    for (const s of report.summary) {
      assert.deepEqual(Object.keys(s.ratios), ["nbdkit", "1r"]);
      assert.deepEqual(Object.keys(s.medians).sort(), [...ran].sort());
      for (const m of Object.values(s.medians)) assert.ok(m.spread.iops.min <= m.spread.iops.max);
    }

    for (const file of ["iops.png", "latency.png"]) {
      const png = await readFile(join(out, file));
      const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
      assert.deepEqual([...png.subarray(0, 8)], signature, `${file}: PNG signature`);
      assert.equal(png.toString("latin1", 12, 16), "IHDR", `${file}: IHDR comes first`);
      const width = png.readUInt32BE(16);
      const height = png.readUInt32BE(20);
      assert.ok(width >= 600 && width <= 4000, `${file}: width ${width}`);
      assert.ok(height >= 200 && height <= 4000, `${file}: height ${height}`);
      assert.ok(png.length > 10_000, `${file}: ${png.length} bytes is too small to hold a chart`);
    }
  });

  test("`mirra bench` and scripts/bench.js take the same options", async () => {
    const help = async (args: string[]): Promise<string[]> => {
      const r = await run(process.execPath, [...args, "--help"], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, describeResult(r));
      return r.stdout.split("\n").filter((l) => /^\s+--[a-z]/.test(l) && !/--help/.test(l));
    };
    const cli = await help([mirraMain, "bench"]);
    assert.ok(cli.length >= 10, cli.join("\n"));
    assert.deepEqual(await help([benchScript]), cli);
  });

  test("a configuration that fails to start is reported as failed, one unavailable as not run", async () => {
    const dir = await makeTempDir("mirra-bench-notrun-");
    const broken: TargetConfig = {
      name: "broken",
      description: "a server that cannot start",
      start: () => Promise.reject(new Error("exec: no such server (test)")),
    };
    const absent: TargetConfig = {
      name: "absent",
      description: "a peer this machine lacks",
      unavailable: () => Promise.resolve("not installed: absentd (test)"),
      start: () => Promise.reject(new Error("must not be started")),
    };
    // A peer that starts but never becomes usable here (a Ceph cluster that is never healthy).
    const unhealthy: TargetConfig = {
      name: "unhealthy",
      description: "a peer that cannot get ready on this machine",
      start: () => Promise.reject(new TargetUnavailableError("not ready after 1 s (test)")),
    };
    const options = resolveBenchOptions({
      ...{ duration: "1", repeat: "1", size: "4M", workloads: "randread", dir },
      configs: "raw",
    });
    const { report, markdown } = await runBench(options, () => {}, {
      configs: [rawTarget, broken, absent, unhealthy],
    });
    assert.deepEqual(
      report.servers.map((s) => s.name),
      ["raw"],
    );
    assert.deepEqual(
      report.notRun.map((n) => [n.name, n.kind, n.reason]),
      [
        ["broken", "failed", "exec: no such server (test)"],
        ["absent", "unavailable", "not installed: absentd (test)"],
        ["unhealthy", "unavailable", "not ready after 1 s (test)"],
      ],
    );
    assert.match(markdown, /^- \*\*broken\*\* \(FAILED to start\): .*exec: no such server/m);
    assert.match(markdown, /^- \*\*absent\*\* \(not run\): .*Reason: not installed: absentd/m);
    assert.match(markdown, /^- \*\*unhealthy\*\* \(not run\): .*Reason: not ready after 1 s/m);
    assert.match(markdown, /^## Failures$/m);
  });
});
