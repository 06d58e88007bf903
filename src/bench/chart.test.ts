import assert from "node:assert/strict";
import { test } from "node:test";

import { compact, niceStep, rasterise, renderChartSvg, type ChartSpec } from "./chart.js";

const spec: ChartSpec = {
  title: "IOPS <&> per configuration",
  subtitle: "test",
  axisLabel: "IOPS",
  configs: ["nbdkit", "1r"],
  notRun: ["ceph-rbd"],
  panels: [
    {
      title: "random read",
      bars: [
        { config: "nbdkit", value: 100_000, range: { min: 90_000, max: 110_000 } },
        { config: "1r", value: 50_000, range: { min: 50_000, max: 50_000 } },
      ],
    },
    { title: "random write", bars: [{ config: "1r", value: 10, range: { min: 9, max: 11 } }] },
  ],
};

test("chart: compact numbers and round tick steps", () => {
  assert.equal(compact(0), "0");
  assert.equal(compact(50_000), "50k");
  assert.equal(compact(107_241), "107k");
  assert.equal(compact(1_234_567), "1.23M");
  assert.equal(compact(15.6), "15.6");
  assert.equal(niceStep(107_241), 50_000);
  assert.equal(niceStep(210), 100);
  assert.equal(niceStep(0), 1);
});

test("chart: the SVG escapes text, has a bar per result and says what did not run", () => {
  const svg = renderChartSvg(spec);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/);
  assert.ok(svg.includes("IOPS &lt;&amp;&gt; per configuration"));
  assert.ok(!svg.includes("<&>"));
  assert.equal(
    (svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="18"/g) ?? []).length,
    3,
  );
  assert.ok(svg.includes("no result"), "nbdkit has no random write bar");
  assert.ok(svg.includes("not run (see report.md): ceph-rbd"));
});

test("chart: resvg rasterises it to a PNG of the SVG's size", async () => {
  const svg = renderChartSvg(spec);
  const png = await rasterise(svg);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const [, w, h] = /width="(\d+)" height="(\d+)"/.exec(svg)!;
  assert.equal(png.readUInt32BE(16), Number(w));
  assert.equal(png.readUInt32BE(20), Number(h));
});
