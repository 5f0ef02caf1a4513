/**
 * Graceful restarts of a real gRPC-core backend (Debian's ruby-grpc, the server library of the
 * `anycable` gem): sessions connect, the backend is stopped with SIGTERM while calls are in
 * flight (it sends GOAWAY and finishes what it accepted), then started again. The Cableway
 * process must survive every restart, every session must settle, and new sessions must work
 * once the backend is back. (Calls the backend accepted but had not started when it stopped
 * end with CANCELLED, which is not retried: those sessions get a server_error disconnect.)
 */
import assert from "node:assert/strict";
import { spawnServer } from "./support/process.ts";
import { WsClient } from "./support/ws_client.ts";

const SCRIPT = new URL("./support/grpc_ruby_backend.rb", import.meta.url).pathname;
const SESSIONS = 40;
const MIN_TRIALS = 8;
const TIME_BUDGET_MS = 60_000;

function hasRubyGrpc(): boolean {
  try {
    return new Deno.Command("ruby", {
      args: ["-e", 'require "grpc"; require "google/protobuf"'],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

interface Ruby {
  child: Deno.ChildProcess;
  port: number;
}

async function startRuby(port: number): Promise<Ruby> {
  const child = new Deno.Command("ruby", {
    args: [SCRIPT, String(port)],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("ruby backend exited before listening");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { child, port: Number(text.trim()) };
}

Deno.test({
  name:
    "gRPC: graceful restarts of a ruby-grpc backend mid-call never end the server (needs ruby-grpc)",
  ignore: !hasRubyGrpc(),
}, async () => {
  let ruby = await startRuby(0);
  const port = ruby.port;
  const server = await spawnServer([
    `--rpc_host=127.0.0.1:${port}`,
    "--rpc_impl=grpc",
    "--rpc_request_timeout=1000",
    "--broadcast_key=k",
  ]);
  let exitCode: number | undefined;
  server.exited.then((code) => (exitCode = code));
  const url = `ws://127.0.0.1:${server.port}/cable`;
  const started = Date.now();
  let trials = 0;
  let welcomed = 0;
  let failed = 0;
  try {
    while (trials < MIN_TRIALS && Date.now() - started < TIME_BUDGET_MS) {
      const clients = Array.from({ length: SESSIONS }, () => new WsClient(url));
      // Stop the backend once some sessions are in, others still in flight.
      await clients[0].waitFor((f) => f.type === "welcome", 10_000);
      ruby.child.kill("SIGTERM");
      const status = await ruby.child.status;
      assert.ok(status.success || status.signal === "SIGTERM", `ruby exited ${status.code}`);
      ruby = await startRuby(port);
      for (const c of clients) {
        const f = await c.waitFor((f) => f.type === "welcome" || f.type === "disconnect", 8000);
        if (f.type === "welcome") welcomed++;
        else failed++;
      }
      assert.equal(exitCode, undefined, `server exited (${exitCode}) after restart ${trials + 1}`);
      const fresh = new WsClient(url);
      await fresh.waitFor((f) => f.type === "welcome", 8000);
      await Promise.all([...clients, fresh].map((c) => c.close()));
      trials++;
    }
    console.log(
      `ruby-grpc restarts: ${trials} in ${Date.now() - started} ms, sessions: ` +
        `${welcomed} welcome, ${failed} server_error`,
    );
    assert.ok(trials >= MIN_TRIALS, `only ${trials} restarts within ${TIME_BUDGET_MS} ms`);
    assert.ok(server.lines.some((l) => l.msg === "gRPC backend sent GOAWAY"));
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
    ruby.child.kill("SIGKILL");
    await ruby.child.status;
  }
});
