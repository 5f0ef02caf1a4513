/**
 * What the standalone RPC client runners (grpc_client.ts, http_rpc_client.ts) share: the
 * measured bursts of one child process, running that child, the alternating repetitions, and
 * the median over them.
 */
import { type RpcClient, Status } from "../src/rpc/rpc_client.ts";

/** One measured client run (one child process). */
export interface ChildResult<Impl extends string> {
  impl: Impl;
  /** Wall time of the measured bursts. */
  ms: number;
  /** The child's CPU time over the same bursts. */
  cpuMs: number;
  calls: number;
  failures: number;
}

/** This process's CPU time (user + system), ms. */
export function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime (fields 14 and 15 of stat, counted after the command name).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The median of `key` over the runs of `impl`. */
export function medianOf<Impl extends string>(
  results: ChildResult<Impl>[],
  impl: Impl,
  key: "ms" | "cpuMs",
): number {
  return median(results.filter((r) => r.impl === impl).map((r) => r[key]));
}

/**
 * One child's measurement: `warmups` bursts (connections, JIT), then `rounds` bursts of `calls`
 * concurrent Connect calls, each burst awaited before the next. A call that fails or is not
 * answered SUCCESS counts as failed. Closes the client.
 */
export async function measureBursts<Impl extends string>(
  impl: Impl,
  client: RpcClient,
  opts: { calls: number; rounds: number; warmups: number },
): Promise<ChildResult<Impl>> {
  const env = { url: "http://bench/cable", headers: { cookie: "session=bench" } };
  let failures = 0;
  const burst = () =>
    Promise.all(
      Array.from({ length: opts.calls }, (_, i) =>
        client.connect({ env }, { sid: `s${i}` }).then((r) => {
          if (r.status !== Status.SUCCESS) {
            failures++;
          }
        }, () => {
          failures++;
        })),
    );
  for (let i = 0; i < opts.warmups; i++) await burst();
  failures = 0;
  const cpu0 = cpuMs();
  const t0 = performance.now();
  for (let r = 0; r < opts.rounds; r++) await burst();
  const ms = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  await client.close();
  return { impl, ms, cpuMs: cpu, calls: opts.calls * opts.rounds, failures };
}

/**
 * Runs `script` again as a child with `args` (pinned to core `cpu` with taskset when given) and
 * returns the result it prints last.
 */
export async function runChild<Impl extends string>(
  impl: Impl,
  script: string,
  args: string[],
  cpu?: number,
): Promise<ChildResult<Impl>> {
  const argv = [Deno.execPath(), "run", "-A", script, `--child=${impl}`, ...args];
  const [cmd, ...rest] = cpu === undefined ? argv : ["taskset", "-c", String(cpu), ...argv];
  const out = await new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`${impl} client run failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

/**
 * `reps` repetitions of both clients, the order flipping every repetition; each run is logged
 * as it ends.
 */
export async function alternate<Impl extends string>(
  reps: number,
  impls: [Impl, Impl],
  run: (impl: Impl) => Promise<ChildResult<Impl>>,
): Promise<ChildResult<Impl>[]> {
  const results: ChildResult<Impl>[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const impl of rep % 2 === 0 ? impls : [impls[1], impls[0]]) {
      const r = await run(impl);
      results.push(r);
      console.log(
        `rep ${rep + 1} ${impl}: ${r.calls} calls in ${r.ms.toFixed(0)} ms ` +
          `(${(r.calls / r.ms * 1000).toFixed(0)} calls/s, client CPU ${r.cpuMs} ms = ` +
          `${(r.cpuMs * 1000 / r.calls).toFixed(1)} µs per call, ${r.failures} failed)`,
      );
    }
  }
  return results;
}
