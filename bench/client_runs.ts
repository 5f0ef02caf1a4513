/**
 * What the standalone RPC client runners (grpc_client.ts, http_rpc_client.ts) share: a child
 * process's result, its own CPU time, and the median over repetitions.
 */

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
