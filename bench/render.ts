/** Rendering results: the terminal table, Markdown, the SVG chart, the README section. */

import type { Measurement } from "./measure.ts";
import { k, med, type Row, select, sizes, type Target } from "./report.ts";

function fmt(v: number | undefined, unit: string): string {
  if (v === undefined) return "—";
  if (unit === "/s") return v >= 10000 ? `${(v / 1000).toFixed(0)}k` : v.toFixed(0);
  if (unit === "") return v.toFixed(0);
  if (unit === "×") return `${v.toFixed(2)}×`;
  if (unit === "%") return `${v.toFixed(0)} %`;
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ${unit}`;
}

const verdict = (p: boolean | null) => p === null ? "n/a" : p ? "PASS" : "FAIL";

export function terminalTable(rows: Row[], targets: Target[]): string {
  const lines: string[] = [];
  const w = Math.max(...rows.map((r) => r.metric.length), 20);
  lines.push(
    `${"metric".padEnd(w)}  ${"raw/base".padStart(10)}  ${"cableway".padStart(10)}  ${
      "ratio".padEnd(6)
    }  samples`,
  );
  for (const r of rows) {
    lines.push(
      `${r.metric.padEnd(w)}  ${fmt(r.raw, r.unit).padStart(10)}  ${
        fmt(r.cableway, r.unit).padStart(10)
      }  ${(r.ratio === undefined ? "—" : r.ratio.toFixed(2) + "×").padEnd(6)}  ${r.samples ?? ""}${
        r.invalid ? "  (invalid run)" : ""
      }`,
    );
  }
  lines.push("");
  const tw = Math.max(...targets.map((t) => t.name.length));
  for (const t of targets) {
    const v = t.value === undefined ? "—" : t.value.toFixed(2);
    lines.push(
      `${verdict(t.pass).padEnd(4)}  ${t.name.padEnd(tw)}  ${v.padStart(7)}  ${t.limit}${
        t.note ? `  (${t.note})` : ""
      }`,
    );
  }
  return lines.join("\n");
}

export function markdown(
  rows: Row[],
  targets: Target[],
  meta: { tier: string; date: string; machine: string; runs: number; disturbed: number },
): string {
  const out: string[] = [];
  out.push(
    `Tier: **${meta.tier}**, ${meta.date}, ${meta.machine}; ${meta.runs} runs` +
      (meta.disturbed
        ? `, ${meta.disturbed} disturbed by other processes (left out of the medians where an ` +
          "undisturbed repetition exists)."
        : "."),
    "",
  );
  out.push(
    "| Metric | Raw (base) | Cableway | Cableway / raw | Samples |",
    "|---|---:|---:|---:|---|",
  );
  for (const r of rows) {
    out.push(
      `| ${r.metric}${r.invalid ? " (invalid run)" : ""} | ${fmt(r.raw, r.unit)} | ${
        fmt(r.cableway, r.unit)
      } | ${r.ratio === undefined ? "—" : r.ratio.toFixed(2) + "×"} | ${r.samples ?? "—"} |`,
    );
  }
  out.push("", "| Target | Value | Limit | Result |", "|---|---:|---|---|");
  for (const t of targets) {
    out.push(
      `| ${t.name} | ${t.value === undefined ? "—" : t.value.toFixed(2)} | ${t.limit} | ${
        verdict(t.pass)
      }${t.note ? ` (${t.note})` : ""} |`,
    );
  }
  return out.join("\n");
}

/** Latency (time until the last client got a broadcast) against subscribers, raw vs Cableway. */
export function svgChart(ms: Measurement[], title: string): string {
  const ns = sizes(ms, "latency");
  const series: { label: string; color: string; dash: string; pts: [number, number][] }[] = [];
  for (const [impl, color] of [["raw", "#888888"], ["cableway", "#1f6feb"]] as const) {
    for (const [q, dash] of [["p50", ""], ["p99", "6 4"]] as const) {
      const pts: [number, number][] = [];
      for (const n of ns) {
        const v = med(
          select(ms, "latency", impl, n),
          (m) => (q === "p50" ? m.result.last_p50_us : m.result.last_p99_us) / 1000,
        );
        if (v !== undefined) pts.push([n, v]);
      }
      if (pts.length) series.push({ label: `${impl} ${q}`, color, dash, pts });
    }
  }
  const W = 640, H = 400, L = 70, R = 150, T = 40, B = 50;
  const pw = W - L - R, ph = H - T - B;
  const xmax = Math.max(...ns, 1);
  const ymaxRaw = Math.max(1, ...series.flatMap((s) => s.pts.map((p) => p[1])));
  const step = niceStep(ymaxRaw / 5);
  const ymax = Math.ceil(ymaxRaw / step) * step;
  const x = (n: number) => L + (n / xmax) * pw;
  const y = (v: number) => T + ph - (v / ymax) * ph;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  );
  for (let v = 0; v <= ymax + 1e-9; v += step) {
    o.push(
      `<line x1="${L}" y1="${y(v)}" x2="${L + pw}" y2="${y(v)}" stroke="#e5e5e5"/>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toFixed(3)}</text>`,
    );
  }
  for (const n of ns) {
    o.push(
      `<line x1="${x(n)}" y1="${T + ph}" x2="${x(n)}" y2="${T + ph + 5}" stroke="black"/>`,
      `<text x="${x(n)}" y="${T + ph + 18}" text-anchor="middle">${k(n)}</text>`,
    );
  }
  o.push(
    `<line x1="${L}" y1="${T + ph}" x2="${L + pw}" y2="${T + ph}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${T + ph}" stroke="black"/>`,
    `<text x="${L + pw / 2}" y="${H - 10}" text-anchor="middle">subscribers on one stream</text>`,
    `<text x="16" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${
      T + ph / 2
    })">ms until the last client has the broadcast</text>`,
  );
  series.forEach((s, i) => {
    const d = s.pts.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join(" ");
    o.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${
        s.dash ? ` stroke-dasharray="${s.dash}"` : ""
      }/>`,
    );
    for (const p of s.pts) {
      o.push(
        `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`,
      );
    }
    const ly = T + 10 + i * 20;
    o.push(
      `<line x1="${L + pw + 15}" y1="${ly}" x2="${
        L + pw + 45
      }" y2="${ly}" stroke="${s.color}" stroke-width="2"${
        s.dash ? ` stroke-dasharray="${s.dash}"` : ""
      }/>`,
      `<text x="${L + pw + 52}" y="${ly + 4}">${esc(s.label)}</text>`,
    );
  });
  o.push("</svg>");
  return o.join("\n") + "\n";
}

function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Replaces the text between the `<!-- bench:<tier>:start/end -->` markers of bench/README.md. */
export function updateReadme(path: string, tier: string, table: string): boolean {
  const start = `<!-- bench:${tier}:start -->`, end = `<!-- bench:${tier}:end -->`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return false;
  }
  const a = text.indexOf(start), b = text.indexOf(end);
  if (a < 0 || b < a) return false;
  const body = `<!-- deno-fmt-ignore-start -->\n${table}\n<!-- deno-fmt-ignore-end -->`;
  Deno.writeTextFileSync(path, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
  return true;
}
