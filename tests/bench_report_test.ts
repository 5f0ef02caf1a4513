/**
 * The benchmark's judging logic on synthetic measurements (no processes): the Samples column,
 * the targets of the RPC storm, many streams, the cluster, the slow readers' whole run and the
 * load client's CPU share.
 */
import assert from "node:assert/strict";
import type { ClientResult } from "../bench/client.ts";
import type { Measurement } from "../bench/measure.ts";
import { buildRows, buildTargets, type Target } from "../bench/report.ts";
import { TIERS } from "../bench/tiers.ts";

function m(
  scenario: string,
  impl: "raw" | "cableway",
  n: number,
  result: Partial<ClientResult>,
  variant = "",
  rep = 0,
): Measurement {
  return {
    scenario,
    impl,
    variant,
    n,
    rep,
    result: {
      run_s: 1,
      connect_s: 1,
      client_cpu_run: 0.3,
      client_cpu_connect: 0.2,
      src_addrs: 16,
      ...result,
    } as ClientResult,
    issues: [],
    background: 0,
  };
}

function judge(ms: Measurement[], scenarios: string[]): Target[] {
  return buildTargets(ms, buildRows(ms), TIERS.quick, scenarios);
}

const byName = (ts: Target[], name: string) => {
  const t = ts.find((t) => t.name === name);
  assert.ok(t, `no target ${name}: ${ts.map((t) => t.name).join(" | ")}`);
  return t;
};

Deno.test("bench report: latency rows say how many samples back each percentile", () => {
  const lat = (impl: "raw" | "cableway", rep: number) =>
    m(
      "latency",
      impl,
      1000,
      {
        last_p50_us: 5000,
        last_p99_us: 9000,
        delivery_p50_us: 3000,
        delivery_p99_us: 8000,
        last_n: 200,
        delivery_n: 200_000,
      },
      "",
      rep,
    );
  const rows = buildRows([lat("raw", 0), lat("cableway", 0), lat("raw", 1), lat("cableway", 1)]);
  const p99 = rows.find((r) => r.metric === "broadcast to 1k: last client p99")!;
  assert.equal(p99.samples, "200 × 2 runs");
  const d = rows.find((r) => r.metric === "broadcast to 1k: per-delivery p99")!;
  assert.equal(d.samples, "200k × 2 runs");
});

Deno.test("bench report: RPC storm, many streams and cluster targets", () => {
  const ms = [
    m("rpcstorm", "raw", 1000, { connect_rate: 2000, connect_failures: 0 }, "http"),
    m("rpcstorm", "cableway", 1000, { connect_rate: 1800, connect_failures: 0 }, "http"),
    m("streams", "raw", 5000, { deliveries_per_s: 100_000, delivery_p99_us: 1000 }, "500 streams"),
    m(
      "streams",
      "cableway",
      5000,
      { deliveries_per_s: 97_000, delivery_p99_us: 1300 },
      "500 streams",
    ),
    m("streams", "raw", 10000, { deliveries_per_s: 90_000, delivery_p99_us: 2000 }, "1000 streams"),
    m(
      "streams",
      "cableway",
      10000,
      { deliveries_per_s: 80_000, delivery_p99_us: 2100 },
      "1000 streams",
    ),
    m("cluster", "cableway", 2000, { last_p50_us: 20_000, last_n: 200 }, "single"),
    m("cluster", "cableway", 2000, { last_p50_us: 22_000, last_n: 200 }, "cluster"),
  ];
  const ts = judge(ms, ["rpcstorm", "streams", "cluster"]);
  assert.equal(byName(ts, "connect+subscribe rate with HTTP RPC (1k)").pass, false); // 0.9×
  assert.equal(byName(ts, "5k clients over 500 streams: deliveries/s").pass, true); // 0.97×
  assert.equal(byName(ts, "5k clients over 500 streams: per-delivery p99").pass, false); // 1.3×
  assert.equal(byName(ts, "10k clients over 1000 streams: deliveries/s").pass, false); // 0.89×
  assert.equal(byName(ts, "10k clients over 1000 streams: per-delivery p99").pass, true);
  const cl = byName(ts, "2 nodes over Redis vs one node, last client p50");
  assert.equal(cl.pass, true);
  assert.ok(Math.abs(cl.value! - 1.1) < 1e-9);
});

Deno.test("bench report: slow readers' whole run is judged against 1.1× or raw's own ratio", () => {
  const slow = (impl: "raw" | "cableway", variant: string, p50: number) =>
    m("slow", impl, 1000, {
      last_p50_us: p50,
      tail_n: 200,
      tail_p50_us: 10_000,
      slow: 100,
      last_n: 581,
    }, variant);
  const run = (rawSlow: number, cwSlow: number) =>
    byName(
      judge([
        slow("raw", "base", 10_000),
        slow("raw", "slow", rawSlow),
        slow("cableway", "base", 10_000),
        slow("cableway", "slow", cwSlow),
      ], ["slow"]),
      "slow readers: others' p50 vs without them (whole run)",
    );
  assert.equal(run(10_000, 12_000).pass, false); // 1.2× while raw holds 1.0×
  assert.equal(run(13_000, 12_000).pass, true); // the kernel made raw 1.3× too
  assert.equal(run(10_000, 10_500).pass, true);
});

Deno.test("bench report: the load client's CPU share is a target", () => {
  const ok = [
    m("throughput", "raw", 1000, { client_cpu_run: 0.5, deliveries_per_s: 1 }),
    m("storm", "cableway", 1000, { client_cpu_connect: 0.4, connect_rate: 1, run_s: 0 }),
  ];
  assert.equal(
    byName(
      judge(ok, ["throughput", "storm"]),
      "load client not the bottleneck (peak CPU share of its core)",
    ).pass,
    true,
  );
  const busy = [
    ...ok,
    m("storm", "raw", 1000, { client_cpu_connect: 0.95, connect_rate: 1, run_s: 0 }),
  ];
  const t = byName(
    judge(busy, ["throughput", "storm"]),
    "load client not the bottleneck (peak CPU share of its core)",
  );
  assert.equal(t.pass, false);
  assert.match(t.note!, /storm n=1000 raw/);
});

Deno.test("bench report: the storm's raw runs with a welcome frame stay out of the raw figure", () => {
  const ms = [
    m("storm", "raw", 1000, { connect_rate: 4000, connect_failures: 0 }),
    m("storm", "raw", 1000, { connect_rate: 3600, connect_failures: 0 }, "welcome"),
    m("storm", "cableway", 1000, { connect_rate: 3240, connect_failures: 0 }),
  ];
  const rows = buildRows(ms);
  const plain = rows.find((r) => r.metric === "connect+subscribe rate, 1k");
  assert.equal(plain?.raw, 4000);
  assert.equal(plain?.ratio, 0.81);
  const t = byName(judge(ms, ["storm"]), "connect+subscribe rate (1k)");
  assert.equal(t.pass, false);
  assert.equal(
    t.note,
    "raw with a welcome frame: 0.90× raw; Cableway: 0.90× raw with a welcome frame",
  );
});
