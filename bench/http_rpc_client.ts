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
import { type ChildResult, cpuMs, medianOf } from "./client_runs.ts";
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

async function child(impl: Impl, url: string): Promise<Result> {
  const client = new HttpRpcClient({ url, secret: "", requestTimeout: 30_000, transport: impl });
  const env = { url: "http://bench/cable", headers: { cookie: "session=bench" } };
  let failures = 0;
  const burst = () =>
    Promise.all(
      Array.from({ length: calls }, (_, i) =>
        client.connect({ env }, { sid: `s${i}` }).then((r) => {
          if (r.status !== 1) failures++;
        }, () => {
          failures++;
        })),
    );
  for (let i = 0; i < 20; i++) await burst(); // warm-up: connections, JIT
  failures = 0;
  const cpu0 = cpuMs();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await burst();
  const ms = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  await client.close();
  return { impl, ms, cpuMs: cpu, calls: calls * rounds, failures };
}

async function runChild(impl: Impl, url: string): Promise<Result> {
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    `--child=${impl}`,
    `--url=${url}`,
    `--calls=${calls}`,
    `--rounds=${rounds}`,
  ];
  const out = await new Deno.Command("taskset", {
    args: ["-c", "1", ...argv],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${impl} client run failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

if (values.child) {
  console.log(JSON.stringify(await child(values.child as Impl, values.url!)));
} else {
  const reps = Number(values.reps);
  const backend = await startRpcBackend(0, "http-rpc-client-backend");
  const url = `http://127.0.0.1:${backend.port}/_anycable`;
  const results: Result[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      const order: Impl[] = rep % 2 === 0 ? ["native", "fetch"] : ["fetch", "native"];
      for (const impl of order) {
        const r = await runChild(impl, url);
        results.push(r);
        console.log(
          `rep ${rep + 1} ${impl}: ${r.calls} calls in ${r.ms.toFixed(0)} ms ` +
            `(${(r.calls / r.ms * 1000).toFixed(0)} calls/s, client CPU ${r.cpuMs} ms = ` +
            `${(r.cpuMs * 1000 / r.calls).toFixed(1)} µs per call, ${r.failures} failed)`,
        );
      }
    }
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
