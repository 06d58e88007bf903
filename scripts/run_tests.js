#!/usr/bin/env node
// Runs every compiled test file under dist/ with node's built-in runner. Unit and simulator
// tests run in parallel; integration tests (real daemons, fio, qemu-img) run one file at a time
// so that they do not fight over the machine's two cores. Both runs stream their spec output,
// and a last line sums them up as "N passed, N failed" for CI.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out.sort();
}

function runNodeTest(files, concurrency) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
    });
    child.on("close", (code) => {
      const count = (label) => Number((tail.match(new RegExp(`ℹ ${label} (\\d+)`)) ?? [])[1] ?? 0);
      resolve({ code, pass: count("pass"), fail: count("fail"), skipped: count("skipped") });
    });
  });
}

const filter = process.argv.slice(2);
const all = find("dist").filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)));
const integration = all.filter((f) => f.includes("/test/integration/"));
const unit = all.filter((f) => !integration.includes(f));
const total = { pass: 0, fail: 0, skipped: 0, failedRuns: 0 };
for (const [files, concurrency] of [
  [unit, 2],
  [integration, 1],
]) {
  if (files.length === 0) continue;
  const r = await runNodeTest(files, concurrency);
  total.pass += r.pass;
  total.fail += r.fail;
  total.skipped += r.skipped;
  if (r.code !== 0) total.failedRuns++;
}
if (total.failedRuns > 0 && total.fail === 0) total.fail = total.failedRuns;
console.log(`\ntests: ${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped`);
process.exit(total.failedRuns > 0 || total.fail > 0 ? 1 : 0);
