/**
 * Counters and gauges read at collection time from the parts that own them, exposed in
 * Prometheus text format with AnyCable-Go's names (prefix `anycable_go_`), so existing
 * dashboards keep working.
 */

export type MetricType = "counter" | "gauge";

interface Metric {
  name: string;
  type: MetricType;
  help: string;
  read: () => number;
}

export const METRICS_PREFIX = "anycable_go_";

/** One metric's value for an interval: counters as the change since the previous rotation. */
export interface MetricSample {
  name: string;
  type: MetricType;
  value: number;
}

export class Metrics {
  readonly #metrics: Metric[] = [];
  readonly #labels: string;
  #last = new Map<string, number>();

  /** `tags`: `key:value` (or `key=value`) pairs added as labels to every metric. */
  constructor(tags: string[] = []) {
    const pairs = tags.map((t) => t.split(/[:=]/, 2)).filter((p) => p.length === 2 && p[0]);
    this.#labels = pairs.length
      ? `{${pairs.map(([k, v]) => `${k.replace(/[^a-zA-Z0-9_]/g, "_")}="${escape(v)}"`).join(",")}}`
      : "";
  }

  counter(name: string, help: string, read: () => number): void {
    this.#metrics.push({ name, type: "counter", help, read });
  }

  gauge(name: string, help: string, read: () => number): void {
    this.#metrics.push({ name, type: "gauge", help, read });
  }

  /** The Prometheus text exposition. */
  prometheus(): string {
    let out = "";
    for (const m of this.#metrics) {
      const full = METRICS_PREFIX + m.name;
      out += `# HELP ${full} ${m.help}\n# TYPE ${full} ${m.type}\n${full}${this.#labels} ${
        format(m.read())
      }\n`;
    }
    return out;
  }

  /** Current values; counters as the change since the previous call (for the log line). */
  intervalSnapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.rotate()) out[s.name] = s.value;
    return out;
  }

  /** Every metric for the interval that ends now; counters as the change over it. */
  rotate(): MetricSample[] {
    const out: MetricSample[] = [];
    const next = new Map<string, number>();
    for (const m of this.#metrics) {
      const v = m.read();
      if (m.type === "counter") {
        next.set(m.name, v);
        out.push({ name: m.name, type: m.type, value: v - (this.#last.get(m.name) ?? 0) });
      } else {
        out.push({ name: m.name, type: m.type, value: v });
      }
    }
    this.#last = next;
    return out;
  }
}

function escape(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function format(v: number): string {
  return Number.isFinite(v) ? String(v) : "0";
}
