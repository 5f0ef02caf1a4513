/**
 * The Cableway process against a gRPC backend that misbehaves in every way we know of: GOAWAY
 * (one step; two steps, as gRPC servers shut down gracefully; and with the stream left
 * unanswered), RST_STREAM storms, stalls, half answers, kill -9 mid-call, graceful restarts, and
 * raw TCP peers that stay silent, send garbage, half frames, huge frames or undecodable HPACK.
 * The backend is a separate `node` process; Cableway is a separate Deno process. Over ≥ 100
 * trials the server must survive, every session must settle (welcome or a server_error
 * disconnect) within the call budget, and a fresh session must work after each fault.
 */
import assert from "node:assert/strict";
import { FaultBackend, type FaultMode, hasNode } from "./support/grpc_fault_process.ts";
import { spawnServer } from "./support/process.ts";
import { WsClient } from "./support/ws_client.ts";

type Fault = FaultMode | "kill" | "restart";

const STREAM_FAULTS: Fault[] = ["goaway", "goaway2", "goawaystall", "rst", "stall", "half"];
const RAW_FAULTS: Fault[] = ["silent", "garbage", "halfframe", "hugeframe", "badhpack"];
const FAULTS: Fault[] = [...STREAM_FAULTS, ...RAW_FAULTS, "kill", "restart"];
const MIN_TRIALS = 100;
/** A bound for slow machines; alone the trials take about 30 s. */
const TIME_BUDGET_MS = 100_000;
const REQUEST_TIMEOUT = 300;
/** The caller's budget for one call with retries (max(request timeout, 3 s)) plus slack. */
const SETTLE_MS = 3000 + 3000;
const PER_TRIAL = 3;

type Outcome = "welcome" | "server_error" | "closed";

async function settle(client: WsClient): Promise<Outcome> {
  const frame = await client.waitFor(
    (f) => f.type === "welcome" || f.type === "disconnect",
    SETTLE_MS,
  ).catch(() => undefined);
  if (frame?.type === "welcome") return "welcome";
  if (frame?.type === "disconnect") {
    assert.equal(frame.reason, "server_error", JSON.stringify(frame));
    return "server_error";
  }
  assert.notEqual(client.ws.readyState, WebSocket.OPEN, "session hangs past the call budget");
  return "closed";
}

Deno.test({
  name: "gRPC faults: the server survives ≥100 hostile-backend trials (needs node)",
  ignore: !hasNode(),
}, async () => {
  const backend = await FaultBackend.start();
  const server = await spawnServer([
    `--rpc_host=${backend.address}`,
    "--rpc_impl=grpc",
    `--rpc_request_timeout=${REQUEST_TIMEOUT}`,
    "--disconnect_mode=never",
    "--log_level=debug", // repeated connection failures are debug lines
    "--broadcast_key=k", // keyed broadcasts stay on the main port (unkeyed ones take 8090)
  ]);
  let exitCode: number | undefined;
  server.exited.then((code) => (exitCode = code));
  const url = `ws://127.0.0.1:${server.port}/cable`;
  const stats = new Map<Fault, { trials: number; welcome: number; server_error: number }>();
  const started = Date.now();
  let trials = 0;
  try {
    while (trials < MIN_TRIALS || trials % FAULTS.length !== 0) {
      if (Date.now() - started > TIME_BUDGET_MS) break;
      const fault = FAULTS[trials % FAULTS.length];
      const clients: WsClient[] = [];
      const open = () => {
        for (let i = 0; i < PER_TRIAL; i++) clients.push(new WsClient(url));
      };
      if (STREAM_FAULTS.includes(fault)) {
        const before = backend.streams;
        await backend.setMode(fault as FaultMode);
        open();
        await backend.waitForStreams(
          before + (fault === "goaway" ? 2 : fault === "goaway2" ? 3 : 1),
        );
        await backend.setMode("ok");
      } else if (RAW_FAULTS.includes(fault)) {
        await backend.setMode(fault as FaultMode);
        open();
        await backend.waitForConnections(1);
        // Let the fault reach the client before the backend heals.
        await new Promise((r) => setTimeout(r, fault === "silent" ? REQUEST_TIMEOUT : 30));
        await backend.setMode("ok");
      } else {
        const before = backend.streams;
        await backend.setMode(fault === "kill" ? "stall" : "slow");
        open();
        await backend.waitForStreams(before + 1);
        if (fault === "kill") await backend.kill();
        else await backend.shutdown();
        await backend.restart();
      }
      const outcomes = await Promise.all(clients.map(settle));
      const s = stats.get(fault) ?? { trials: 0, welcome: 0, server_error: 0 };
      s.trials++;
      for (const o of outcomes) if (o !== "closed") s[o]++;
      stats.set(fault, s);
      assert.equal(exitCode, undefined, `server exited (${exitCode}) after ${fault}`);
      // Once the backend is healthy again, a new session works.
      const fresh = new WsClient(url);
      clients.push(fresh);
      await fresh.waitFor((f) => f.type === "welcome", SETTLE_MS);
      await Promise.all(clients.map((c) => c.close()));
      trials++;
    }
    const elapsed = Date.now() - started;
    console.log(`gRPC fault trials: ${trials} in ${elapsed} ms`);
    for (const [fault, s] of stats) {
      console.log(
        `  ${
          fault.padEnd(12)
        } trials=${s.trials} welcome=${s.welcome} server_error=${s.server_error}`,
      );
    }
    assert.ok(trials >= MIN_TRIALS, `only ${trials} trials within ${TIME_BUDGET_MS} ms`);
    assert.equal(exitCode, undefined);
    // Each failure class left a clear log line.
    const warnings = server.lines.filter((l) => l.msg === "gRPC connection failed")
      .map((l) => String(l.error));
    for (
      const text of [
        /no HTTP\/2 SETTINGS/,
        /FRAME_SIZE_ERROR/,
        /COMPRESSION_ERROR/,
        /closed the connection/,
      ]
    ) {
      assert.ok(warnings.some((w) => text.test(w)), `no warning matching ${text}`);
    }
    assert.ok(server.lines.some((l) => l.msg === "gRPC backend sent GOAWAY"));
    assert.ok(server.lines.some((l) => l.msg === "gRPC connection restored"));
    assert.ok(server.lines.some((l) => l.msg === "gRPC connection failed" && l.level === "warn"));
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
    await backend.stop();
  }
});
