/**
 * HTTP RPC client scenario: Cableway's own HTTP/1.1 client (`--rpc_http_client=native`,
 * src/rpc/http1_client.ts) against `fetch` (`--rpc_http_client=fetch`), both through
 * HttpRpcClient, on bursts of concurrent Connect calls to the bench's fake backend
 * (bench/rpc_backend.ts, its own process on core 0, started as the RPC storm starts it).
 *
 *   deno run -A bench/http_rpc_client.ts [--calls=28] [--rounds=500] [--reps=3]
 *
 * 28 concurrent calls is `--rpc_concurrency`'s default: what a connection storm keeps in flight.
 * Each measurement is a fresh Deno process pinned to core 1 (`taskset`, as the bench needs)
 * running one client: 20 warm-up bursts, then `rounds` bursts of `calls` concurrent calls, each
 * awaited before the next; it reports the wall time of the measured bursts and its own CPU
 * time. The two clients alternate, the order flipping every repetition; figures are medians over
 * the repetitions and the ratio is native / fetch (below 1 = the native client is cheaper).
 */
import { parseArgs } from "node:util";
import { alternate, type ChildResult, measureBursts, medianOf, runChild } from "./client_runs.ts";
import { startRpcBackend } from "./servers.ts";
import { HttpRpcClient } from "../src/rpc/http_rpc_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "28" },
    rounds: { type: "string", default: "500" },
    reps: { type: "string", default: "3" },
    child: { type: "string" },
    url: { type: "string" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);

type Impl = "native" | "fetch";

type Result = ChildResult<Impl>;

function child(impl: Impl, url: string): Promise<Result> {
  const client = new HttpRpcClient({ url, secret: "", requestTimeout: 30_000, transport: impl });
  return measureBursts(impl, client, { calls, rounds, warmups: 20 });
}

if (values.child) {
  console.log(JSON.stringify(await child(values.child as Impl, values.url!)));
} else {
  const reps = Number(values.reps);
  const backend = await startRpcBackend(0, "http-rpc-client-backend");
  const url = `http://127.0.0.1:${backend.port}/_anycable`;
  const script = new URL(import.meta.url).pathname;
  const args = [`--url=${url}`, `--calls=${calls}`, `--rounds=${rounds}`];
  let results: Result[];
  try {
    results = await alternate(reps, ["native", "fetch"], (impl) => runChild(impl, script, args, 1));
  } finally {
    await backend.stop();
  }
  const of = (impl: Impl, key: "ms" | "cpuMs") => medianOf(results, impl, key);
  console.log(
    `\n${calls} concurrent calls x ${rounds} bursts, median of ${reps}: ` +
      `native ${of("native", "ms").toFixed(0)} ms, fetch ${of("fetch", "ms").toFixed(0)} ms; ` +
      `wall-time ratio native/fetch ${(of("native", "ms") / of("fetch", "ms")).toFixed(2)}, ` +
      `client CPU ratio ${(of("native", "cpuMs") / of("fetch", "cpuMs")).toFixed(2)}`,
  );
  if (results.some((r) => r.failures > 0)) {
    console.error("some calls failed: the figures are not comparable");
    Deno.exit(1);
  }
}
