/**
 * The tiers: which sizes, durations and repetitions each scenario uses. `smoke` (100 clients,
 * one repetition) is what CI runs to check that the benchmark still works; its figures mean
 * nothing.
 */

export interface Tier {
  name: "smoke" | "quick" | "full";
  reps: number;
  /**
   * `broadcasts` measured (each one a sample of the last-client percentiles: p99 needs >= 200),
   * after `warmup` unmeasured ones that take a fresh process past its cold code paths (also the
   * warm-up of the slow and cluster scenarios).
   */
  latency: { sizes: number[]; broadcasts: number; warmup: number; gapUs: number };
  /**
   * `reps`: more repetitions than the tier's (deliveries/s at 1k spreads widely run to run).
   * `warmupMs`: broadcasts flow this long before the measured `durationMs` starts (here, in
   * `streams` and in `broker`), so that a run measures the steady state, not the fresh
   * process's cold code paths nor the collection of what its connection phase allocated.
   */
  throughput: {
    sizes: number[];
    durationMs: number;
    warmupMs: number;
    window: number;
    pipeline: number;
    reps?: number;
  };
  /** `reps`: at least this many repetitions (RSS at 5k sits on a V8 heap-growth step). */
  memory: { sizes: number[]; warmup: number; settleMs: number; reps?: number };
  /** `reps`: at least this many repetitions (a storm at 1k lasts a few hundred ms). */
  storm: { sizes: number[]; concurrency: number; reps?: number };
  /**
   * The storm with RPC, at the same sizes in both variants: "http" (raw and Cableway, the fake
   * backend bench/rpc_backend.ts) and "grpc" (Cableway only, the fake gRPC backend, see
   * grpcBackendKind in bench/servers.ts).
   */
  rpcstorm: { sizes: number[]; concurrency: number; reps?: number };
  /** Each variant: `n` clients over `streams` streams (10 per stream). */
  streams: {
    variants: { n: number; streams: number }[];
    durationMs: number;
    warmupMs: number;
    window: number;
    pipeline: number;
    reps?: number;
  };
  /** Two nodes over Redis, clients split, published to one node; against one node. */
  cluster: { n: number; broadcasts: number; gapUs: number };
  broker: {
    n: number;
    durationMs: number;
    warmupMs: number;
    window: number;
    pipeline: number;
    history: number;
  };
  /**
   * `broadcasts` are the measured steady window; the runner sends more before it, enough for
   * every stalled socket to fill the kernel's send buffer and the server's queue (with the
   * padding `pad`, see slowAbsorbBroadcasts in scenarios.ts).
   */
  slow: { n: number; frac: number; broadcasts: number; pad: number; gapUs: number };
}

export const TIERS: Record<"smoke" | "quick" | "full", Tier> = {
  smoke: {
    name: "smoke",
    reps: 1,
    latency: { sizes: [100], broadcasts: 10, warmup: 3, gapUs: 20_000 },
    throughput: { sizes: [100], durationMs: 500, warmupMs: 200, window: 16, pipeline: 4 },
    memory: { sizes: [100], warmup: 20, settleMs: 300 },
    storm: { sizes: [100], concurrency: 50 },
    rpcstorm: { sizes: [100], concurrency: 50 },
    streams: {
      variants: [{ n: 100, streams: 10 }, { n: 200, streams: 20 }],
      durationMs: 500,
      warmupMs: 200,
      window: 16,
      pipeline: 4,
    },
    cluster: { n: 100, broadcasts: 10, gapUs: 20_000 },
    broker: { n: 100, durationMs: 500, warmupMs: 200, window: 16, pipeline: 4, history: 100 },
    slow: { n: 100, frac: 0.1, broadcasts: 20, pad: 64_000, gapUs: 5000 },
  },
  quick: {
    name: "quick",
    reps: 2,
    latency: { sizes: [1000, 5000], broadcasts: 200, warmup: 20, gapUs: 20_000 },
    throughput: { sizes: [1000, 5000], durationMs: 3000, warmupMs: 1000, window: 16, pipeline: 4 },
    memory: { sizes: [1000, 5000], warmup: 100, settleMs: 1500, reps: 3 },
    storm: { sizes: [1000, 5000], concurrency: 500 },
    rpcstorm: { sizes: [1000, 5000], concurrency: 500 },
    streams: {
      variants: [{ n: 5000, streams: 500 }, { n: 10000, streams: 1000 }],
      durationMs: 3000,
      warmupMs: 1000,
      window: 64,
      pipeline: 4,
    },
    cluster: { n: 2000, broadcasts: 200, gapUs: 20_000 },
    broker: { n: 1000, durationMs: 3000, warmupMs: 1000, window: 16, pipeline: 4, history: 100 },
    slow: { n: 1000, frac: 0.1, broadcasts: 200, pad: 16_000, gapUs: 5000 },
  },
  full: {
    name: "full",
    reps: 3,
    latency: { sizes: [1000, 5000, 10000], broadcasts: 200, warmup: 20, gapUs: 20_000 },
    throughput: {
      sizes: [1000, 10000],
      durationMs: 5000,
      warmupMs: 1000,
      window: 16,
      pipeline: 4,
      reps: 5,
    },
    memory: { sizes: [1000, 10000], warmup: 100, settleMs: 2000 },
    storm: { sizes: [1000, 10000], concurrency: 500, reps: 5 },
    rpcstorm: { sizes: [1000, 5000], concurrency: 500, reps: 5 },
    streams: {
      variants: [{ n: 5000, streams: 500 }, { n: 10000, streams: 1000 }],
      durationMs: 5000,
      warmupMs: 1000,
      window: 64,
      pipeline: 4,
      reps: 5,
    },
    cluster: { n: 2000, broadcasts: 200, gapUs: 20_000 },
    broker: { n: 1000, durationMs: 5000, warmupMs: 1000, window: 16, pipeline: 4, history: 200 },
    slow: { n: 2000, frac: 0.1, broadcasts: 300, pad: 16_000, gapUs: 5000 },
  },
};
