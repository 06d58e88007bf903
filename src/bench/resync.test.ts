import { test } from "node:test";
import assert from "node:assert/strict";

import { renderResync } from "./resync.js";

test("bench resync: medians compared, each turn and the spread shown", () => {
  const pair = (raw: number, resync: number) => ({
    rawMegabytesPerSecond: raw,
    resyncBytes: 1024 * 1024 * 1024,
    resyncSeconds: 1073.741824 / resync,
    resyncMegabytesPerSecond: resync,
  });
  const text = renderResync({
    rawCommandLine: "fio --name=raw-seqwrite",
    pairs: [pair(1200, 1000), pair(2000, 1100), pair(1600, 900)],
    rawMegabytesPerSecond: 1600,
    resyncMegabytesPerSecond: 1000,
    ratio: 1000 / 1600,
  });
  assert.match(text, /Medians of 3 raw run\(s\) and 3 resync\(s\)/);
  assert.match(text, /\| 1600 \(1200–2000\) \|/);
  assert.match(text, /\| 1000 \(900–1100\) \|/);
  assert.match(text, /resync \/ raw: \*\*0\.63\*\*/);
  assert.match(text, /1: raw 1200, resync 1000 \(1024 MiB in 1\.07 s\), 0\.83/);
  const one = renderResync({
    rawCommandLine: "fio",
    pairs: [pair(1500, 1200)],
    rawMegabytesPerSecond: 1500,
    resyncMegabytesPerSecond: 1200,
    ratio: 0.8,
  });
  assert.match(one, /\| 1500 \| `fio` \|/, "no spread for a single run");
});
