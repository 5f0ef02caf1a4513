/**
 * AnyCable's conformance scenarios (anyt's broker tests) replayed over real sockets: each test
 * follows one scenario step by step, with the protocol and backend anyt uses.
 */
import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { GrpcBackend } from "./support/grpc_backend.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const PLAIN = "actioncable-v1-json";
const EXT = "actioncable-v1-ext-json";

/** anyt's channel identifier; the channel streams from `stream`. */
const identifier = (stream: string) => JSON.stringify({ channel: "AnytChannel", stream });

async function connected(
  url: string,
  protocol: string,
  headers?: Record<string, string>,
): Promise<{ c: WsClient; welcome: Record<string, unknown> }> {
  const c = new WsClient(url, protocol, headers ? { headers } : undefined);
  const welcome = await c.waitFor((f) => f.type === "welcome");
  return { c, welcome };
}

async function subscribe(c: WsClient, id: string): Promise<void> {
  c.send({ command: "subscribe", identifier: id });
  await c.waitFor((f) => f.type === "confirm_subscription" && f.identifier === id);
}

const data = (c: WsClient) => c.frames.filter((f) => f.message !== undefined && !f.type);

/** anyt's backend over either RPC transport; `bareWelcome` leaves the sid out of its welcome. */
interface Backend {
  rpcHost: string;
  connects(): number;
  stop(): Promise<void>;
}

async function backend(mode: "http" | "grpc", bareWelcome = false): Promise<Backend> {
  const answer = () => ({
    status: 1,
    identifiers: JSON.stringify({ user: "anyt" }),
    transmissions: [JSON.stringify({ type: "welcome" })],
  });
  if (mode === "http") {
    const rpc = new FakeRpc(bareWelcome ? { connect: answer } : {});
    return {
      rpcHost: rpc.url,
      connects: () => rpc.calls("connect").length,
      stop: () => rpc.stop(),
    };
  }
  const grpc = await GrpcBackend.start(bareWelcome ? { connect: answer } : {});
  return {
    rpcHost: grpc.address,
    connects: () => grpc.calls.filter((c) => c.method === "connect").length,
    stop: () => grpc.stop(),
  };
}

for (const mode of ["http", "grpc"] as const) {
  Deno.test(`anyt History → Fetching by offset (actioncable-v1-json, ${mode} RPC)`, async () => {
    const rpc = await backend(mode);
    const server = await startServer([`--rpc_host=${rpc.rpcHost}`, "--broker=memory"]);
    const clients: WsClient[] = [];
    try {
      const id = identifier("history_a");
      // before: two publications already in the stream's history.
      await server.broadcast({
        stream: "history_a",
        data: '{"data":{"user_id":1,"status":"left"}}',
      });
      await server.broadcast({
        stream: "history_a",
        data: '{"data":{"user_id":2,"status":"join"}}',
      });

      const { c: client } = await connected(server.wsUrl, PLAIN);
      clients.push(client);
      await subscribe(client, id);
      await server.broadcast({
        stream: "history_a",
        data: '{"data":{"user_id":42,"status":"alive"}}',
      });
      const received = await client.waitFor((f) =>
        (f.message as { data?: { user_id?: number } })?.data?.user_id === 42
      );
      // The plain protocol carries the position too.
      assert.equal(received.stream_id, "history_a");
      assert.equal(typeof received.epoch, "string");
      assert.equal(received.offset, 3);

      const { c: another } = await connected(server.wsUrl, PLAIN);
      clients.push(another);
      await subscribe(another, id);
      another.send({
        command: "history",
        identifier: id,
        history: {
          streams: {
            [received.stream_id as string]: {
              offset: (received.offset as number) - 1,
              epoch: received.epoch,
            },
          },
        },
      });
      await another.waitFor((f) => f.type === "confirm_history");
      assert.deepEqual(data(another).map((f) => f.message), [{
        data: { user_id: 42, status: "alive" },
      }]);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      await rpc.stop();
    }
  });

  Deno.test(`anyt Session cache → Restore session by session ID (${mode} RPC, welcome without sid)`, async () => {
    // A Rails backend over HTTP RPC: its welcome never carries the sid.
    const rpc = await backend(mode, true);
    const server = await startServer([`--rpc_host=${rpc.rpcHost}`, "--broker=memory"]);
    const clients: WsClient[] = [];
    try {
      const id = identifier("cache_a");
      const { c: client, welcome } = await connected(server.wsUrl, EXT);
      clients.push(client);
      assert.equal(typeof welcome.sid, "string", `welcome: ${JSON.stringify(welcome)}`);
      await subscribe(client, id);
      await server.broadcast({ stream: "cache_a", data: '{"data":{"user_id":1,"status":"left"}}' });
      await client.waitFor((f) =>
        (f.message as { data?: { user_id?: number } })?.data?.user_id === 1
      );
      await client.close();

      const connects = rpc.connects();
      const { c: another, welcome: restored } = await connected(server.wsUrl, EXT, {
        "X-ANYCABLE-RESTORE-SID": welcome.sid as string,
      });
      clients.push(another);
      assert.equal(restored.restored, true, `welcome: ${JSON.stringify(restored)}`);
      assert.equal(rpc.connects(), connects, "a restore makes no Connect call");
      await server.broadcast({ stream: "cache_a", data: '{"data":{"user_id":2,"status":"join"}}' });
      const msg = await another.waitFor((f) =>
        (f.message as { data?: { user_id?: number } })?.data?.user_id === 2
      );
      assert.deepEqual(msg.message, { data: { user_id: 2, status: "join" } });
      assert.equal(msg.identifier, id);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      await rpc.stop();
    }
  });
}

Deno.test("a backend welcome that already has a sid is relayed unchanged; plain clients get no sid added", async () => {
  const rpc = new FakeRpc({
    connect: (_b, headers) => ({
      status: 1,
      identifiers: "{}",
      transmissions: [
        JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid"), extra: 1 }),
      ],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--broker=memory"]);
  const clients: WsClient[] = [];
  try {
    const { c, welcome } = await connected(server.wsUrl, EXT);
    clients.push(c);
    assert.equal(welcome.extra, 1);
    assert.equal(typeof welcome.sid, "string");
    rpc.handlers.connect = () => ({
      status: 1,
      identifiers: "{}",
      transmissions: [JSON.stringify({ type: "welcome" })],
    });
    const { c: plain, welcome: plainWelcome } = await connected(server.wsUrl, PLAIN);
    clients.push(plain);
    assert.deepEqual(plainWelcome, { type: "welcome" });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
    await rpc.stop();
  }
});
