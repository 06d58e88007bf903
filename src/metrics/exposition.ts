//! The Prometheus text format (0.0.4) as drbd-reactor writes it: per family `# TYPE` first,
//! then `# HELP`, then the samples; families without samples left out. Pure helpers shared
//! by drbd_reactor.ts (DRBD's names) and mirra_metrics.ts (mirra's own).

import type { HistogramSnapshot } from "./io_counters.js";

export type MetricType = "gauge" | "counter" | "histogram" | "untyped";
export type Labels = readonly (readonly [string, string])[];

export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
}

/** Escapes a label value per the text format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text per the text format: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const body = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
  return labels.length > 0 ? `{${body}}` : "";
}

export function sampleLine(name: string, labels: Labels, value: number): string {
  if (!Number.isFinite(value)) throw new Error(`metric ${name}: value ${value} is not finite`);
  return `${name}${labelText(labels)} ${value}`;
}

/**
 * One sample per possible value, 1 on `current` and 0 on the others, in a label named like
 * the metric (drbd-reactor's enum style). A value outside the list is a programmer error and
 * throws: a one-hot group without its 1 would silently break alerts.
 */
export function oneHot(
  metric: string,
  values: readonly string[],
  current: string,
  labels: Labels,
): string[] {
  if (!values.includes(current))
    throw new Error(`${metric}: "${current}" is not one of ${values.join(", ")}`);
  return values.map((v) => sampleLine(metric, [...labels, [metric, v]], v === current ? 1 : 0));
}

/** The `_bucket`, `_sum` and `_count` lines of one histogram series. */
export function histogramLines(name: string, labels: Labels, h: HistogramSnapshot): string[] {
  if (h.cumulative.length !== h.le.length + 1)
    throw new Error(
      `metric ${name}: ${h.cumulative.length} bucket counts for ${h.le.length} bounds`,
    );
  const lines = h.le.map((le, i) =>
    sampleLine(`${name}_bucket`, [...labels, ["le", String(le)]], h.cumulative[i]!),
  );
  lines.push(sampleLine(`${name}_bucket`, [...labels, ["le", "+Inf"]], h.count));
  lines.push(sampleLine(`${name}_sum`, labels, h.sumSeconds));
  lines.push(sampleLine(`${name}_count`, labels, h.count));
  return lines;
}

export const bit = (b: boolean): number => (b ? 1 : 0);

/** Collects samples per family, then writes them in the families' order. */
export class Exposition<K extends string> {
  private readonly samples = new Map<K, string[]>();

  constructor(private readonly families: Readonly<Record<K, Family>>) {
    for (const k of Object.keys(families) as K[]) this.samples.set(k, []);
  }

  add(key: K, lines: readonly string[]): void {
    this.samples.get(key)!.push(...lines);
  }

  /** A one-sample family line: `add(key, [sampleLine(family name, labels, value)])`. */
  value(key: K, labels: Labels, value: number): void {
    this.add(key, [sampleLine(this.families[key].name, labels, value)]);
  }

  name(key: K): string {
    return this.families[key].name;
  }

  /** The text; empty when no family has samples, else ending with a line feed. */
  text(): string {
    const out: string[] = [];
    for (const [key, lines] of this.samples) {
      if (lines.length === 0) continue;
      const f = this.families[key];
      out.push(`# TYPE ${f.name} ${f.type}`, `# HELP ${f.name} ${escapeHelp(f.help)}`, ...lines);
    }
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}
