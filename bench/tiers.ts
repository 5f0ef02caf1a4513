/** The two tiers: which sizes, durations and repetitions each scenario uses. */

export interface Tier {
  name: "quick" | "full";
  reps: number;
  latency: { sizes: number[]; broadcasts: number; gapUs: number };
  throughput: { sizes: number[]; durationMs: number; window: number; pipeline: number };
  memory: { sizes: number[]; warmup: number; settleMs: number };
  storm: { sizes: number[]; concurrency: number };
  streams: { n: number; streams: number; durationMs: number; window: number; pipeline: number };
  broker: { n: number; durationMs: number; window: number; pipeline: number; history: number };
  slow: { n: number; frac: number; broadcasts: number; pad: number; gapUs: number };
}

export const TIERS: Record<"quick" | "full", Tier> = {
  quick: {
    name: "quick",
    reps: 2,
    latency: { sizes: [1000, 5000], broadcasts: 30, gapUs: 20_000 },
    throughput: { sizes: [1000, 5000], durationMs: 3000, window: 16, pipeline: 4 },
    memory: { sizes: [1000, 5000], warmup: 100, settleMs: 1500 },
    storm: { sizes: [1000, 5000], concurrency: 500 },
    streams: { n: 5000, streams: 500, durationMs: 3000, window: 64, pipeline: 4 },
    broker: { n: 1000, durationMs: 3000, window: 16, pipeline: 4, history: 100 },
    slow: { n: 1000, frac: 0.1, broadcasts: 300, pad: 16_000, gapUs: 5000 },
  },
  full: {
    name: "full",
    reps: 3,
    latency: { sizes: [1000, 5000, 10000], broadcasts: 40, gapUs: 20_000 },
    throughput: { sizes: [1000, 10000], durationMs: 5000, window: 16, pipeline: 4 },
    memory: { sizes: [1000, 10000], warmup: 100, settleMs: 2000 },
    storm: { sizes: [1000, 10000], concurrency: 500 },
    streams: { n: 10000, streams: 1000, durationMs: 5000, window: 64, pipeline: 4 },
    broker: { n: 1000, durationMs: 5000, window: 16, pipeline: 4, history: 200 },
    slow: { n: 2000, frac: 0.1, broadcasts: 300, pad: 16_000, gapUs: 5000 },
  },
};
