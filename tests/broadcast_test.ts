import assert from "node:assert/strict";
import { deriveKey } from "../src/util/secrets.ts";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const id = (stream: string) => JSON.stringify({ channel: "C", stream });

async function subscribed(url: string, streams: string[]): Promise<WsClient> {
  const c = new WsClient(url);
  await c.waitFor((f) => f.type === "welcome");
  for (const s of streams) {
    c.send({ command: "subscribe", identifier: id(s) });
    await c.waitFor((f) => f.type === "confirm_subscription" && f.identifier === id(s));
  }
  return c;
}

Deno.test("HTTP broadcast: auth with the key derived from --secret, batches, raw strings", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--secret=qwerty"]);
  try {
    const key = await deriveKey("qwerty", "broadcast-cable");
    const c = await subscribed(server.wsUrl, ["a", "b"]);
    assert.equal((await server.broadcast({ stream: "a", data: "{}" }, "wrong")).status, 401);
    assert.equal((await server.broadcast({ stream: "a", data: "{}" }, "")).status, 401);
    const batch = [
      { stream: "a", data: JSON.stringify({ n: 1 }) },
      { stream: "b", data: "not json at all" },
      { stream: "a", data: JSON.stringify({ n: 2 }) },
    ];
    assert.equal((await server.broadcast(batch, key)).status, 201);
    await c.waitForCount(5);
    assert.deepEqual(c.messages.slice(3).map((m) => [m.identifier, m.message]), [
      [id("a"), { n: 1 }],
      [id("b"), "not json at all"],
      [id("a"), { n: 2 }],
    ]);
    // Wrong method and malformed bodies get defined answers.
    const get = await fetch(`${server.url}/_broadcast`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(get.status, 422);
    await get.body?.cancel();
    for (
      const body of ["nope", "{}", "[]", '{"stream":""}', '[{"data":"x"}]', '{"command":"fly"}']
    ) {
      const res = await server.broadcast(body, key);
      assert.equal(res.status, 400, body);
    }
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("HTTP broadcast: declared and chunked bodies parse alike; a length past 16 MiB is refused unread", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--secret=qwerty"]);
  try {
    const key = await deriveKey("qwerty", "broadcast-cable");
    const c = await subscribed(server.wsUrl, ["a"]);
    const post = (body: BodyInit, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/_broadcast`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, ...headers },
        body,
      });
    const chunked = (text: string) =>
      new ReadableStream<Uint8Array>({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode(text));
          ctl.close();
        },
      });
    // A declared length (a string body) and a chunked one (a stream) reach subscribers alike.
    let res = await post(JSON.stringify({ stream: "a", data: '{"via":"length"}' }));
    assert.equal(res.status, 201);
    res = await post(chunked(JSON.stringify({ stream: "a", data: '{"via":"chunks"}' })));
    assert.equal(res.status, 201);
    await c.waitForCount(4); // welcome, confirmation, two messages
    assert.deepEqual(c.messages.slice(2).map((m) => m.message), [{ via: "length" }, {
      via: "chunks",
    }]);
    // Not JSON: the same answer either way.
    for (const body of ["{nope", chunked("{nope")]) {
      res = await post(body);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { error: "body is not valid JSON" });
    }
    // A declared length past the limit: 413 before any of the body is read.
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(new URL(server.url).port),
    });
    await conn.write(new TextEncoder().encode(
      `POST /_broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${16 * 1024 * 1024 + 1}\r\n\r\n{"str`,
    ));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    conn.close();
    assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 413 /);
    // and the server goes on serving
    assert.equal((await server.broadcast({ stream: "a", data: "1" }, key)).status, 201);
    await c.waitFor((f) => f.message === 1);
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("exclude_socket skips the sender; two identifiers on one stream each get it", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const a = await subscribed(server.wsUrl, ["room"]);
    const b = new WsClient(server.wsUrl);
    const welcome = await b.waitFor((f) => f.type === "welcome");
    const twin = JSON.stringify({ channel: "Other", stream: "room" });
    b.send({ command: "subscribe", identifier: id("room") });
    b.send({ command: "subscribe", identifier: twin });
    await b.waitFor((f) => f.type === "confirm_subscription" && f.identifier === twin);
    await server.broadcast({ stream: "room", data: '"x"', meta: { exclude_socket: welcome.sid } });
    await server.broadcast({ stream: "room", data: '"y"' });
    await a.waitFor((f) => f.message === "y");
    assert.deepEqual(a.messages.filter((m) => m.message).map((m) => m.message), ["x", "y"]);
    await b.waitFor((f) => f.message === "y" && f.identifier === twin);
    assert.deepEqual(
      b.messages.filter((m) => m.message).map((m) => [m.message, m.identifier]).sort(),
      [["y", id("room")], ["y", twin]],
    );
    await Promise.all([a.close(), b.close()]);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("remote disconnect closes every matching session", async () => {
  const rpc = new FakeRpc({
    connect: (body) => ({
      status: 1,
      identifiers: (body.env as { url: string }).url.includes("u=1") ? '{"user":1}' : '{"user":2}',
      transmissions: ['{"type":"welcome"}'],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const u1a = new WsClient(`${server.wsUrl}?u=1`);
    const u1b = new WsClient(`${server.wsUrl}?u=1`);
    const u2 = new WsClient(`${server.wsUrl}?u=2`);
    await Promise.all([u1a, u1b, u2].map((c) => c.waitFor((f) => f.type === "welcome")));
    const res = await server.broadcast({
      command: "disconnect",
      payload: { identifier: '{"user":1}', reconnect: false },
    });
    assert.equal(res.status, 201);
    for (const c of [u1a, u1b]) {
      const msg = await c.waitFor((f) => f.type === "disconnect");
      assert.deepEqual(msg, { type: "disconnect", reason: "remote", reconnect: false });
      await c.closed;
    }
    assert.equal(u2.ws.readyState, WebSocket.OPEN);
    await u2.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("unsecured broadcasting listens on its own port", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const server = await startServer(["--norpc", "--public", `--http_broadcast_port=${port}`]);
  try {
    assert.equal(server.app.broadcastPort, port);
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    c.send({
      command: "subscribe",
      identifier: JSON.stringify({ channel: "$pubsub", stream_name: "p" }),
    });
    await c.waitFor((f) => f.type === "confirm_subscription");
    assert.equal((await server.broadcast({ stream: "p", data: '"hey"' })).status, 201);
    await c.waitFor((f) => f.message === "hey");
    const onMain = await fetch(`${server.url}/_broadcast`, { method: "POST", body: "{}" });
    assert.equal(onMain.status, 404);
    await onMain.body?.cancel();
    await c.close();
  } finally {
    await server.stop();
  }
});
