//! The report's charts, drawn as SVG here (no plotting library) and rasterised to PNG with
//! resvg, whose prebuilt binary comes from the npm registry as an optional dependency.
//!
//! Layout: small multiples, one panel per workload with its own scale (random read IOPS and
//! sequential write IOPS differ by orders of magnitude, so one shared axis would flatten
//! half the chart). In a panel each configuration is one horizontal bar in its legend colour,
//! its median labelled at the end, and a thin whisker showing min–max over the repeats.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";

import { MirraError } from "../stdx/errors.js";
import { chartFiles, type BenchReport, type MedianFigures, type Range } from "./report.js";

/** One bar: a configuration's median and its spread over the repeats. */
interface Bar {
  readonly config: string;
  readonly value: number;
  readonly range: Range;
  /** Shown after the value, e.g. "p99 56" (the p99 is not drawn: it would set the scale). */
  readonly note?: string;
}

interface Panel {
  readonly title: string;
  readonly bars: readonly Bar[];
}

export interface ChartSpec {
  readonly title: string;
  readonly subtitle: string;
  /** Axis caption under every panel, with the unit. */
  readonly axisLabel: string;
  readonly configs: readonly string[];
  readonly notRun: readonly string[];
  readonly panels: readonly Panel[];
  /** What a bar's note means, for the legend; absent when bars have none. */
  readonly noteLabel?: string;
}

/** Tableau 10: distinct in colour and in grey scale. */
const palette = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];
const font = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const width = 1100;
const columns = 2;
const margin = 24;
const labelWidth = 110;
const valueWidth = 70;
const valueWidthNoted = 130;
const barHeight = 18;
const barGap = 6;

function esc(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}

/** 1234 → "1.23k", 1234567 → "1.23M", 50000 → "50k"; small numbers keep one decimal. */
export function compact(n: number): string {
  const trim = (t: string): string => (t.includes(".") ? t.replace(/\.?0+$/, "") : t);
  if (n >= 1e6) return `${trim((n / 1e6).toPrecision(3))}M`;
  if (n >= 1e3) return `${trim((n / 1e3).toPrecision(3))}k`;
  return n >= 100 ? n.toFixed(0) : trim(n.toFixed(1));
}

/** A round tick step (1, 2 or 5 × 10^k) giving about four ticks up to `max`. */
export function niceStep(max: number): number {
  if (!(max > 0)) return 1;
  const raw = max / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

function text(x: number, y: number, body: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(body)}</text>`;
}

function panelHeight(rows: number): number {
  return 28 + rows * (barHeight + barGap) + 40;
}

function drawPanel(p: Panel, spec: ChartSpec, x0: number, y0: number, w: number): string[] {
  const out: string[] = [];
  const plotX = x0 + labelWidth;
  // Room right of the longest bar for its label, so labels never cover a bar or a whisker.
  const plotW = w - labelWidth - (spec.noteLabel === undefined ? valueWidth : valueWidthNoted);
  const top = Math.max(1, ...p.bars.map((b) => b.range.max));
  const step = niceStep(top);
  const axisMax = Math.ceil(top / step) * step;
  const sx = (v: number): number => plotX + (v / axisMax) * plotW;
  const rowsH = spec.configs.length * (barHeight + barGap);
  const plotTop = y0 + 28;
  out.push(text(x0, y0 + 16, p.title, 'font-size="15" font-weight="bold" fill="#222"'));
  for (let v = 0; v <= axisMax + step / 2; v += step) {
    const x = sx(v);
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${plotTop}" x2="${x.toFixed(1)}" y2="${plotTop + rowsH}" stroke="#ddd"/>`,
      text(x, plotTop + rowsH + 14, compact(v), 'font-size="11" fill="#555" text-anchor="middle"'),
    );
  }
  out.push(
    `<line x1="${plotX}" y1="${plotTop + rowsH}" x2="${plotX + plotW}" y2="${plotTop + rowsH}" stroke="#888"/>`,
    text(
      plotX + plotW / 2,
      plotTop + rowsH + 32,
      spec.axisLabel,
      'font-size="12" fill="#333" text-anchor="middle"',
    ),
  );
  spec.configs.forEach((config, i) => {
    const y = plotTop + i * (barHeight + barGap) + barGap / 2;
    const mid = y + barHeight / 2;
    out.push(text(plotX - 8, mid + 4, config, 'font-size="12" fill="#333" text-anchor="end"'));
    const bar = p.bars.find((b) => b.config === config);
    if (bar === undefined) {
      out.push(
        text(plotX + 4, mid + 4, "no result", 'font-size="11" fill="#999" font-style="italic"'),
      );
      return;
    }
    const colour = palette[i % palette.length]!;
    const bw = Math.max(1, sx(bar.value) - plotX);
    out.push(
      `<rect x="${plotX}" y="${y}" width="${bw.toFixed(1)}" height="${barHeight}" fill="${colour}"/>`,
    );
    if (bar.range.max > bar.range.min) {
      const [a, b] = [sx(bar.range.min), sx(bar.range.max)];
      out.push(
        `<line x1="${a.toFixed(1)}" y1="${mid}" x2="${b.toFixed(1)}" y2="${mid}" stroke="#222" stroke-width="1.5"/>`,
        `<line x1="${a.toFixed(1)}" y1="${mid - 5}" x2="${a.toFixed(1)}" y2="${mid + 5}" stroke="#222" stroke-width="1.5"/>`,
        `<line x1="${b.toFixed(1)}" y1="${mid - 5}" x2="${b.toFixed(1)}" y2="${mid + 5}" stroke="#222" stroke-width="1.5"/>`,
      );
    }
    const end = Math.max(sx(bar.value), sx(bar.range.max));
    const label = compact(bar.value) + (bar.note === undefined ? "" : ` (${bar.note})`);
    out.push(text(end + 8, mid + 4, label, 'font-size="12" fill="#222"'));
  });
  return out;
}

/** The SVG document of a chart; pure, so it can be tested without a rasteriser. */
export function renderChartSvg(spec: ChartSpec): string {
  const cellW = (width - margin * (columns + 1)) / columns;
  const cellH = panelHeight(spec.configs.length);
  const legendTop = 78;
  // The legend: one swatch per configuration, wrapped to the chart's width, then the keys
  // and the configurations that did not run, one line each.
  const swatches: { x: number; y: number; config: string; colour: string }[] = [];
  let lx = margin;
  let ly = legendTop;
  spec.configs.forEach((config, i) => {
    const w = 34 + config.length * 8;
    if (lx + w > width - margin) [lx, ly] = [margin, ly + 22];
    swatches.push({ x: lx, y: ly, config, colour: palette[i % palette.length]! });
    lx += w;
  });
  const keysY = ly + 34;
  const notRunY = keysY + 20;
  const headerH = (spec.notRun.length > 0 ? notRunY : keysY) + 26;
  const rows = Math.max(1, Math.ceil(spec.panels.length / columns));
  const height = headerH + rows * cellH + (rows - 1) * margin + margin / 2;
  const body: string[] = [
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    text(margin, 34, spec.title, 'font-size="22" font-weight="bold" fill="#111"'),
    text(margin, 58, spec.subtitle, 'font-size="13" fill="#555"'),
  ];
  for (const sw of swatches) {
    body.push(
      `<rect x="${sw.x}" y="${sw.y}" width="14" height="14" fill="${sw.colour}"/>`,
      text(sw.x + 20, sw.y + 12, sw.config, 'font-size="13" fill="#222"'),
    );
  }
  const keys = [
    "bar: median",
    "whisker: min–max over repeats",
    ...(spec.noteLabel !== undefined ? [`in brackets: ${spec.noteLabel}`] : []),
  ];
  body.push(text(margin, keysY, keys.join(" · "), 'font-size="12" fill="#555"'));
  if (spec.notRun.length > 0) {
    body.push(
      text(
        margin,
        notRunY,
        `not run (see report.md): ${spec.notRun.join(", ")}`,
        'font-size="12" fill="#a33"',
      ),
    );
  }
  if (spec.panels.length === 0) {
    body.push(
      text(
        margin,
        headerH + 30,
        "no workload of this kind in this run",
        'font-size="14" fill="#777"',
      ),
    );
  }
  spec.panels.forEach((p, i) => {
    const x = margin + (i % columns) * (cellW + margin);
    const y = headerH + Math.floor(i / columns) * (cellH + margin);
    body.push(...drawPanel(p, spec, x, y, cellW));
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="${font}">`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

function subtitle(report: BenchReport): string {
  const s = report.settings;
  const m = report.machine;
  return (
    `${report.startedAt.slice(0, 10)} · ${m.cpus} CPU(s), ${m.kernel} · ${s.durationSeconds} s × ` +
    `${s.repeat} run(s) per bar, median · ${(s.sizeBytes / 2 ** 20).toFixed(0)} MiB volume`
  );
}

function configs(report: BenchReport): string[] {
  return report.servers.map((s) => s.name);
}

/** IOPS per configuration, one panel per workload. */
export function iopsChart(report: BenchReport): ChartSpec {
  return {
    title: "mirra bench: IOPS per configuration and workload (higher is better)",
    subtitle: subtitle(report),
    axisLabel: "IOPS (operations per second)",
    configs: configs(report),
    notRun: report.notRun.map((n) => n.name),
    panels: report.summary.map((s) => ({
      title: s.title,
      bars: Object.entries(s.medians).map(([config, m]) => ({
        config,
        value: m.iops,
        range: m.spread.iops,
      })),
    })),
  };
}

/** Mean time per operation at depth 1 (completion plus flush), p99 completion in the label. */
export function latencyChart(report: BenchReport): ChartSpec {
  const perOp = (m: MedianFigures): number => m.clatMeanUs + m.flushLatMeanUs;
  return {
    title: "mirra bench: latency at I/O depth 1 (lower is better)",
    subtitle: subtitle(report),
    axisLabel: "µs per operation (mean completion + flush)",
    noteLabel: "p99 completion latency, µs",
    configs: configs(report),
    notRun: report.notRun.map((n) => n.name),
    panels: report.summary
      .filter((s) => s.latencyBound)
      .map((s) => ({
        title: s.title,
        bars: Object.entries(s.medians).map(([config, m]) => ({
          config,
          value: perOp(m),
          // The spread of completion latency, shifted by the (median) flush time.
          range: {
            min: m.spread.clatMeanUs.min + m.flushLatMeanUs,
            max: m.spread.clatMeanUs.max + m.flushLatMeanUs,
          },
          note: `p99 ${compact(m.clatP99Us)}`,
        })),
      })),
  };
}

/** The rasteriser could not be loaded or failed; the report goes out without charts. */
export class ChartError extends MirraError {
  override name = "ChartError";
  constructor(message: string, options?: ErrorOptions) {
    super("MIRRA_E_CONFIG", message, options);
  }
}

/** SVG to PNG with resvg, loaded lazily so that the rest of `mirra` never depends on it. */
export async function rasterise(svg: string): Promise<Buffer> {
  let resvg: typeof import("@resvg/resvg-js");
  try {
    resvg = await import("@resvg/resvg-js");
  } catch (err) {
    throw new ChartError(
      "cannot load @resvg/resvg-js (its platform package @resvg/resvg-js-<os>-<arch> comes " +
        "from npm as an optional dependency; run npm install)",
      { cause: err },
    );
  }
  const image = new resvg.Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
    fitTo: { mode: "original" },
    background: "#ffffff",
  });
  return image.render().asPng();
}

/** Writes iops.png and latency.png (and their SVG sources) into `dir`. */
export async function writeCharts(report: BenchReport, dir: string): Promise<void> {
  const charts = [
    [chartFiles.iops, iopsChart(report)],
    [chartFiles.latency, latencyChart(report)],
  ] as const;
  for (const [file, spec] of charts) {
    const svg = renderChartSvg(spec);
    await writeFile(join(dir, file.replace(/\.png$/, ".svg")), svg);
    await writeFile(join(dir, file), await rasterise(svg));
  }
}
