import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const pub = JSON.stringify({ channel: "$pubsub", stream_name: "chat" });

Deno.test("malformed frames get an answer and the socket keeps working", async () => {
  const server = await startServer(["--norpc", "--public"]);
  try {
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    c.send("{not json");
    c.send("[1,2]");
    c.send(JSON.stringify({ command: "subscribe", identifier: { channel: "X" } }));
    c.send(JSON.stringify({ command: "fly", identifier: pub }));
    c.send(JSON.stringify({ command: "subscribe" }));
    c.ws.send(new Uint8Array([1, 2, 3]));
    c.send({ command: "subscribe", identifier: pub });
    await c.waitFor((f) => f.type === "confirm_subscription");
    const errors = c.frames.filter((f) => f.type === "error").map((f) => f.reason);
    assert.deepEqual(errors, [
      "invalid_message",
      "invalid_message",
      "invalid_message",
      "unknown_command",
      "invalid_message",
      "invalid_message",
    ]);
    // message data must be a string; history without a broker is rejected.
    c.send({ command: "message", identifier: pub, data: { action: "x" } });
    await c.waitFor((f) => f.message === "data must be a string");
    c.send({ command: "history", identifier: pub, history: { since: 1 } });
    await c.waitFor((f) => f.type === "reject_history");
    await server.broadcast({ stream: "chat", data: '"still alive"' });
    await c.waitFor((f) => f.message === "still alive");
    assert.ok(server.logs.some((l) => l.msg === "invalid client message"));
    await c.close();
  } finally {
    await server.stop();
  }
});

Deno.test("a message over max_message_size closes with 1009; others are unaffected", async () => {
  const server = await startServer(["--norpc", "--public", "--max_message_size=1024"]);
  try {
    const big = new WsClient(server.wsUrl);
    const other = new WsClient(server.wsUrl);
    await big.waitFor((f) => f.type === "welcome");
    other.send({ command: "subscribe", identifier: pub });
    await other.waitFor((f) => f.type === "confirm_subscription");
    big.send({ command: "message", identifier: pub, data: "x".repeat(2000) });
    const ev = await big.closed;
    assert.equal(ev.code, 1009);
    assert.ok(big.frames.some((f) => f.type === "disconnect" && f.reason === "message_too_big"));
    await server.broadcast({ stream: "chat", data: '"ok"' });
    await other.waitFor((f) => f.message === "ok");
    await other.close();
  } finally {
    await server.stop();
  }
});

Deno.test("a dead backend: connect gets a disconnect reason, the server keeps serving", async () => {
  // A port where nothing listens.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const server = await startServer([
    `--rpc_host=http://127.0.0.1:${port}/_anycable`,
    "--rpc_request_timeout=500",
  ]);
  try {
    const started = Date.now();
    const c = new WsClient(server.wsUrl);
    const msg = await c.waitFor((f) => f.type === "disconnect", 8000);
    assert.deepEqual(msg, { type: "disconnect", reason: "server_error", reconnect: true });
    const ev = await c.closed;
    assert.equal(ev.code, 1011);
    // Retried with backoff within the call budget (3 s), not forever.
    assert.ok(Date.now() - started < 6000);
    assert.ok(server.app.rpc!.stats.retries >= 2);
    assert.ok(server.logs.some((l) => l.msg === "Connect RPC failed"));
  } finally {
    await server.stop();
  }
});

Deno.test("a slow backend times out; garbage answers are errors; others still served", async () => {
  const rpc = new FakeRpc({
    connect: async (body) => {
      const url = (body.env as { url: string }).url;
      if (url.includes("slow")) await new Promise((r) => setTimeout(r, 1500));
      if (url.includes("garbage")) return new Response("<html>oops</html>", { status: 200 });
      if (url.includes("http500")) return new Response("boom", { status: 500 });
      if (url.includes("nostatus")) return { identifiers: "{}" };
      return { status: "SUCCESS", identifiers: "{}", transmissions: ['{"type":"welcome"}'] };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--rpc_request_timeout=300"]);
  try {
    const clients = ["slow", "garbage", "http500", "nostatus"].map((q) =>
      new WsClient(`${server.wsUrl}?${q}=1`)
    );
    const good = new WsClient(server.wsUrl);
    await good.waitFor((f) => f.type === "welcome");
    for (const c of clients) {
      const msg = await c.waitFor((f) => f.type === "disconnect", 8000);
      assert.equal(msg.reason, "server_error");
      await c.closed;
    }
    assert.ok(server.app.rpc!.stats.timeouts >= 1);
    assert.equal(good.ws.readyState, WebSocket.OPEN);
    await good.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("frames sent before Connect finishes wait for it and keep their order", async () => {
  const rpc = new FakeRpc({
    connect: async (_b, headers) => {
      await new Promise((r) => setTimeout(r, 300));
      return {
        status: 1,
        identifiers: "{}",
        transmissions: [
          JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") }),
        ],
      };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const c = new WsClient(server.wsUrl);
    await c.opened;
    for (let i = 0; i < 5; i++) {
      c.send({
        command: "subscribe",
        identifier: JSON.stringify({ channel: "C", stream: `s${i}` }),
      });
    }
    await c.waitForCount(6);
    assert.equal(c.messages[0].type, "welcome");
    assert.deepEqual(
      c.messages.slice(1).map((f) => JSON.parse(f.identifier as string).stream),
      ["s0", "s1", "s2", "s3", "s4"],
    );
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("origin check answers 403 without upgrading", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--allowed_origins=*.example.com,app.io:3000",
  ]);
  try {
    const ok = new WsClient(server.wsUrl, "actioncable-v1-json", {
      headers: { origin: "https://chat.example.com" },
    });
    await ok.waitFor((f) => f.type === "welcome");
    await ok.close();
    const ok2 = new WsClient(server.wsUrl, "actioncable-v1-json", {
      headers: { origin: "http://app.io:3000" },
    });
    await ok2.waitFor((f) => f.type === "welcome");
    await ok2.close();
    const res = await fetch(server.url + "/cable", {
      headers: { origin: "https://evil.com", upgrade: "websocket" },
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
  } finally {
    await server.stop();
  }
});
