/**
 * The gRPC and gRPC-web clients hold one deadline per call (CallSignal, an entry in the shared
 * deadline clock) and release it when the call ends, answered or failed; a caller whose own
 * deadline comes first (the RPC caller's call budget) costs no deadline at all.
 */
import assert from "node:assert/strict";
import { GrpcRpcClient } from "../src/rpc/grpc_rpc_client.ts";
import { GrpcWebRpcClient } from "../src/rpc/grpc_web_client.ts";
import { encodeGrpcFrame } from "../src/rpc/grpc_framing.ts";
import { type RpcClient, RpcResponseError } from "../src/rpc/rpc_client.ts";
import { GrpcBackend, GrpcStatus } from "./support/grpc_backend.ts";
import { deadlines, type Expiring } from "../src/util/deadline_clock.ts";

/** A request timeout no other deadline of these clients uses, so their deadlines can be told apart. */
const TIMEOUT = 43_210;

/**
 * Counts the deadlines Cableway's RPC code files with `ms` in the shared deadline clock (no
 * runtime timer per call) and how many of them are still pending.
 */
function spyTimers(ms: number) {
  const realAdd = deadlines.add;
  const realCancel = deadlines.cancel;
  const pending = new Set<Expiring>();
  let created = 0;
  deadlines.add = function (item: Expiring, delay: number) {
    if (delay === ms) {
      created++;
      pending.add(item);
    }
    return realAdd.call(this, item, delay);
  };
  deadlines.cancel = function (item: Expiring, tick: number) {
    pending.delete(item);
    return realCancel.call(this, item, tick);
  };
  return {
    get created() {
      return created;
    },
    get pending() {
      return pending.size;
    },
    restore() {
      deadlines.add = realAdd;
      deadlines.cancel = realCancel;
    },
  };
}

/** One answered and one failed call, then one under a caller's earlier deadline. */
async function checkClient(client: RpcClient, fail: (on: boolean) => void): Promise<void> {
  const env = { url: "http://x/cable" };
  const timers = spyTimers(TIMEOUT);
  try {
    fail(false);
    const ok = await client.connect({ env }, { sid: "s-ok" });
    assert.equal(ok.status, 1);
    assert.equal(timers.created, 1);
    assert.equal(timers.pending, 0, "the timer of an answered call is released");

    fail(true);
    await assert.rejects(client.connect({ env }, { sid: "s-fail" }), RpcResponseError);
    assert.equal(timers.created, 2);
    assert.equal(timers.pending, 0, "the timer of a failed call is released");

    // The caller's signal fires before the request timeout would: no timer of the client's own.
    fail(false);
    const budget = new AbortController();
    const deadline = Date.now() + 1000;
    await client.connect({ env }, { sid: "s-budget", signal: budget.signal, deadline });
    assert.equal(timers.created, 2);
  } finally {
    timers.restore();
  }
}

Deno.test("GrpcRpcClient: one deadline timer per call, released when the call ends", async () => {
  let failing = false;
  const backend = await GrpcBackend.start({
    connect: () =>
      failing
        ? new GrpcStatus(7, "denied")
        : { status: 1, identifiers: "{}", transmissions: ['{"type":"welcome"}'] },
  });
  const client = new GrpcRpcClient({ host: backend.address, requestTimeout: TIMEOUT });
  try {
    await checkClient(client, (on) => failing = on);
  } finally {
    await client.close();
    await backend.stop();
  }
});

Deno.test("GrpcWebRpcClient: one deadline timer per call, released when the call ends", async () => {
  let failing = false;
  const trailer = encodeGrpcFrame(new TextEncoder().encode("grpc-status: 0\r\n"));
  trailer[0] = 0x80;
  // ConnectionResponse { status: SUCCESS }, then the trailer frame
  const answer = new Uint8Array([...encodeGrpcFrame(new Uint8Array([0x08, 0x01])), ...trailer]);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    const headers = { "content-type": "application/grpc-web+proto" };
    return failing
      ? new Response(null, { headers: { ...headers, "grpc-status": "7", "grpc-message": "no" } })
      : new Response(answer, { headers });
  });
  const client = new GrpcWebRpcClient({
    url: `http://127.0.0.1:${server.addr.port}`,
    requestTimeout: TIMEOUT,
    mode: "binary",
  });
  try {
    await checkClient(client, (on) => failing = on);
  } finally {
    await client.close();
    await server.shutdown();
  }
});
