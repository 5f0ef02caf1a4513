import assert from "node:assert/strict";
import { issueToken } from "../src/identity/jwt.ts";
import { defaultCommand, FakeRpc } from "./support/fake_rpc.ts";
import { RawWs } from "./support/raw_ws.ts";
import { startServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";
import { WsClient } from "./support/ws_client.ts";

/** Hostile and careless clients: each test drives one abuse path over real sockets. */

const EXT = "actioncable-v1-ext-json";
const lobby = JSON.stringify({ channel: "$pubsub", stream_name: "lobby" });
type Frame = Record<string, unknown>;
const presenceEvents = (c: WsClient) =>
  c.frames.filter((f) => f.type === "presence" && (f.message as Frame)?.type === "join");

Deno.test("presence riding on subscribe is validated like join", async () => {
  const server = await startServer(["--norpc", "--public", "--broker=memory"]);
  try {
    const watcher = new WsClient(server.wsUrl, EXT);
    await watcher.waitFor((f) => f.type === "welcome");
    watcher.send({ command: "subscribe", identifier: lobby });
    await watcher.waitFor((f) => f.type === "confirm_subscription");

    const bad: unknown[] = [{ id: { evil: 1 }, info: "x" }, { id: 42 }, { info: "no id" }, "str", {
      id: "",
    }, { id: "x".repeat(256) }];
    for (const presence of bad) {
      for (const command of ["subscribe", "join"]) {
        const c = new WsClient(server.wsUrl, EXT);
        await c.waitFor((f) => f.type === "welcome");
        if (command === "join") {
          c.send({ command: "subscribe", identifier: lobby });
          await c.waitFor((f) => f.type === "confirm_subscription");
        }
        c.send({ command, identifier: lobby, presence });
        const err = await c.waitFor((f) => f.type === "error");
        assert.equal(err.reason, "invalid_message", `${command} ${JSON.stringify(presence)}`);
        assert.equal(err.identifier, lobby);
        assert.match(String(err.message), /presence needs an "id" string/);
        if (command === "subscribe") {
          // The subscription itself stands; only the presence part is refused.
          await c.waitFor((f) => f.type === "confirm_subscription");
        }
        await c.close();
      }
    }
    // A good one still joins, and it is the only join anyone saw.
    const good = new WsClient(server.wsUrl, EXT);
    await good.waitFor((f) => f.type === "welcome");
    good.send({ command: "subscribe", identifier: lobby, presence: { id: "alice", info: 1 } });
    await watcher.waitFor((f) => (f.message as Frame)?.type === "join");
    assert.deepEqual(presenceEvents(watcher).map((f) => (f.message as Frame).id), ["alice"]);
    watcher.send({ command: "presence", identifier: lobby, data: { return_records: true } });
    const info = await watcher.waitFor((f) => (f.message as Frame)?.type === "info");
    assert.deepEqual(info.message, { type: "info", total: 1, records: [{ id: "alice", info: 1 }] });
    assert.ok(server.logs.some((l) => String(l.msg).startsWith("subscribe refused")));
    await Promise.all([watcher.close(), good.close()]);
  } finally {
    await server.stop();
  }
});

Deno.test("whisper and join without permission are answered with an error and logged at info", async () => {
  // The backend confirms the subscription without $w/$p state: neither is allowed.
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--broker=memory"], "info");
  try {
    const id = JSON.stringify({ channel: "RoomChannel", stream: "room" });
    const c = new WsClient(server.wsUrl, EXT);
    await c.waitFor((f) => f.type === "welcome");
    c.send({ command: "subscribe", identifier: id });
    await c.waitFor((f) => f.type === "confirm_subscription");
    c.send({ command: "whisper", identifier: id, data: { typing: true } });
    const w = await c.waitFor((f) => f.type === "error");
    assert.deepEqual(w, {
      type: "error",
      identifier: id,
      reason: "forbidden",
      message: "whisper is not allowed for this subscription",
    });
    c.send({ command: "join", identifier: id, presence: { id: "bob" } });
    await c.waitFor((f) => f.type === "error" && f.message !== w.message);
    c.send({ command: "whisper", identifier: "nope", data: {} });
    await c.waitFor((f) => f.message === "whisper for an unknown subscription");
    const refused = server.logs.filter((l) => String(l.msg).includes("refused"));
    assert.deepEqual(refused.map((l) => [l.level, l.reason]), [
      ["info", "forbidden"],
      ["info", "forbidden"],
      ["info", "forbidden"],
    ]);
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("?pi= is clamped and validated; distinct intervals share one clock", async () => {
  const server = await startServer(["--norpc", "--public"]);
  try {
    // Far past setTimeout's 2^31 ms range: used to become a 1 ms interval.
    const huge = new WsClient(`${server.wsUrl}?pi=30000000`);
    const fast = new WsClient(`${server.wsUrl}?pi=1&ptp=ms`);
    const junk = new WsClient(`${server.wsUrl}?pi=1e9&ptp=zz`);
    await Promise.all([huge, fast, junk].map((c) => c.waitFor((f) => f.type === "welcome")));
    const distinct = Array.from(
      { length: 40 },
      (_, i) => new WsClient(`${server.wsUrl}?pi=${100_000_000 + i}`),
    );
    await Promise.all(distinct.map((c) => c.waitFor((f) => f.type === "welcome")));
    const started = Date.now();
    await waitUntil(
      () => fast.frames.filter((f) => f.type === "ping").length >= 2,
      "2 pings",
      6000,
    );
    const elapsed = Date.now() - started;
    // pi=1: about one ping a second, in milliseconds (ptp=ms).
    const pings = fast.frames.filter((f) => f.type === "ping");
    assert.ok(pings.length <= Math.ceil(elapsed / 1000) + 2, `${pings.length} in ${elapsed} ms`);
    assert.ok((pings[0].message as number) > 1e12);
    // Clamped to an hour: no pings at all within the test.
    assert.equal(huge.frames.filter((f) => f.type === "ping").length, 0);
    assert.equal(distinct.flatMap((c) => c.frames).filter((f) => f.type === "ping").length, 0);
    // Not a number: the server's 3 s default and precision (seconds).
    const p = await junk.waitFor((f) => f.type === "ping", 6000);
    assert.ok((p.message as number) < 1e11);
    await Promise.all([huge, fast, junk, ...distinct].map((c) => c.close()));
  } finally {
    await server.stop();
  }
});

/** A chunked upload of `chunks` × 1 MiB that counts how many chunks the server pulled. */
function chunkedBody(chunks: number): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  const body = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (pulled === chunks) return ctl.close();
      pulled++;
      ctl.enqueue(chunk);
      await new Promise((r) => setTimeout(r, 2));
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => pulled };
}

Deno.test("chunked bodies past the limit get 413 without being read to the end", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--sse",
    "--poll",
    "--poll_max_request_size=1048576",
  ]);
  try {
    const cases: Array<[string, Record<string, string>]> = [
      // /_broadcast takes up to 16 MiB; SSE POST 64 KiB; long polling 1 MiB here.
      [`${server.url}/_broadcast`, { authorization: "Bearer test-key" }],
      [`${server.url}/events`, {}],
      [`${server.url}/lp`, {}],
    ];
    for (const [url, headers] of cases) {
      const { body, pulled } = chunkedBody(60);
      const res = await fetch(url, { method: "POST", headers, body });
      await res.body?.cancel();
      assert.equal(res.status, 413, url);
      // Kernel buffers let a few more chunks through; never the whole 60 MiB.
      assert.ok(pulled() < 40, `${url}: ${pulled()} of 60 chunks read`);
    }
    // The server still serves.
    assert.equal((await server.broadcast({ stream: "s", data: "1" })).status, 201);
  } finally {
    await server.stop();
  }
});

Deno.test("one client cannot flood the log; the metrics still count every bad frame", async () => {
  const server = await startServer(["--norpc", "--public"]);
  try {
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    const n = 2000;
    for (let i = 0; i < n; i++) c.send("{bad");
    c.send({ command: "subscribe", identifier: lobby });
    await c.waitFor((f) => f.type === "confirm_subscription", 20_000);
    assert.equal(c.frames.filter((f) => f.reason === "invalid_message").length, n);
    assert.equal(server.app.node.stats.failedClientMessages, n);
    const mine = () => server.logs.filter((l) => l.sid === c.frames[0].sid);
    // 20 lines per 10 s window (a slow run may open a second window: one summary, 20 more).
    assert.ok(mine().length <= 41, `${mine().length} lines`);
    await c.close();
    // Closing writes the summary of what was dropped.
    await waitUntil(() => mine().some((l) => l.msg === "log lines suppressed"), "the summary");
    const suppressed = mine().filter((l) => l.msg === "log lines suppressed")
      .reduce((sum, l) => sum + (l.suppressed as number), 0);
    assert.ok(suppressed >= n - 40 && suppressed <= n, `suppressed ${suppressed}`);
  } finally {
    await server.stop();
  }
});

Deno.test("X-Request-ID never takes over a live or cached session's sid", async () => {
  const server = await startServer(["--norpc", "--public", "--broker=memory"]);
  const connect = async (headers: Record<string, string>, query = "") => {
    const c = new WsClient(`${server.wsUrl}${query}`, EXT, { headers });
    const welcome = await c.waitFor((f) => f.type === "welcome");
    return { c, welcome };
  };
  try {
    // A plain token becomes the sid, as in the reference.
    const victim = await connect({ "x-request-id": "req-victim" });
    assert.equal(victim.welcome.sid, "req-victim");
    victim.c.send({ command: "subscribe", identifier: lobby });
    await victim.c.waitFor((f) => f.type === "confirm_subscription");
    // In use: another sid.
    const live = await connect({ "x-request-id": "req-victim" });
    assert.notEqual(live.welcome.sid, "req-victim");
    await live.c.close();
    await victim.c.close();
    // Cached (the victim may come back): another sid, and the request id stays in the logs.
    const thief = await connect({ "x-request-id": "req-victim" });
    assert.notEqual(thief.welcome.sid, "req-victim");
    assert.equal(thief.welcome.restored, undefined);
    assert.ok(
      server.logs.some((l) =>
        l.sid === thief.welcome.sid && l.request_id === "req-victim" &&
        String(l.msg).includes("cached session")
      ),
    );
    await thief.c.close();
    // Not a plain token: generated.
    const odd = await connect({ "x-request-id": "a b<script>" + "x".repeat(80) });
    assert.match(String(odd.welcome.sid), /^[A-Za-z0-9_-]{8,}$/);
    await odd.c.close();
    // The victim still restores its own session.
    const back = await connect({}, "?sid=req-victim");
    assert.equal(back.welcome.restored, true);
    assert.deepEqual(back.welcome.restored_ids, [lobby]);
    await back.c.close();
  } finally {
    await server.stop();
  }
});

Deno.test("a session is not restored past the expiry of the JWT that authenticated it", async () => {
  const secret = "restore-secret";
  const rpc = new FakeRpc();
  const server = await startServer([
    `--rpc_host=${rpc.url}`,
    `--jwt_secret=${secret}`,
    "--broker=memory",
  ]);
  try {
    const id = JSON.stringify({ channel: "RoomChannel", stream: "room" });
    const token = await issueToken({ user: "u1" }, secret, 2);
    const expiresAt = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")))
      .exp * 1000;
    const first = new WsClient(`${server.wsUrl}?jid=${token}`, EXT);
    const welcome = await first.waitFor((f) => f.type === "welcome");
    first.send({ command: "subscribe", identifier: id });
    await first.waitFor((f) => f.type === "confirm_subscription");
    await first.close();
    // Before the expiry the session restores (no Connect call)...
    const early = new WsClient(`${server.wsUrl}?jid=${token}&sid=${welcome.sid}`, EXT);
    const restored = await early.waitFor((f) => f.type === "welcome");
    assert.equal(restored.restored, true);
    await early.close();
    // ...after it, not: the token is checked again and refused.
    await waitUntil(() => Date.now() >= expiresAt + 50, "token expiry", 5000);
    const late = new WsClient(`${server.wsUrl}?jid=${token}&sid=${restored.sid}`, EXT);
    const refused = await late.waitFor((f) => f.type === "disconnect");
    assert.equal(refused.reason, "token_expired");
    assert.ok(!late.frames.some((f) => f.type === "welcome"));
    await late.closed;
    assert.equal(rpc.calls("connect").length, 0);
    assert.ok(server.logs.some((l) => String(l.msg).includes("credential has expired")));
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("a client that sends faster than its commands are processed is cut off", async () => {
  // A slow backend: each perform takes 100 ms, so frames pile up behind it.
  const rpc = new FakeRpc({
    command: async (body) => {
      if (body.command === "message") await new Promise((r) => setTimeout(r, 100));
      return defaultCommand(body, new Headers());
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const id = JSON.stringify({ channel: "RoomChannel", stream: "room" });
    const [flood, calm] = [new WsClient(server.wsUrl), new WsClient(server.wsUrl)];
    for (const c of [flood, calm]) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    // A burst within the limit is fine: 20 performs queue and all run.
    for (let i = 0; i < 20; i++) {
      calm.send({ command: "message", identifier: id, data: JSON.stringify({ i }) });
    }
    // 200 frames of 16 KB: 3.2 MB waiting behind a 100 ms call.
    const data = JSON.stringify({ action: "x", pad: "p".repeat(16_000) });
    for (let i = 0; i < 200; i++) flood.send({ command: "message", identifier: id, data });
    const bye = await flood.waitFor((f) => f.type === "disconnect", 10_000);
    assert.deepEqual(bye, { type: "disconnect", reason: "too_many_requests", reconnect: true });
    await flood.closed;
    await rpc.waitFor((r) => r.filter((x) => x.body.command === "message").length >= 20, 10_000);
    const performs = rpc.calls("command").filter((r) => r.body.command === "message");
    // The flood got at most a handful through (1 MiB / 16 KB frames), and the calm client all.
    assert.ok(performs.length < 20 + 70, `${performs.length} performs`);
    assert.ok(server.logs.some((l) => l.msg === "too many commands waiting, disconnecting"));
    await calm.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("protocol violations the runtime drops are logged; the session is cleaned up", async () => {
  const server = await startServer(["--norpc", "--public"], "info");
  try {
    const port = Number(new URL(server.url).port);
    const other = new WsClient(server.wsUrl);
    await other.waitFor((f) => f.type === "welcome");
    other.send({ command: "subscribe", identifier: lobby });
    await other.waitFor((f) => f.type === "confirm_subscription");
    const violations: Array<[string, (ws: RawWs) => Promise<void>]> = [
      ["Invalid UTF-8", (ws) => ws.sendFrame(0x1, new Uint8Array([0xff, 0xfe, 0x7b]))],
      ["reserved opcode", (ws) => ws.sendFrame(0x3, new Uint8Array([1]))],
      ["stray continuation", (ws) => ws.sendFrame(0x0, new Uint8Array([1]))],
    ];
    for (const [what, violate] of violations) {
      const ws = await RawWs.connect(port);
      await ws.until((t) => t.includes("welcome"));
      await violate(ws);
      // The runtime ends the TCP connection without a close frame.
      assert.equal(await ws.next(), null, what);
      ws.close();
    }
    await waitUntil(() => server.app.node.sessions.size === 1, "sessions cleaned up");
    const logged = server.logs.filter((l) => String(l.msg).includes("protocol violation"));
    assert.equal(logged.length, 3);
    assert.equal(logged[0].error, "Invalid UTF-8");
    await server.broadcast({ stream: "lobby", data: '"still here"' });
    await other.waitFor((f) => f.message === "still here");
    await other.close();
  } finally {
    await server.stop();
  }
});
