import assert from "node:assert/strict";
import { test } from "node:test";

import { Progress, statusLine } from "./progress.js";

function sink(): { text: string[]; write(t: string): boolean } {
  const text: string[] = [];
  return { text, write: (t: string) => (text.push(t), true) };
}

test("progress: off a terminal every step and log line is a plain line", () => {
  const out = sink();
  const p = new Progress(out, false);
  p.onStep({ phase: "setup", done: 0, total: 4, label: "starting nbdkit", secondsLeftMin: 8 });
  p.onStep({ phase: "measure", done: 0, total: 4, label: "randread on 1r", secondsLeftMin: 8 });
  p.log("[1/4] randread on 1r: 1000 IOPS");
  p.done();
  assert.deepEqual(out.text, [
    "bench: starting nbdkit\n",
    "bench: [1/4] randread on 1r: 1000 IOPS\n",
  ]);
  assert.ok(out.text.every((t) => !t.includes("\r") && !t.includes("\x1b")));
});

test("progress: on a terminal the status line is redrawn in place and cleared at the end", () => {
  const out = sink();
  const p = new Progress(out, true);
  p.onStep({ phase: "measure", done: 2, total: 8, label: "randread on 1r", secondsLeftMin: 75 });
  p.log("a result");
  p.done();
  const all = out.text.join("");
  assert.match(all, /^bench \[3\/8\] randread on 1r · 0:00 elapsed · ≥ 1:15 of runs left/);
  assert.ok(all.includes("\r\x1b[Kbench: a result\n"));
  assert.ok(all.endsWith("\r\x1b[K"));
});

test("progress: the status line counts setup apart from measured runs", () => {
  const step = { phase: "setup", done: 0, total: 8, label: "prefilling 3r", secondsLeftMin: 80 };
  assert.equal(
    statusLine({ ...step, phase: "setup" }, 61),
    "bench [setup] prefilling 3r · 1:01 elapsed",
  );
});
