import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { rawHandshake, WsClient } from "./support/ws_client.ts";

const chat = (stream = "chat_1") => JSON.stringify({ channel: "ChatChannel", stream });

Deno.test("subprotocol negotiation: server preference, never a token, upgrade without match", async () => {
  const server = await startServer(["--norpc", "--noauth"]);
  try {
    const both = new WsClient(server.wsUrl, ["actioncable-v1-ext-json", "actioncable-v1-json"]);
    await both.opened;
    assert.equal(both.ws.protocol, "actioncable-v1-json");
    const ext = new WsClient(server.wsUrl, ["actioncable-v1-ext-json", "anycable-token.abc"]);
    await ext.opened;
    assert.equal(ext.ws.protocol, "actioncable-v1-ext-json");
    const none = new WsClient(server.wsUrl, []);
    await none.opened;
    assert.equal(none.ws.protocol, "");
    await none.waitFor((f) => f.type === "welcome");
    const raw = await rawHandshake(server.app.port, "/cable", {
      "Sec-WebSocket-Protocol":
        "actioncable-unsupported,actioncable-v1-ext-json , anycable-token.x",
    });
    assert.equal(raw.status, 101);
    assert.equal(raw.headers.get("sec-websocket-protocol"), "actioncable-v1-ext-json");
    assert.ok(raw.headers.get("x-anycable-version"));
    const token = await rawHandshake(server.app.port, "/cable", {
      "Sec-WebSocket-Protocol": "anycable-token.abc",
    });
    assert.equal(token.status, 101);
    assert.equal(token.headers.get("sec-websocket-protocol"), null);
    await Promise.all([both.close(), ext.close(), none.close()]);
  } finally {
    await server.stop();
  }
});

Deno.test("connect, subscribe, perform, unsubscribe against an RPC backend", async () => {
  const rpc = new FakeRpc({
    command: (body) => {
      const identifier = body.identifier as string;
      if (body.command === "subscribe") {
        return {
          status: 1,
          streams: ["chat_1"],
          env: { istate: { room: "1" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      if (body.command === "message") {
        const data = JSON.parse(body.data as string);
        return {
          status: 1,
          env: { istate: { last: data.action }, cstate: { count: "1" } },
          transmissions: [JSON.stringify({ identifier, message: { echo: data.text } })],
        };
      }
      return { status: 1 };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--headers=cookie,x-api-token"]);
  try {
    const client = new WsClient(server.wsUrl, "actioncable-v1-json", {
      headers: { cookie: "session=42", "x-api-token": "t0k", "x-ignored": "no" },
    });
    await client.waitFor((f) => f.type === "welcome");
    client.send({ command: "subscribe", identifier: chat() });
    await client.waitFor((f) => f.type === "confirm_subscription");
    client.send({
      command: "message",
      identifier: chat(),
      data: JSON.stringify({ action: "speak", text: "hello" }),
    });
    const echo = await client.waitFor((f) => f.message !== undefined);
    assert.deepEqual(echo, { identifier: chat(), message: { echo: "hello" } });
    // The broadcast reaches the subscriber.
    assert.equal(
      (await server.broadcast({ stream: "chat_1", data: JSON.stringify({ n: 1 }) })).status,
      201,
    );
    await client.waitFor((f) => (f.message as { n?: number })?.n === 1);
    client.send({ command: "unsubscribe", identifier: chat() });
    await rpc.waitFor((r) => r.some((x) => x.body.command === "unsubscribe"));
    await client.close();
    await rpc.waitFor((r) => r.some((x) => x.method === "disconnect"));

    const [connect] = rpc.calls("connect");
    assert.deepEqual(Object.keys(connect.body), ["env"]);
    const env = connect.body.env as Record<string, unknown>;
    assert.match(env.url as string, /^http:\/\/127\.0\.0\.1:\d+\/cable$/);
    assert.deepEqual(env.headers, {
      cookie: "session=42",
      "x-api-token": "t0k",
      REMOTE_ADDR: "127.0.0.1",
    });
    assert.ok(connect.headers.get("x-anycable-meta-sid"));
    assert.equal(connect.headers.get("content-type"), "application/json");

    const commands = rpc.calls("command");
    assert.deepEqual(commands[0].body, {
      command: "subscribe",
      identifier: chat(),
      connection_identifiers: JSON.stringify({ user: "anon" }),
      env: { url: env.url, headers: env.headers },
    });
    assert.deepEqual(commands[1].body, {
      command: "message",
      identifier: chat(),
      connection_identifiers: JSON.stringify({ user: "anon" }),
      data: JSON.stringify({ action: "speak", text: "hello" }),
      env: { url: env.url, headers: env.headers, istate: { room: "1" } },
    });
    assert.deepEqual(commands[2].body, {
      command: "unsubscribe",
      identifier: chat(),
      connection_identifiers: JSON.stringify({ user: "anon" }),
      env: {
        url: env.url,
        headers: env.headers,
        cstate: { count: "1" },
        istate: { room: "1", last: "speak" },
      },
    });
    const [disconnect] = rpc.calls("disconnect");
    assert.deepEqual(disconnect.body, {
      identifiers: JSON.stringify({ user: "anon" }),
      subscriptions: [],
      env: { url: env.url, headers: env.headers, cstate: { count: "1" } },
    });
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("channel state is kept between commands and sent on disconnect", async () => {
  const rpc = new FakeRpc({
    command: (body) => {
      const identifier = body.identifier as string;
      if (body.command === "subscribe") {
        return {
          status: 1,
          streams: ["s1", "s2"],
          env: { istate: { a: "1", b: "2" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      // Deleting a key with an empty string, and stopping one stream.
      return { status: 1, env: { istate: { a: "" } }, stopped_streams: ["s1"] };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const client = new WsClient(server.wsUrl);
    await client.waitFor((f) => f.type === "welcome");
    client.send({ command: "subscribe", identifier: chat() });
    await client.waitFor((f) => f.type === "confirm_subscription");
    client.send({ command: "message", identifier: chat(), data: "{}" });
    await rpc.waitFor((r) => r.filter((x) => x.method === "command").length === 2);
    // s1 was stopped, s2 still delivers.
    await server.broadcast({ stream: "s1", data: '"one"' });
    await server.broadcast({ stream: "s2", data: '"two"' });
    const got = await client.waitFor((f) => f.message === "two");
    assert.ok(got);
    assert.equal(client.frames.some((f) => f.message === "one"), false);
    await client.close();
    await rpc.waitFor((r) => r.some((x) => x.method === "disconnect"));
    const [disconnect] = rpc.calls("disconnect");
    assert.deepEqual(disconnect.body.subscriptions, [chat()]);
    assert.deepEqual((disconnect.body.env as Record<string, unknown>).istate, {
      [chat()]: JSON.stringify({ b: "2" }),
    });
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("rejected connection and rejected subscription", async () => {
  const rpc = new FakeRpc({
    connect: (_b, headers) =>
      headers.get("x-anycable-meta-sid") && _b.env && JSON.stringify(_b.env).includes("bad")
        ? {
          status: 2,
          transmissions: [
            JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
          ],
        }
        : { status: 1, identifiers: "{}", transmissions: [JSON.stringify({ type: "welcome" })] },
    command: (body) => ({
      status: 2,
      transmissions: [JSON.stringify({ identifier: body.identifier, type: "reject_subscription" })],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const bad = new WsClient(`${server.wsUrl}?token=bad`);
    const msg = await bad.waitFor((f) => f.type === "disconnect");
    assert.deepEqual(msg, { type: "disconnect", reason: "unauthorized", reconnect: false });
    await bad.closed;
    const good = new WsClient(server.wsUrl);
    await good.waitFor((f) => f.type === "welcome");
    good.send({ command: "subscribe", identifier: chat() });
    await good.waitFor((f) => f.type === "reject_subscription");
    // The rejected subscription does not exist: a message for it is ignored.
    good.send({ command: "message", identifier: chat(), data: "{}" });
    good.send({ command: "subscribe", identifier: chat("x") });
    await good.waitFor((f) => f.type === "reject_subscription" && f.identifier === chat("x"));
    assert.equal(rpc.calls("command").filter((c) => c.body.command === "message").length, 0);
    await good.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("RPC auth key: explicit, derived from --secret; --norpc rejects connections", async () => {
  const { deriveKey } = await import("../src/util/secrets.ts");
  const rpc = new FakeRpc();
  const explicit = await startServer([`--rpc_host=${rpc.url}`, "--http_rpc_secret=abc"]);
  const derived = await startServer([`--rpc_host=${rpc.url}`, "--secret=qwerty"]);
  const norpc = await startServer(["--norpc"]);
  try {
    for (const s of [explicit, derived]) {
      const c = new WsClient(s.wsUrl);
      await c.waitFor((f) => f.type === "welcome");
      await c.close();
    }
    const auth = rpc.calls("connect").map((r) => r.headers.get("authorization"));
    assert.deepEqual(auth, ["Bearer abc", `Bearer ${await deriveKey("qwerty", "rpc-cable")}`]);
    assert.ok(rpc.calls("connect").every((r) => r.headers.get("x-anycable-meta-protov") === "v1"));
    const c = new WsClient(norpc.wsUrl);
    assert.deepEqual(await c.waitFor((f) => f.type === "disconnect"), {
      type: "disconnect",
      reason: "unauthorized",
      reconnect: false,
    });
    await c.closed;
  } finally {
    await Promise.all([explicit.stop(), derived.stop(), norpc.stop()]);
    await rpc.stop();
  }
});

Deno.test("X-Request-ID becomes the sid; the sid is sent to RPC", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const c = new WsClient(server.wsUrl, "actioncable-v1-json", {
      headers: { "x-request-id": "req-123" },
    });
    const welcome = await c.waitFor((f) => f.type === "welcome");
    assert.equal(welcome.sid, "req-123");
    assert.equal(rpc.calls("connect")[0].headers.get("x-anycable-meta-sid"), "req-123");
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("Disconnect calls are rate-limited while serving", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--disconnect_rate=5"]);
  try {
    const clients = Array.from({ length: 6 }, () => new WsClient(server.wsUrl));
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === "welcome")));
    const started = Date.now();
    await Promise.all(clients.map((c) => c.close()));
    await rpc.waitFor((r) => r.filter((x) => x.method === "disconnect").length === 6);
    // 6 calls at 5/s take at least one second.
    assert.ok(Date.now() - started >= 900, `took ${Date.now() - started} ms`);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});
