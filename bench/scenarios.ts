/**
 * The benchmark scenarios. Each measurement runs on a fresh server process; raw and Cableway
 * alternate (the order flips every repetition and every size) so drift hits both alike.
 */

import { OPTIONS } from "../src/config/options.ts";
import { type ClientOptions, type ClientResult, runClient } from "./client.ts";
import {
  hasRedisServer,
  type Impl,
  type Memory,
  prepareGrpcBackend,
  type RunningServer,
  startGrpcBackend,
  startRedisServer,
  startRpcBackend,
  startServer,
} from "./servers.ts";
import {
  base,
  CLIENT_CPU,
  type Context,
  measure,
  type Measurement,
  memoryOf,
  order,
  PINGS_VARIANT,
  SERVER_CPU,
  type Sidecar,
  sleep,
} from "./measure.ts";

const us = (v: number) => v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`;

async function latency(ctx: Context): Promise<void> {
  const t = ctx.tier.latency;
  for (const [i, n] of t.sizes.entries()) {
    for (let rep = 0; rep < ctx.tier.reps; rep++) {
      for (const impl of order(ctx.impls, i + rep)) {
        await measure(ctx, {
          scenario: "latency",
          impl,
          n,
          rep,
          broadcasts: true,
          run: async (s) => ({
            result: await runClient({
              ...base(s, n),
              broadcasts: t.broadcasts + t.warmup,
              warmup: t.warmup,
              window: 1,
              gapUs: t.gapUs,
            }),
          }),
          describe: (m) =>
            `last client p50 ${us(m.result.last_p50_us)} p99 ${us(m.result.last_p99_us)}`,
        });
      }
    }
  }
}

function throughputOpts(
  s: RunningServer,
  n: number,
  t: { durationMs: number; warmupMs: number; window: number; pipeline: number },
): ClientOptions {
  return {
    ...base(s, n),
    broadcasts: 1_000_000,
    durationMs: t.durationMs,
    warmupMs: t.warmupMs,
    window: t.window,
    pipeline: t.pipeline,
    gapUs: 0,
  };
}

const rate = (m: Measurement) =>
  `${Math.round(m.result.deliveries_per_s)} deliveries/s (server CPU ${
    (m.result.server_cpu_run * 100).toFixed(0)
  }%, client CPU ${(m.result.client_cpu_run * 100).toFixed(0)}%)`;

/** A scenario's repetitions: the tier's, or more where the scenario asks for more. */
const repsOf = (ctx: Context, t: { reps?: number }) => Math.max(ctx.tier.reps, t.reps ?? 0);

async function throughput(ctx: Context): Promise<void> {
  const t = ctx.tier.throughput;
  const reps = repsOf(ctx, t);
  for (const [i, n] of t.sizes.entries()) {
    for (let rep = 0; rep < reps; rep++) {
      for (const impl of order(ctx.impls, i + rep)) {
        await measure(ctx, {
          scenario: "throughput",
          impl,
          n,
          rep,
          broadcasts: true,
          run: async (s) => ({ result: await runClient(throughputOpts(s, n, t)) }),
          describe: rate,
        });
      }
    }
  }
}

async function memory(ctx: Context): Promise<void> {
  const t = ctx.tier.memory;
  const reps = repsOf(ctx, t);
  for (const [i, n] of t.sizes.entries()) {
    for (let rep = 0; rep < reps; rep++) {
      for (const impl of order(ctx.impls, i + rep)) {
        await measure(ctx, {
          scenario: "memory",
          impl,
          n,
          rep,
          broadcasts: false,
          cpuInsensitive: true,
          run: async (s) => {
            // the fixed footprint: the fresh server before any client
            const startup = memoryOf(s.pid);
            let before: Memory | undefined, after: Memory | undefined;
            let result: ClientResult | undefined;
            // a first batch warms up the server's code paths, so they are not billed per connection
            await runClient({ ...base(s, t.warmup), prefix: "bench_w" }, async () => {
              await sleep(t.settleMs);
              before = memoryOf(s.pid);
              result = await runClient(base(s, n), async () => {
                await sleep(t.settleMs);
                after = memoryOf(s.pid);
              });
            });
            if (!result) throw new Error("memory: client gave no result");
            if (!before || !after) return { result };
            return {
              result,
              memory: { before, after, perConnKb: (after.rssKb - before.rssKb) / n, startup },
            };
          },
          describe: (m) =>
            m.memory
              ? `${m.memory.perConnKb!.toFixed(2)} KB/conn (RSS at startup ` +
                `${m.memory.startup?.rssKb ?? "?"} KB, after the warm-up batch ` +
                `${m.memory.before.rssKb} KB, with N more ${m.memory.after.rssKb} KB)`
              : "no memory reading",
        });
      }
    }
  }
}

interface Run {
  impl: Impl;
  variant: string;
  flags?: string[];
}

/**
 * The runs of one step: raw and Cableway in `order`, each with `variant`, and, when raw is
 * measured, raw once more with `floor` (a variant whose flags make it do what the protocol asks
 * of every server), first on odd steps and last on even ones.
 */
function withFloorRun(
  ctx: Context,
  step: number,
  variant: string,
  floor: { variant: string; flags: string[] },
): Run[] {
  const runs: Run[] = order(ctx.impls, step).map((impl) => ({ impl, variant }));
  if (!ctx.impls.includes("raw")) return runs;
  const run = { impl: "raw" as Impl, ...floor };
  if (step % 2 === 1) runs.unshift(run);
  else runs.push(run);
  return runs;
}

/**
 * Connect + subscribe storm. Next to raw and Cableway, the raw server with `--welcome` (which
 * sends a welcome frame when a socket opens, as every Action Cable server must) shows what that
 * one frame costs: the floor a protocol-conformant server cannot go below.
 */
async function storm(ctx: Context): Promise<void> {
  const t = ctx.tier.storm;
  for (const [i, n] of t.sizes.entries()) {
    for (let rep = 0; rep < repsOf(ctx, t); rep++) {
      const runs = withFloorRun(ctx, i + rep, "", { variant: "welcome", flags: ["--welcome"] });
      for (const run of runs) {
        await measure(ctx, {
          scenario: "storm",
          ...run,
          n,
          rep,
          broadcasts: false,
          storm: true,
          run: async (s) => ({
            result: await runClient({ ...base(s, n), concurrency: t.concurrency }),
          }),
          describe: stormLine,
        });
      }
    }
  }
}

const stormLine = (m: Measurement) =>
  `${Math.round(m.result.connect_rate)} connects+subscribes/s, ` +
  `${m.result.connect_failures} failures (server CPU ${
    (m.result.server_cpu_connect * 100).toFixed(0)
  }%, client CPU ${(m.result.client_cpu_connect * 100).toFixed(0)}%` +
  (m.result.aux_cpu_connect > 0
    ? `, RPC backend ${(m.result.aux_cpu_connect * 100).toFixed(0)}%)`
    : ")");

/** The calls the fake RPC backend answered, by method. */
async function backendCalls(port: number): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`, { headers: { connection: "close" } });
  return await res.json();
}

/** The channel the RPC storm subscribes to (the fake backend streams from its stream_name). */
const RPC_CHANNEL = "BenchChannel";

/**
 * The fake RPC backend in its own process, on the client's core (the server's core stays the
 * server's); raw gets `--rpc=<url>`, Cableway `--rpc_host=<url>` (and no `--public`).
 */
async function rpcBackend(impl: Impl, logName: string): Promise<Sidecar> {
  const b = await startRpcBackend(CLIENT_CPU, `${logName}-backend`);
  const url = `http://127.0.0.1:${b.port}/_anycable`;
  const concurrency = OPTIONS.rpc_concurrency.default;
  return {
    flags: impl === "raw"
      ? [`--rpc=${url}`, `--rpc_concurrency=${concurrency}`]
      : [`--rpc_host=${url}`],
    pids: [b.pid],
    ports: [b.port],
    stop: b.stop,
  };
}

/**
 * The fake gRPC backend (see startGrpcBackend; its own process on the client's core) for
 * Cableway's `--rpc_impl=grpc`; its /stats side port is `ports[0]`, as for
 * the HTTP one.
 */
async function grpcBackend(_impl: Impl, logName: string): Promise<Sidecar> {
  const b = await startGrpcBackend(CLIENT_CPU, `${logName}-backend`);
  return {
    flags: ["--rpc_impl=grpc", `--rpc_host=127.0.0.1:${b.grpcPort}`],
    pids: [b.pid],
    ports: [b.port],
    stop: b.stop,
  };
}

/** One run of the RPC storm: raw or Cableway over HTTP RPC, or Cableway over gRPC. */
interface RpcStormRun {
  impl: Impl;
  variant: "http" | "grpc";
}

/**
 * Connect + subscribe storm with RPC: every connection costs a `connect` and a `command` call
 * to a fake backend. Variant "http": Cableway and the raw baseline (which makes the same calls
 * with the same concurrency cap) against the same HTTP backend. Variant "grpc": Cableway only
 * (the raw baseline has no gRPC client) with `--rpc_impl=grpc` against a fake gRPC backend with
 * the same answers (bench/grpc_backend_h2.ts unless CABLEWAY_BENCH_GRPC_BACKEND picks a node
 * one); its figure is compared with Cableway's own over HTTP. A few broadcasts
 * afterwards check that the streams the backend named were subscribed.
 */
async function rpcstorm(ctx: Context): Promise<void> {
  const t = ctx.tier.rpcstorm;
  const runs: RpcStormRun[] = ctx.impls.map((impl) => ({ impl, variant: "http" }));
  if (ctx.cableway) {
    const unavailable = await prepareGrpcBackend();
    if (unavailable) ctx.log(`  rpcstorm grpc: skipped (${unavailable})`);
    else runs.push({ impl: "cableway", variant: "grpc" });
  }
  for (const [i, n] of t.sizes.entries()) {
    for (let rep = 0; rep < repsOf(ctx, t); rep++) {
      // raw, Cableway over HTTP, Cableway over gRPC; the order flips every step
      for (const { impl, variant } of (i + rep) % 2 === 0 ? runs : [...runs].reverse()) {
        await measure(ctx, {
          scenario: "rpcstorm",
          impl,
          variant,
          n,
          rep,
          broadcasts: true,
          storm: true,
          public: false,
          sidecar: variant === "grpc" ? grpcBackend : rpcBackend,
          run: async (s, side) => {
            const result = await runClient({
              ...base(s, n),
              concurrency: t.concurrency,
              channel: RPC_CHANNEL,
              auxPids: side?.pids,
              broadcasts: 3,
              window: 1,
              gapUs: 1000,
            });
            // the server must have made the calls the traffic implies
            const calls = await backendCalls(side!.ports[0]);
            if (calls.connect < n || calls.command < n) {
              result.error ||= `the RPC backend answered ${calls.connect} connect and ` +
                `${calls.command} command calls for ${n} connections`;
            }
            return { result };
          },
          describe: stormLine,
        });
      }
    }
  }
}

/**
 * Many streams. Next to raw and Cableway, the raw server with `--pings` (which pings every socket
 * every 3 s, spread by open time, as every Action Cable server must) shows what those frames cost
 * a broadcast load: the floor a protocol-conformant server cannot go below.
 */
async function streams(ctx: Context): Promise<void> {
  const t = ctx.tier.streams;
  for (const [i, v] of t.variants.entries()) {
    for (let rep = 0; rep < repsOf(ctx, t); rep++) {
      const variant = `${v.streams} streams`;
      const runs = withFloorRun(ctx, i + rep, variant, {
        variant: `${variant}${PINGS_VARIANT}`,
        flags: ["--pings"],
      });
      for (const run of runs) {
        await measure(ctx, {
          scenario: "streams",
          ...run,
          n: v.n,
          rep,
          broadcasts: true,
          run: async (s) => ({
            result: await runClient({ ...throughputOpts(s, v.n, t), streams: v.streams }),
          }),
          describe: (m) =>
            `${rate(m)}, delivery p50 ${us(m.result.delivery_p50_us)} p99 ` +
            `${us(m.result.delivery_p99_us)} (${m.result.deliveries} deliveries)`,
        });
      }
    }
  }
}

/**
 * Redis and a second Cableway node (on the server's core, like the first), both nodes with
 * `--pubsub=redis`: the measured node takes the broadcasts, the clients are split over both.
 */
async function clusterSidecar(_impl: Impl, logName: string): Promise<Sidecar> {
  const redis = await startRedisServer(CLIENT_CPU, `${logName}-redis`);
  const flags = ["--pubsub=redis", `--redis_url=redis://127.0.0.1:${redis.port}`];
  let second: RunningServer;
  try {
    second = await startServer({
      impl: "cableway",
      cpu: SERVER_CPU,
      flags,
      logName: `${logName}-node2`,
    });
  } catch (e) {
    await redis.stop();
    throw e;
  }
  return {
    flags,
    pids: [second.pid, redis.pid],
    ports: [second.port],
    stop: async () => {
      await second.stop();
      await redis.stop();
    },
  };
}

/**
 * Cableway only: N clients on one stream, broadcasts one at a time, on one node ("single") and
 * on two nodes over Redis with the clients split and the broadcasts published to the first node
 * ("cluster"): what the Redis hop costs.
 */
async function cluster(ctx: Context): Promise<void> {
  if (!ctx.cableway) {
    ctx.log("  cluster: skipped (needs Cableway)");
    return;
  }
  if (!hasRedisServer()) {
    ctx.log("  cluster: skipped (redis-server not installed)");
    return;
  }
  const t = ctx.tier.cluster;
  const warmup = ctx.tier.latency.warmup;
  for (let rep = 0; rep < ctx.tier.reps; rep++) {
    for (const variant of rep % 2 === 0 ? ["single", "cluster"] : ["cluster", "single"]) {
      await measure(ctx, {
        scenario: "cluster",
        impl: "cableway",
        variant,
        n: t.n,
        rep,
        broadcasts: true,
        sidecar: variant === "cluster" ? clusterSidecar : undefined,
        run: async (s, side) => ({
          result: await runClient({
            ...base(s, t.n),
            port2: side?.ports[0],
            auxPids: side?.pids,
            broadcasts: t.broadcasts + warmup,
            warmup,
            window: 1,
            gapUs: t.gapUs,
          }),
        }),
        describe: (m) =>
          `last client p50 ${us(m.result.last_p50_us)} p99 ${us(m.result.last_p99_us)}, ` +
          `per-delivery p50 ${us(m.result.delivery_p50_us)}`,
      });
    }
  }
}

async function broker(ctx: Context): Promise<void> {
  if (!ctx.cableway) {
    ctx.log("  broker: skipped (needs Cableway)");
    return;
  }
  const t = ctx.tier.broker;
  const variants = [[], ["--broker=memory"]];
  for (let rep = 0; rep < ctx.tier.reps; rep++) {
    for (const flags of rep % 2 === 0 ? variants : [...variants].reverse()) {
      await measure(ctx, {
        scenario: "broker",
        impl: "cableway",
        variant: flags.length ? "broker=memory" : "broker=none",
        n: t.n,
        rep,
        flags,
        broadcasts: true,
        run: async (s) => ({ result: await runClient(throughputOpts(s, t.n, t)) }),
        describe: rate,
      });
    }
  }
  const m = await measure(ctx, {
    scenario: "history",
    impl: "cableway",
    variant: "broker=memory",
    n: 1,
    rep: 0,
    flags: ["--broker=memory"],
    broadcasts: true,
    run: async (s) => ({
      result: await runClient({
        ...base(s, 1),
        prefix: "bench_h",
        proto: "actioncable-v1-ext-json",
        history: t.history,
        historyMsgs: 100,
      }),
    }),
    describe: (m) =>
      `${m.result.history.reps} replays of 100 messages, p50 ${us(m.result.history.p50_us)} ` +
      `p99 ${us(m.result.history.p99_us)}`,
  });
  const h = m.result.history;
  if (h.reps < t.history) m.issues.push(`only ${h.reps}/${t.history} history replays completed`);
  if (h.bad > 0) m.issues.push(`${h.bad} replays with missing or out-of-order messages`);
}

/** Cableway's default `--ws_max_pending_size`: what a stalled socket may queue in the server. */
const MAX_PENDING = OPTIONS.ws_max_pending_size.default;

/**
 * The most the kernel queues on one socket whose reader stopped: tcp_wmem's maximum (Linux
 * grows a stalled socket's send buffer up to it, and until it is full every write completes, so
 * no server can tell that reader from a fast one).
 */
function kernelSendBufferMax(): number {
  try {
    const max = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_wmem").trim().split(/\s+/)[2]);
    if (max > 0) return max;
  } catch {
    // not Linux, or /proc is hidden
  }
  return 4 << 20;
}

/**
 * Broadcasts after which every stalled socket has taken the kernel's send buffer plus
 * MAX_PENDING (10 % margin): from there on a server that bounds its queues has cut the slow
 * readers off, and what the fast readers see is what the server controls.
 */
export function slowAbsorbBroadcasts(pad: number): number {
  const frame = pad + 150; // the padded data plus the identifier and the JSON around it
  return Math.ceil((kernelSendBufferMax() + MAX_PENDING) / frame * 1.1);
}

async function slow(ctx: Context): Promise<void> {
  const t = ctx.tier.slow;
  const warmup = ctx.tier.latency.warmup;
  const tailFrom = warmup + slowAbsorbBroadcasts(t.pad);
  let step = 0;
  for (let rep = 0; rep < ctx.tier.reps; rep++) {
    for (const impl of order(ctx.impls, rep)) {
      for (const frac of step++ % 2 === 0 ? [0, t.frac] : [t.frac, 0]) {
        await measure(ctx, {
          scenario: "slow",
          impl,
          variant: frac ? "slow" : "base",
          n: t.n,
          rep,
          broadcasts: true,
          run: async (s) => {
            const before = memoryOf(s.pid);
            let after: Memory | undefined;
            const result = await runClient({
              ...base(s, t.n),
              broadcasts: tailFrom + t.broadcasts,
              warmup,
              tailFrom,
              pad: t.pad,
              gapUs: t.gapUs,
              window: 1,
              slowFrac: frac,
            }, () => {
              after = memoryOf(s.pid);
              return Promise.resolve();
            });
            return { result, memory: before && after ? { before, after } : undefined };
          },
          describe: (m) =>
            `fast readers' last p50 ${us(m.result.last_p50_us)} (from broadcast ${tailFrom}: ` +
            `${us(m.result.tail_p50_us)}), server RSS peak ` +
            `${m.memory ? (m.memory.after.hwmKb / 1024).toFixed(0) : "?"} MB, ` +
            `${m.result.slow_closed}/${m.result.slow} slow readers closed by the server ` +
            `(${m.result.slow_too_slow} told too_slow)`,
        });
      }
    }
  }
}

export const SCENARIOS: Record<string, (ctx: Context) => Promise<void>> = {
  latency,
  throughput,
  memory,
  storm,
  rpcstorm,
  streams,
  cluster,
  broker,
  slow,
};
