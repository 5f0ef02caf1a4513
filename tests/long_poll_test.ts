import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";

const pubsub = (stream: string) => JSON.stringify({ channel: "$pubsub", stream_name: stream });
const chat = JSON.stringify({ channel: "ChatChannel", stream: "room_1" });

interface PollResult {
  status: number;
  id: string | null;
  lines: Array<Record<string, unknown>>;
  ms: number;
}

/** One long-polling request: body = JSONL commands, answer = parsed JSONL lines. */
async function lp(
  server: TestServer,
  opts: { id?: string; commands?: unknown[]; signal?: AbortSignal } = {},
): Promise<PollResult> {
  const started = Date.now();
  const headers: Record<string, string> = {};
  if (opts.id) headers["x-anycable-poll-id"] = opts.id;
  const res = await fetch(`${server.url}/lp`, {
    method: "POST",
    headers,
    body: (opts.commands ?? []).map((c) => JSON.stringify(c)).join("\n"),
    signal: opts.signal,
  });
  const text = await res.text();
  assert.ok(
    text === "" || text.endsWith("\n"),
    `JSONL lines end with \\n: ${JSON.stringify(text)}`,
  );
  return {
    status: res.status,
    id: res.headers.get("x-anycable-poll-id"),
    lines: text.split("\n").filter(Boolean).map((l) => JSON.parse(l)),
    ms: Date.now() - started,
  };
}

/** Bounded wait for a condition the test cannot observe as an event. */

/** Waits until the server has held `n` polls (it logs each one at debug level). */
const pollsHeld = (server: TestServer, n: number) =>
  waitUntil(
    () => server.logs.filter((l) => l.msg === "long poll held").length >= n,
    `${n} held polls`,
  );

const FAST = ["--poll", "--poll_flush_interval=20", "--poll_keepalive_timeout=1"];

Deno.test("long polling: subscribe, receive a broadcast in a later poll, expire after keep-alive", async () => {
  const server = await startServer(["--public", ...FAST]);
  try {
    const open = await lp(server, {
      commands: [{ command: "subscribe", identifier: pubsub("chat") }],
    });
    assert.equal(open.status, 200);
    assert.ok(open.id);
    assert.deepEqual(open.lines.map((l) => l.type), ["welcome", "confirm_subscription"]);
    assert.equal(open.lines[1].identifier, pubsub("chat"));

    const held = lp(server, { id: open.id! });
    await server.broadcast({ stream: "chat", data: JSON.stringify({ text: "hi" }) });
    const got = await held;
    assert.equal(got.status, 200);
    assert.equal(got.id, open.id);
    assert.deepEqual(got.lines, [{ identifier: pubsub("chat"), message: { text: "hi" } }]);

    // Published between polls: waits for the next poll, which answers at once.
    await server.broadcast({ stream: "chat", data: JSON.stringify({ text: "later" }) });
    const next = await lp(server, { id: open.id! });
    assert.deepEqual(next.lines, [{ identifier: pubsub("chat"), message: { text: "later" } }]);
    assert.ok(next.ms < 500, `answered in ${next.ms} ms`);

    // The client stops polling: the session is gone after the keep-alive timeout.
    assert.equal(server.app.node.sessions.size, 1);
    await waitUntil(
      () => server.app.node.sessions.size === 0,
      "the session to expire",
      3000,
    );
    const late = await lp(server, { id: open.id! });
    assert.equal(late.status, 401);
    assert.deepEqual(late.lines, [
      { type: "disconnect", reason: "session_expired", reconnect: true },
    ]);
  } finally {
    await server.stop();
  }
});

Deno.test("long polling: RPC perform sends a Command; Disconnect RPC after the keep-alive", async () => {
  const rpc = new FakeRpc({
    command: (body) => {
      const identifier = body.identifier as string;
      if (body.command === "subscribe") {
        return {
          status: 1,
          streams: ["room_1"],
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      const data = JSON.parse(body.data as string);
      return {
        status: 1,
        transmissions: [JSON.stringify({ identifier, message: { echo: data.text } })],
      };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, ...FAST]);
  try {
    const open = await lp(server, { commands: [{ command: "subscribe", identifier: chat }] });
    assert.equal(open.status, 200);
    assert.deepEqual(open.lines.map((l) => l.type), ["welcome", "confirm_subscription"]);
    const connect = rpc.calls("connect")[0].body.env as Record<string, unknown>;
    assert.equal(connect.url, `${server.url}/lp`);

    const perform = await lp(server, {
      id: open.id!,
      commands: [{
        command: "message",
        identifier: chat,
        data: JSON.stringify({ action: "speak", text: "yo" }),
      }],
    });
    assert.deepEqual(perform.lines, [{ identifier: chat, message: { echo: "yo" } }]);
    const cmd = rpc.calls("command").find((r) => r.body.command === "message")!.body;
    assert.equal(cmd.identifier, chat);
    assert.equal(cmd.data, JSON.stringify({ action: "speak", text: "yo" }));
    assert.equal(cmd.connection_identifiers, JSON.stringify({ user: "anon" }));

    await server.broadcast({ stream: "room_1", data: JSON.stringify({ n: 1 }) });
    const pushed = await lp(server, { id: open.id! });
    assert.deepEqual(pushed.lines, [{ identifier: chat, message: { n: 1 } }]);

    await rpc.waitFor((reqs) => reqs.some((r) => r.method === "disconnect"), 4000);
    const disconnect = rpc.calls("disconnect")[0].body;
    assert.equal(disconnect.identifiers, JSON.stringify({ user: "anon" }));
    assert.deepEqual(disconnect.subscriptions, [chat]);
    assert.equal(server.app.node.sessions.size, 0);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("long polling: a newer poll takes over; an abandoned poll loses nothing", async () => {
  const server = await startServer(["--public", ...FAST]);
  try {
    const open = await lp(server, {
      commands: [{ command: "subscribe", identifier: pubsub("chat") }],
    });
    const id = open.id!;
    const older = lp(server, { id });
    await pollsHeld(server, 1);
    const newer = lp(server, { id, commands: [{ command: "unknown_noop" }] });
    const oldRes = await older;
    assert.equal(oldRes.status, 200);
    assert.ok(oldRes.ms < 1000, `older poll answered after ${oldRes.ms} ms`);
    const newRes = await newer;
    // The older one was answered empty; the newer got the reply to its own command.
    assert.deepEqual(oldRes.lines, []);
    assert.equal(newRes.lines[0].type, "error");

    // Abandon a held poll, publish, then poll again: the message waited.
    const ac = new AbortController();
    const abandoned = lp(server, { id, signal: ac.signal }).catch((e) => e.name);
    await pollsHeld(server, 3);
    ac.abort();
    assert.equal(await abandoned, "AbortError");
    await server.broadcast({ stream: "chat", data: JSON.stringify({ kept: true }) });
    const after = await lp(server, { id });
    assert.deepEqual(after.lines, [{ identifier: pubsub("chat"), message: { kept: true } }]);
  } finally {
    await server.stop();
  }
});

Deno.test("long polling: an idle poll ends after poll_interval with an empty body", async () => {
  const server = await startServer(["--public", "--poll", "--poll_interval=1"]);
  try {
    const open = await lp(server);
    assert.equal(open.status, 200);
    assert.deepEqual(open.lines.map((l) => l.type), ["welcome"]);
    assert.ok(open.ms < 1000, `first answer after ${open.ms} ms`);
    const idle = await lp(server, { id: open.id! });
    assert.equal(idle.status, 200);
    assert.deepEqual(idle.lines, []);
    assert.ok(idle.ms >= 950, `held ${idle.ms} ms`);
  } finally {
    await server.stop();
  }
});

Deno.test("long polling: 401 on rejected Connect and unknown id, 413, 405, OPTIONS", async () => {
  const rpc = new FakeRpc({
    connect: () => ({
      status: 2,
      transmissions: [
        JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
      ],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--poll"]);
  try {
    const denied = await lp(server);
    assert.equal(denied.status, 401);
    assert.equal(denied.id, null);
    assert.deepEqual(denied.lines, [
      { type: "disconnect", reason: "unauthorized", reconnect: false },
    ]);
    const unknown = await lp(server, { id: "nope" });
    assert.equal(unknown.status, 401);
    assert.deepEqual(unknown.lines, [
      { type: "disconnect", reason: "session_expired", reconnect: true },
    ]);
    const big = await fetch(`${server.url}/lp`, { method: "POST", body: "x".repeat(70_000) });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const get = await fetch(`${server.url}/lp`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST, OPTIONS");
    await get.body?.cancel();
    const pre = await fetch(`${server.url}/lp`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-headers": "x-anycable-poll-id",
      },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.match(pre.headers.get("access-control-allow-headers")!, /X-Anycable-Poll-ID/i);
    assert.match(pre.headers.get("access-control-expose-headers")!, /X-Anycable-Poll-ID/i);
    await pre.body?.cancel();
    assert.equal(server.app.node.sessions.size, 0);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("long polling: shutdown answers a held poll with server_restart", async () => {
  const server = await startServer(["--public", ...FAST]);
  let stopped = false;
  try {
    const open = await lp(server);
    const held = lp(server, { id: open.id! });
    await pollsHeld(server, 1);
    const stopping = server.stop();
    stopped = true;
    const res = await held;
    assert.deepEqual(res.lines, [{
      type: "disconnect",
      reason: "server_restart",
      reconnect: true,
    }]);
    await stopping;
    assert.equal(server.app.node.sessions.size, 0);
  } finally {
    if (!stopped) await server.stop();
  }
});

Deno.test("long polling: a session closed between polls hands its disconnect to the next poll", async () => {
  const server = await startServer(["--public", ...FAST]);
  try {
    const open = await lp(server);
    const sid = open.lines[0].sid as string;
    await server.broadcast({
      command: "disconnect",
      payload: { identifier: JSON.stringify({ sid }), reconnect: false },
    });
    await waitUntil(() => server.app.node.sessions.size === 0, "the remote disconnect");
    const next = await lp(server, { id: open.id! });
    assert.equal(next.status, 200);
    assert.deepEqual(next.lines, [{ type: "disconnect", reason: "remote", reconnect: false }]);
    const after = await lp(server, { id: open.id! });
    assert.equal(after.status, 401);
  } finally {
    await server.stop();
  }
});
