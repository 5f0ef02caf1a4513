/** Broker features end to end: positions, history, replay, session restore, pongs. */
import assert from "node:assert/strict";
import { createCable } from "@anycable/core";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

const EXT = "actioncable-v1-ext-json";
const chat = JSON.stringify({ channel: "ChatChannel", stream: "chat" });

async function connected(url: string, protocol = EXT): Promise<WsClient> {
  const c = new WsClient(url, protocol);
  await c.waitFor((f) => f.type === "welcome");
  return c;
}

async function subscribe(c: WsClient, identifier = chat, extra: Record<string, unknown> = {}) {
  c.send({ command: "subscribe", identifier, ...extra });
  await c.waitFor((f) => f.type === "confirm_subscription" && f.identifier === identifier);
}

const dataFrames = (c: WsClient) => c.frames.filter((f) => f.message !== undefined && !f.type);

for (const broker of ["memory", "kv"]) {
  Deno.test(`${broker} broker: ext and plain clients both get positions`, async () => {
    const rpc = new FakeRpc();
    const flags = [`--rpc_host=${rpc.url}`, `--broker=${broker}`];
    if (broker === "kv") flags.push("--kv_path=:memory:");
    const server = await startServer(flags);
    try {
      const ext = await connected(server.wsUrl);
      const plain = await connected(server.wsUrl, "actioncable-v1-json");
      await subscribe(ext);
      await subscribe(plain);
      for (let i = 1; i <= 3; i++) {
        await server.broadcast({ stream: "chat", data: JSON.stringify({ i }) });
      }
      await ext.waitFor((f) => (f.message as { i?: number })?.i === 3);
      await plain.waitFor((f) => (f.message as { i?: number })?.i === 3);
      const e = dataFrames(ext);
      assert.deepEqual(e.map((f) => f.offset), [1, 2, 3]);
      assert.ok(e.every((f) => f.stream_id === "chat" && typeof f.epoch === "string"));
      // The plain protocol carries positions too, as the reference does.
      assert.deepEqual(dataFrames(plain)[0], {
        identifier: chat,
        message: { i: 1 },
        stream_id: "chat",
        epoch: e[0].epoch,
        offset: 1,
      });
      // Transient publications carry no position.
      await server.broadcast({ stream: "chat", data: '"t"', meta: { transient: true } });
      const t = await ext.waitFor((f) => f.message === "t");
      assert.equal(t.offset, undefined);
      const tp = await plain.waitFor((f) => f.message === "t");
      assert.deepEqual(tp, { identifier: chat, message: "t" });

      // History by offset, by time, and its rejections.
      const epoch = e[0].epoch as string;
      const h = await connected(server.wsUrl);
      await subscribe(h);
      h.send({
        command: "history",
        identifier: chat,
        history: { streams: { chat: { epoch, offset: 1 } } },
      });
      await h.waitFor((f) => f.type === "confirm_history");
      assert.deepEqual(dataFrames(h).map((f) => f.offset), [2, 3]);
      h.send({
        command: "history",
        identifier: chat,
        history: { streams: { chat: { epoch: "nope", offset: 1 } } },
      });
      await h.waitFor((f) => f.type === "reject_history");
      h.send({
        command: "history",
        identifier: chat,
        history: { streams: { chat: { epoch, offset: 99 } } },
      });
      await h.waitFor((f) =>
        f.type === "reject_history" &&
        h.frames.filter((x) => x.type === "reject_history").length === 2
      );
      h.send({ command: "history", identifier: chat, history: { streams: { chat: "garbage" } } });
      h.send({
        command: "history",
        identifier: chat,
        history: { since: Math.floor(Date.now() / 1000) - 60 },
      });
      await h.waitFor(() => h.frames.filter((x) => x.type === "confirm_history").length === 2);
      assert.equal(h.frames.filter((x) => x.type === "reject_history").length, 3);
      // An explicit request gets what it asks for, even what this session already had.
      assert.deepEqual(dataFrames(h).map((f) => f.offset), [2, 3, 1, 2, 3]);
      const t2 = await connected(server.wsUrl);
      await subscribe(t2);
      t2.send({
        command: "history",
        identifier: chat,
        history: { since: Math.floor(Date.now() / 1000) - 60 },
      });
      await t2.waitFor((f) => f.type === "confirm_history");
      assert.deepEqual(dataFrames(t2).map((f) => f.offset), [1, 2, 3]);
      await t2.close();

      // Subscribe carrying history.
      const s = await connected(server.wsUrl);
      await subscribe(s, chat, { history: { streams: { chat: { epoch, offset: 2 } } } });
      await s.waitFor((f) => f.type === "confirm_history");
      assert.deepEqual(dataFrames(s).map((f) => f.offset), [3]);
      await Promise.all([ext.close(), plain.close(), h.close(), s.close()]);
    } finally {
      await server.stop();
      await rpc.stop();
    }
  });
}

Deno.test("messages published during a replay are neither lost nor duplicated", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
    "--history_limit=1000",
  ]);
  const pub = JSON.stringify({ channel: "$pubsub", stream_name: "race" });
  try {
    const batch = (from: number, n: number) =>
      Array.from(
        { length: n },
        (_, k) => ({ stream: "race", data: JSON.stringify({ n: from + k }) }),
      );
    await server.broadcast(batch(1, 200));
    for (let round = 0; round < 5; round++) {
      const c = await connected(server.wsUrl);
      c.send({
        command: "subscribe",
        identifier: pub,
        history: { since: Math.floor(Date.now() / 1000) - 60 },
      });
      // Publish while the subscription and its replay are being processed.
      const total = 200 + (round + 1) * 50;
      await server.broadcast(batch(total - 49, 50));
      await c.waitFor(() => dataFrames(c).some((f) => f.offset === total));
      const offsets = dataFrames(c).map((f) => f.offset as number);
      assert.deepEqual(offsets, Array.from({ length: total }, (_, i) => i + 1), `round ${round}`);
      await c.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("session restore: new sid, restored ids, streams back, no Connect call", async () => {
  const rpc = new FakeRpc({
    connect: (_b, headers) => ({
      status: 1,
      identifiers: '{"user":"bob"}',
      env: { cstate: { lang: "fr" } },
      transmissions: [JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") })],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--broker=memory"]);
  try {
    const first = await connected(server.wsUrl);
    const sid = first.frames[0].sid as string;
    await subscribe(first);
    await server.broadcast({ stream: "chat", data: '"one"' });
    const one = await first.waitFor((f) => f.message === "one");
    await first.close();

    await server.broadcast({ stream: "chat", data: '"two"' });
    const second = await connected(`${server.wsUrl}?sid=${sid}`);
    const welcome = second.frames[0];
    assert.equal(welcome.restored, true);
    assert.notEqual(welcome.sid, sid);
    assert.deepEqual(welcome.restored_ids, [chat]);
    assert.equal(rpc.calls("connect").length, 1);
    second.send({
      command: "history",
      identifier: chat,
      history: { streams: { chat: { epoch: one.epoch, offset: one.offset } } },
    });
    await second.waitFor((f) => f.message === "two");
    await server.broadcast({ stream: "chat", data: '"three"' });
    await second.waitFor((f) => f.message === "three");
    // Connection state survived: a command carries it.
    second.send({ command: "message", identifier: chat, data: "{}" });
    await rpc.waitFor((r) => r.some((x) => x.body.command === "message"));
    const msg = rpc.calls("command").find((x) => x.body.command === "message")!;
    assert.deepEqual((msg.body.env as Record<string, unknown>).cstate, { lang: "fr" });
    assert.equal(msg.body.connection_identifiers, '{"user":"bob"}');
    await second.close();

    // The header form works too; unknown and forged sids fall back to Connect.
    const third = new WsClient(server.wsUrl, EXT, {
      headers: { "X-ANYCABLE-RESTORE-SID": welcome.sid as string },
    });
    const w3 = await third.waitFor((f) => f.type === "welcome");
    assert.equal(w3.restored, true);
    await third.close();
    const forged = await connected(`${server.wsUrl}?sid=not-a-real-sid`);
    assert.equal(forged.frames[0].restored, undefined);
    assert.equal(rpc.calls("connect").length, 2);
    // Plain protocol never restores.
    const plain = await connected(`${server.wsUrl}?sid=${welcome.sid}`, "actioncable-v1-json");
    assert.equal(plain.frames[0].restored, undefined);
    await Promise.all([forged.close(), plain.close()]);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("@anycable/core restores its session after a network cut and catches up", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--presets=broker"]);
  const cable = createCable(server.wsUrl, {
    protocol: EXT,
    websocketImplementation: WebSocket,
    logLevel: Deno.env.get("AC_DEBUG") ? "debug" : "error",
  });
  try {
    const channel = cable.subscribeTo("ChatChannel", { stream: "chat" });
    await channel.ensureSubscribed();
    const got: unknown[] = [];
    channel.on("message", (m: unknown) => got.push(m));
    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 1 }) });
    await waitUntil(() => got.length === 1);
    // Cut the transport without a disconnect message, like a lost network.
    const [session] = [...server.app.node.sessions.values()];
    session.conn.close(4000, "network cut");
    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 2 }) });
    // The client reconnects after its own backoff (a few seconds, randomized).
    await waitUntil(() => got.length === 2, "the restored delivery", 20000);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    assert.equal(rpc.calls("connect").length, 1, "restored without a Connect call");
  } finally {
    cable.disconnect();
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("pong timeout disconnects ext clients that stay silent", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--ping_interval=1",
    "--pong_timeout=1",
  ]);
  try {
    const silent = await connected(server.wsUrl);
    const polite = await connected(server.wsUrl);
    const pinger = setInterval(() => polite.send({ command: "pong" }), 300);
    const msg = await silent.waitFor((f) => f.type === "disconnect", 6000);
    assert.deepEqual(msg, { type: "disconnect", reason: "no_pong", reconnect: true });
    clearInterval(pinger);
    assert.equal(polite.ws.readyState, WebSocket.OPEN);
    assert.ok(polite.frames.some((f) => f.type === "ping"));
    await polite.close();
  } finally {
    await server.stop();
  }
});

Deno.test("per-client ping interval and precision", async () => {
  const server = await startServer(["--norpc", "--noauth"]);
  try {
    const c = await connected(`${server.wsUrl}?pi=1&ptp=ms`, "actioncable-v1-json");
    const ping = await c.waitFor((f) => f.type === "ping", 3000);
    assert.ok(Math.abs((ping.message as number) - Date.now()) < 5000);
    const none = await connected(`${server.wsUrl}?pi=0`, "actioncable-v1-json");
    await c.waitFor(() => c.frames.filter((f) => f.type === "ping").length >= 2, 3000);
    assert.equal(none.frames.some((f) => f.type === "ping"), false);
    await Promise.all([c.close(), none.close()]);
  } finally {
    await server.stop();
  }
});
