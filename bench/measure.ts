/**
 * Running one measurement: a fresh server pinned to its core, the client on the other core,
 * correctness checks, and re-runs when other processes disturbed the machine.
 */

import type { ClientOptions, ClientResult } from "./client.ts";
import { type Impl, type Memory, readMemory, type RunningServer, startServer } from "./servers.ts";
import type { Tier } from "./tiers.ts";

export const CLIENT_CPU = 0;
export const SERVER_CPU = 1;
/** A run whose load generator used more of its core than this is rejected. */
export const CLIENT_CPU_LIMIT = 0.9;
/** Other processes may use this much of the machine (in cores) before a run waits for quiet. */
const QUIET_CORES = 0.25;
/** A run during which other processes used this much (in cores) is measured again. */
export const DISTURBED_CORES = 0.3;

/** One client run against one fresh server. */
export interface Measurement {
  scenario: string;
  impl: Impl;
  /** Distinguishes runs of one impl within a scenario: "", "broker=memory", "slow", ... */
  variant: string;
  n: number;
  rep: number;
  result: ClientResult;
  /**
   * Memory scenario: KB per connection, and `startup`, the RSS of the fresh server before any
   * client (its fixed footprint); slow scenario: the server's memory at the end.
   */
  memory?: { before: Memory; after: Memory; perConnKb?: number; startup?: Memory };
  /** Problems that make the measurement invalid (correctness or a saturated client). */
  issues: string[];
  /** Cores used by other processes just before or during the run (the larger). */
  background: number;
}

export interface Context {
  tier: Tier;
  impls: Impl[];
  cableway: boolean;
  log: (line: string) => void;
  record: (m: Measurement) => void;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/**
 * Processes of the system under test besides the measured server, started before it and stopped
 * after it: the RPC backend, Redis and the second node of a cluster.
 */
export interface Sidecar {
  /** Flags for the measured server (e.g. `--rpc_host=...`, `--pubsub=redis ...`). */
  flags: string[];
  /** Their pids: the client bills their CPU to the system under test, not to "other load". */
  pids: number[];
  /** Ports they serve (a second node's WebSocket port). */
  ports: number[];
  stop(): Promise<void>;
}

/** Runs `fn` against a fresh server; `exited` tells whether a process died on the way. */
async function withServer<T>(
  spec: Spec,
  logName: string,
  fn: (s: RunningServer, side?: Sidecar) => Promise<T>,
): Promise<{ value: T; exited?: string }> {
  const side = spec.sidecar ? await spec.sidecar(spec.impl, logName) : undefined;
  try {
    const server = await startServer({
      impl: spec.impl,
      cpu: SERVER_CPU,
      flags: [...spec.flags ?? [], ...side?.flags ?? []],
      public: spec.public,
      logName,
    });
    try {
      const value = await fn(server, side);
      const exited = !alive(server.pid)
        ? `server process exited during the run (log: ${server.logPath})`
        : side?.pids.some((p) => !alive(p))
        ? `a helper process (RPC backend, Redis or second node) exited during the run`
        : undefined;
      return { value, exited };
    } finally {
      await server.stop();
    }
  } finally {
    await side?.stop();
  }
}

/** Like readMemory, but undefined once the process is gone. */
export function memoryOf(pid: number): Memory | undefined {
  try {
    return readMemory(pid);
  } catch {
    return undefined;
  }
}

export function base(server: RunningServer, n: number): ClientOptions {
  return {
    port: server.port,
    n,
    cpu: CLIENT_CPU,
    serverPid: server.pid,
    concurrency: 500,
    timeoutMs: 180_000,
  };
}

/** Correctness and validity checks shared by every scenario. */
export function check(r: ClientResult, opts: { broadcasts: boolean; storm?: boolean }): string[] {
  const issues: string[] = [];
  if (r.connect_failures > 0) issues.push(`${r.connect_failures} connect failures`);
  if (r.subscribed < r.n) issues.push(`${r.n - r.subscribed} not subscribed`);
  if (opts.broadcasts) {
    if (r.lost > 0) issues.push(`${r.lost} lost`);
    if (r.duplicated > 0) issues.push(`${r.duplicated} duplicated`);
    if (r.reordered > 0) issues.push(`${r.reordered} reordered`);
    if (r.broadcasts_timed_out > 0) issues.push(`${r.broadcasts_timed_out} broadcasts timed out`);
    if (r.post_errors > 0) issues.push(`${r.post_errors} broadcast POST errors`);
    if (r.closed_by_server > 0) issues.push(`${r.closed_by_server} readers closed by server`);
    // (a measured phase under 50 ms, like the RPC storm's three check broadcasts, is too short
    // to judge the client's share of its core)
    if (r.run_s > 0.05 && r.client_cpu_run > CLIENT_CPU_LIMIT) {
      issues.push(
        `REJECTED: load generator saturated (client CPU ${(r.client_cpu_run * 100).toFixed(0)}%)`,
      );
    }
  }
  if (opts.storm && r.connect_s > 0.05 && r.client_cpu_connect > CLIENT_CPU_LIMIT) {
    issues.push(
      `REJECTED: load generator saturated (client CPU ${(r.client_cpu_connect * 100).toFixed(0)}%)`,
    );
  }
  if (r.error && issues.length === 0) issues.push(r.error);
  return issues;
}

/**
 * The streams scenario's raw runs with `--pings` carry the variant `<streams variant>` + this
 * (a variant of their own, like the storm's "welcome").
 */
export const PINGS_VARIANT = ", with pings";

/** Raw first on even steps, Cableway first on odd ones. */
export function order(impls: Impl[], step: number): Impl[] {
  return step % 2 === 0 ? impls : [...impls].reverse();
}

export interface Spec {
  scenario: string;
  impl: Impl;
  variant?: string;
  n: number;
  rep: number;
  flags?: string[];
  /** Whether broadcasts were sent (enables the delivery checks). */
  broadcasts: boolean;
  storm?: boolean;
  /** Memory readings do not depend on CPU time: no re-runs when other processes were busy. */
  cpuInsensitive?: boolean;
  /** Cableway with `--public` (default true). */
  public?: boolean;
  /** Started before the server, stopped after it; its flags go to the server. */
  sidecar?: (impl: Impl, logName: string) => Promise<Sidecar>;
  run: (
    s: RunningServer,
    side?: Sidecar,
  ) => Promise<{ result: ClientResult; memory?: Measurement["memory"] }>;
  describe: (m: Measurement) => string;
}

function cpuTicks(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

/**
 * Waits (at most 15 s) until other processes use less than QUIET_CORES of the machine; returns
 * the load last seen, in cores. Nothing of ours runs between measurements.
 */
async function waitQuiet(): Promise<number> {
  const cores = navigator.hardwareConcurrency;
  const deadline = Date.now() + 15_000;
  let load = 0;
  do {
    const a = cpuTicks();
    await sleep(300);
    const b = cpuTicks();
    load = b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * cores : 0;
    if (load < QUIET_CORES) break;
    await sleep(700);
  } while (Date.now() < deadline);
  return load;
}

/** Cores used by other processes during the measured phase of a run. */
function disturbance(r: ClientResult, storm?: boolean): number {
  return Math.max(0, storm || r.run_s === 0 ? r.other_cpu_connect : r.other_cpu_run);
}

/**
 * One measurement on a fresh server: run, check, record, log. A run disturbed by other
 * processes is done again (at most twice), after waiting for the machine to be quiet.
 */
export async function measure(ctx: Context, spec: Spec): Promise<Measurement> {
  const variant = spec.variant ?? "";
  const logName = [spec.scenario, spec.impl, variant, spec.n, spec.rep + 1].filter((x) => x !== "")
    .join("-").replace(/[^\w.=-]+/g, "_");
  let background = 0;
  let run: { value: Awaited<ReturnType<Spec["run"]>>; exited?: string };
  // The smoke tier (CI) judges correctness only: no waiting for a quiet machine, no re-runs.
  const smoke = ctx.tier.name === "smoke";
  for (let attempt = 1;; attempt++) {
    background = smoke ? 0 : await waitQuiet();
    run = await withServer(spec, logName, spec.run);
    background = Math.max(background, disturbance(run.value.result, spec.storm));
    if (smoke || spec.cpuInsensitive || background < DISTURBED_CORES || attempt === 3) break;
    ctx.log(
      `  (${spec.scenario} n=${spec.n} ${spec.impl} ${variant}: other processes used ` +
        `${background.toFixed(2)} cores during the run; measuring again)`,
    );
  }
  if (spec.cpuInsensitive) background = 0;
  const { value, exited } = run;
  const issues = check(value.result, { broadcasts: spec.broadcasts, storm: spec.storm });
  if (exited) issues.unshift(exited);
  const m: Measurement = {
    scenario: spec.scenario,
    impl: spec.impl,
    variant,
    n: spec.n,
    rep: spec.rep,
    result: value.result,
    memory: value.memory,
    issues,
    background,
  };
  ctx.record(m);
  const noisy = background >= DISTURBED_CORES
    ? `  (disturbed: ${background.toFixed(2)} cores used by other processes)`
    : "";
  const flag = (issues.length ? `  !! ${issues.join("; ")}` : "") + noisy;
  ctx.log(
    `  ${m.scenario} n=${m.n} ${m.impl}${variant ? " " + variant : ""} rep ${m.rep + 1}: ` +
      `${spec.describe(m)}${flag}`,
  );
  return m;
}
