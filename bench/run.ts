/**
 * Cableway benchmark: every figure is measured against a raw Deno WebSocket fan-out server in
 * the same run, on fresh processes, alternating A/B, and reported as a ratio Cableway / raw.
 *
 *   deno task bench                      quick tier (1k and 5k clients, under 5 minutes)
 *   deno task bench --full               full tier (up to 10k clients, 3 repetitions)
 *   deno task bench --smoke              smoke tier (CI: every scenario at 100-200 clients)
 *   deno task bench --scenario=latency,memory --only=raw
 *   deno task bench --readme             also rewrite the results table in bench/README.md
 *
 * Scenarios: latency, throughput, memory, storm, rpcstorm, streams, cluster, broker, slow.
 */

import { parseArgs } from "node:util";
import { buildClient } from "./client.ts";
import { BENCH_DIR, cablewayAvailable, type Impl, startServer } from "./servers.ts";
import { SCENARIOS } from "./scenarios.ts";
import {
  CLIENT_CPU,
  type Context,
  DISTURBED_CORES,
  type Measurement,
  SERVER_CPU,
} from "./measure.ts";
import { TIERS } from "./tiers.ts";
import { buildRows, buildTargets } from "./report.ts";
import { markdown, svgChart, terminalTable, updateReadme } from "./render.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    scenario: { type: "string" },
    only: { type: "string" },
    reps: { type: "string" },
    readme: { type: "boolean", default: false },
    rerender: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(
    "usage: deno task bench [--quick|--full|--smoke] [--scenario=a,b] [--only=raw|cableway] [--reps=N]" +
      " [--readme] [--rerender]\nscenarios: " + Object.keys(SCENARIOS).join(", "),
  );
  Deno.exit(0);
}

const tier = { ...TIERS[values.full ? "full" : values.smoke ? "smoke" : "quick"] };
if (values.reps) {
  tier.reps = Math.max(1, Number(values.reps));
  tier.throughput = { ...tier.throughput, reps: undefined };
  tier.memory = { ...tier.memory, reps: undefined };
}
const scenarios = values.scenario ? values.scenario.split(",") : Object.keys(SCENARIOS);
for (const s of scenarios) {
  if (!SCENARIOS[s]) {
    console.error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(", ")}`);
    Deno.exit(2);
  }
}
if (values.only && values.only !== "raw" && values.only !== "cableway") {
  console.error("--only takes raw or cableway");
  Deno.exit(2);
}

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

interface Saved {
  startedAt: string;
  seconds: number;
  machine: string;
  scenarios: string[];
  impls: Impl[];
  measurements: Measurement[];
}

async function measureAll(): Promise<Saved> {
  const cpus = navigator.hardwareConcurrency;
  if (cpus < 2) console.warn("warning: fewer than 2 cores; server and client will share one");
  if (!(await sh("taskset", ["-V"]))) {
    console.error("taskset (util-linux) is required to pin the server to its core");
    Deno.exit(1);
  }

  const cableway = cablewayAvailable();
  let impls: Impl[] = ["raw", "cableway"];
  if (values.only) impls = [values.only as Impl];
  if (!cableway) {
    if (values.only === "cableway") {
      console.error("main.ts not found: Cableway cannot be benchmarked yet");
      Deno.exit(1);
    }
    console.warn("main.ts not found: measuring the raw server only (no ratios)");
    impls = impls.filter((i) => i !== "cableway");
  }

  await buildClient();
  const startedAt = new Date();
  const kernel = await sh("uname", ["-r"]);
  const machine = `${cpus} cores, Linux ${kernel}, Deno ${Deno.version.deno}, ` +
    `server on core ${SERVER_CPU}, client on core ${CLIENT_CPU}`;
  console.log(`Cableway bench, ${tier.name} tier, ${machine}`);

  // warm-up: the first start of a server pays for module loading and caching, not measured
  for (const impl of impls) {
    const s = await startServer({ impl, cpu: SERVER_CPU, logName: `warmup-${impl}` });
    await s.stop();
  }

  const measurements: Measurement[] = [];
  const ctx: Context = {
    tier,
    impls,
    cableway: cableway && impls.includes("cableway"),
    log: (line) => console.log(line),
    record: (m) => measurements.push(m),
  };
  for (const s of scenarios) {
    console.log(`${s}:`);
    const t0 = performance.now();
    try {
      await SCENARIOS[s](ctx);
    } catch (e) {
      console.error(`  ${s} failed: ${e instanceof Error ? e.message : e}`);
    }
    console.log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  return {
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    machine,
    scenarios,
    impls,
    measurements,
  };
}

const resultsDir = `${BENCH_DIR}results`;
const partial = Boolean(values.scenario || values.only);
const stem = `${resultsDir}/${tier.name}${partial ? "-partial" : ""}`;
// --rerender: rebuild the tables, chart and README section from the saved JSON, without measuring
const saved: Saved = values.rerender
  ? JSON.parse(Deno.readTextFileSync(`${stem}.json`))
  : await measureAll();
const { measurements, machine } = saved;
const startedAt = new Date(saved.startedAt);
const rows = buildRows(measurements);
const targets = buildTargets(measurements, rows, tier, saved.scenarios);
const elapsed = saved.seconds;
console.log(`\n${terminalTable(rows, targets)}\n\ntotal ${elapsed.toFixed(0)} s`);
const noisy = measurements.filter((m) => m.background >= DISTURBED_CORES).length;
if (noisy) {
  console.warn(
    `warning: ${noisy} of ${measurements.length} runs were disturbed by other processes ` +
      "even after retries; medians leave them out where an undisturbed repetition exists",
  );
}

Deno.mkdirSync(resultsDir, { recursive: true });
const date = startedAt.toISOString().slice(0, 16).replace("T", " ") + " UTC";
Deno.writeTextFileSync(
  `${stem}.json`,
  JSON.stringify(
    {
      tier: tier.name,
      startedAt: startedAt.toISOString(),
      seconds: elapsed,
      machine,
      params: tier,
      scenarios: saved.scenarios,
      impls: saved.impls,
      rows,
      targets,
      measurements,
    },
    null,
    2,
  ) + "\n",
);
if (measurements.some((m) => m.scenario === "latency")) {
  Deno.writeTextFileSync(
    `${stem}.svg`,
    svgChart(measurements, `Broadcast latency vs subscribers (${tier.name} tier, ${date})`),
  );
}
const md = markdown(rows, targets, {
  tier: tier.name,
  date,
  machine,
  runs: measurements.length,
  disturbed: noisy,
});
Deno.writeTextFileSync(`${stem}.md`, md + "\n");
console.log(
  `wrote ${stem}.json, .md${measurements.some((m) => m.scenario === "latency") ? ", .svg" : ""}`,
);
if (values.readme) {
  const ok = !partial && updateReadme(`${BENCH_DIR}README.md`, tier.name, md);
  console.log(
    ok ? "updated bench/README.md" : "bench/README.md not updated (partial run, or no markers)",
  );
}

// The smoke tier judges only that the benchmark works: every scenario ran and nothing was lost,
// duplicated or reordered. Performance targets are for the real tiers.
if (tier.name === "smoke") {
  const correctness = targets.find((t) => t.name.startsWith("correctness"));
  const missing = saved.scenarios.filter((s) => !measurements.some((m) => m.scenario === s));
  if (missing.length) console.error(`smoke: no measurement for ${missing.join(", ")}`);
  Deno.exit(correctness?.pass === true && missing.length === 0 ? 0 : 1);
}
