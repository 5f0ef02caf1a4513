/** Building and driving the native load generator (bench/client.c). */

import { BENCH_DIR } from "./servers.ts";

export const CLIENT_SRC = `${BENCH_DIR}client.c`;
export const CLIENT_BIN = `${BENCH_DIR}build/client`;

/** The client's final JSON line (see the printf at the end of client.c). */
export interface ClientResult {
  ok: boolean;
  n: number;
  slow: number;
  streams: number;
  connected: number;
  subscribed: number;
  connect_failures: number;
  connect_s: number;
  connect_rate: number;
  closed_by_server: number;
  fast_alive: number;
  slow_closed: number;
  slow_too_slow: number;
  broadcasts_sent: number;
  broadcasts_complete: number;
  broadcasts_timed_out: number;
  post_ok: number;
  post_errors: number;
  /** Samples behind the last-client percentiles (measured broadcasts fully delivered). */
  last_n: number;
  /** Samples behind the per-delivery percentiles (measured deliveries to fast readers). */
  delivery_n: number;
  last_p50_us: number;
  last_p99_us: number;
  last_max_us: number;
  last_mean_us: number;
  /** The last-client latency over the broadcasts from `tailFrom` on (0 and -1 without it). */
  tail_n: number;
  tail_p50_us: number;
  tail_p99_us: number;
  delivery_p50_us: number;
  delivery_p99_us: number;
  deliveries: number;
  expected_deliveries: number;
  deliveries_per_s: number;
  lost: number;
  duplicated: number;
  reordered: number;
  unknown: number;
  welcome: number;
  pings: number;
  disconnect_msgs: number;
  other_msgs: number;
  run_s: number;
  client_cpu_connect: number;
  client_cpu_run: number;
  server_cpu_connect: number;
  server_cpu_run: number;
  /** Cores used by other processes (and hypervisor steal) during the phase. */
  other_cpu_connect: number;
  other_cpu_run: number;
  /** The client used more than 90 % of its core in the measured phase. */
  client_saturated: boolean;
  /** Cores used by the other processes of the system under test (--aux-pids). */
  aux_cpu_connect: number;
  aux_cpu_run: number;
  /** Source addresses the connections were spread over (0: connect() picked the port). */
  src_addrs: number;
  /** Source ports that were taken and skipped. */
  bind_retries: number;
  history: {
    reps: number;
    epoch: string;
    first_offset: number;
    bad: number;
    rejects: number;
    p50_us: number;
    p99_us: number;
    max_us: number;
    s: number;
  };
  error: string;
}

/** Options passed as `--key=value` flags to the client. */
export interface ClientOptions {
  port: number;
  n: number;
  streams?: number;
  prefix?: string;
  broadcasts?: number;
  window?: number;
  pipeline?: number;
  /** Broadcasts sent first and left out of the latency figures (still checked). */
  warmup?: number;
  gapUs?: number;
  pad?: number;
  slowFrac?: number;
  /** Also report the last-client latency of the broadcasts from this index on. */
  tailFrom?: number;
  durationMs?: number;
  /** Broadcast this long before the measured run starts (its counts, latencies and CPU). */
  warmupMs?: number;
  concurrency?: number;
  timeoutMs?: number;
  proto?: string;
  cpu?: number;
  serverPid?: number;
  history?: number;
  historyMsgs?: number;
  /** Odd connections go to this port (two nodes of a cluster). */
  port2?: number;
  /** The channel of the subscribe identifier (default `$pubsub`). */
  channel?: string;
  /** Source addresses 127.0.0.1.. (client default 16; 0 = the kernel picks source ports). */
  srcAddrs?: number;
  /** Other processes of the system under test: their CPU is not a disturbance. */
  auxPids?: number[];
}

/** Compiles the client when the binary is missing or older than its source. */
export async function buildClient(): Promise<void> {
  const src = Deno.statSync(CLIENT_SRC).mtime?.getTime() ?? 0;
  let bin = -1;
  try {
    bin = Deno.statSync(CLIENT_BIN).mtime?.getTime() ?? -1;
  } catch {
    // not built yet
  }
  if (bin >= src) return;
  Deno.mkdirSync(`${BENCH_DIR}build`, { recursive: true });
  const out = await new Deno.Command("cc", {
    args: ["-O2", "-Wall", "-Wextra", "-o", CLIENT_BIN, CLIENT_SRC],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("compiling bench/client.c failed");
}

function flags(o: ClientOptions): string[] {
  const map: Record<string, number | string | undefined> = {
    port: o.port,
    n: o.n,
    streams: o.streams,
    prefix: o.prefix,
    broadcasts: o.broadcasts,
    window: o.window,
    pipeline: o.pipeline,
    warmup: o.warmup,
    "gap-us": o.gapUs,
    pad: o.pad,
    "slow-frac": o.slowFrac,
    "tail-from": o.tailFrom,
    "duration-ms": o.durationMs,
    "warmup-ms": o.warmupMs,
    concurrency: o.concurrency,
    "timeout-ms": o.timeoutMs,
    proto: o.proto,
    cpu: o.cpu,
    "server-pid": o.serverPid,
    history: o.history,
    "history-msgs": o.historyMsgs,
    port2: o.port2,
    channel: o.channel,
    "src-addrs": o.srcAddrs,
    "aux-pids": o.auxPids?.length ? o.auxPids.join(",") : undefined,
  };
  return Object.entries(map).filter(([, v]) => v !== undefined).map(([k, v]) => `--${k}=${v}`);
}

/**
 * Runs the client to completion. With `onReady`, the client holds its connections after its
 * broadcasts (`--hold`) until `onReady` resolves, so the caller can measure the server then.
 */
export async function runClient(
  opts: ClientOptions,
  onReady?: () => Promise<void>,
): Promise<ClientResult> {
  const args = flags(opts);
  if (onReady) args.push("--hold");
  const child = new Deno.Command(CLIENT_BIN, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const limitMs = (opts.timeoutMs ?? 120_000) + 60_000;
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }, limitMs);
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  let result: ClientResult | undefined;
  let buf = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of child.stdout) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const event = JSON.parse(line);
        if (event.event === "ready") {
          try {
            if (onReady) await onReady();
          } finally {
            await writer.close().catch(() => {});
          }
        } else if (event.event === "result") {
          result = event as ClientResult;
        }
      }
    }
  } finally {
    await writer.close().catch(() => {});
    await child.status;
    clearTimeout(killer);
  }
  const err = await stderr;
  if (!result) throw new Error(`client produced no result (args: ${args.join(" ")})\n${err}`);
  return result;
}
