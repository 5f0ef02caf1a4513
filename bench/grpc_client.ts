/**
 * gRPC client scenario: Cableway's HTTP/2 gRPC client (src/rpc/h2_connection.ts) against the
 * previous `node:http2` client (kept in bench/node_http2_grpc/ for this comparison only), on
 * bursts of 500 concurrent Connect calls to the same backend.
 *
 *   deno run -A bench/grpc_client.ts [--calls=500] [--rounds=20] [--reps=3]
 *
 * The backend is tests/support/grpc_fault_backend.mjs in its "ok" mode under the system
 * `node` (one process for the whole run). Each measurement is a fresh Deno process running one
 * client: one warm-up burst, then `rounds` bursts of `calls` concurrent calls, each burst
 * awaited before the next; it reports the wall time of the measured bursts and its own CPU
 * time. The two clients alternate, the order flipping every repetition; figures are medians
 * over the repetitions and the ratio is new / old (below 1 = the new client is faster).
 */
import { parseArgs } from "node:util";
import { alternate, type ChildResult, measureBursts, medianOf, runChild } from "./client_runs.ts";
import { GrpcRpcClient } from "../src/rpc/grpc_rpc_client.ts";
import type { RpcClient } from "../src/rpc/rpc_client.ts";
import { NodeHttp2GrpcRpcClient } from "./node_http2_grpc/grpc_rpc_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "500" },
    rounds: { type: "string", default: "20" },
    reps: { type: "string", default: "3" },
    child: { type: "string" },
    port: { type: "string" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);

type Impl = "new" | "old";

type Result = ChildResult<Impl>;

function child(impl: Impl, port: number): Promise<Result> {
  const host = `127.0.0.1:${port}`;
  const client: RpcClient = impl === "new"
    ? new GrpcRpcClient({ host, requestTimeout: 30_000 })
    : new NodeHttp2GrpcRpcClient({ host, requestTimeout: 30_000 });
  return measureBursts(impl, client, { calls, rounds, warmups: 1 });
}

async function startBackend(): Promise<{ port: number; stop: () => Promise<void> }> {
  const script = new URL("../tests/support/grpc_fault_backend.mjs", import.meta.url).pathname;
  const proc = new Deno.Command("node", {
    args: [script, "0"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("backend exited before listening");
    buf += value;
  }
  const port = JSON.parse(buf.slice(0, buf.indexOf("\n"))).port as number;
  // Keep draining (one line per stream) so the backend never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return {
    port,
    stop: async () => {
      proc.kill("SIGKILL");
      await proc.status;
    },
  };
}

if (values.child) {
  console.log(JSON.stringify(await child(values.child as Impl, Number(values.port))));
} else {
  const reps = Number(values.reps);
  const backend = await startBackend();
  const script = new URL(import.meta.url).pathname;
  const args = [`--port=${backend.port}`, `--calls=${calls}`, `--rounds=${rounds}`];
  let results: Result[];
  try {
    results = await alternate(reps, ["new", "old"], (impl) => runChild(impl, script, args));
  } finally {
    await backend.stop();
  }
  const of = (impl: Impl, key: "ms" | "cpuMs") => medianOf(results, impl, key);
  const ratio = of("new", "ms") / of("old", "ms");
  const cpuRatio = of("new", "cpuMs") / of("old", "cpuMs");
  console.log(
    `\n${calls} concurrent calls x ${rounds} bursts, median of ${reps}: ` +
      `new ${of("new", "ms").toFixed(0)} ms, old (node:http2) ${of("old", "ms").toFixed(0)} ms; ` +
      `wall-time ratio new/old ${ratio.toFixed(2)}, client CPU ratio ${cpuRatio.toFixed(2)}`,
  );
  if (results.some((r) => r.failures > 0)) {
    console.error("some calls failed: the figures are not comparable");
    Deno.exit(1);
  }
}
