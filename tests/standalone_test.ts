/** Standalone mode: JWT, signed/public/Turbo streams, whispers, presence, broadcast to others. */
import assert from "node:assert/strict";
import { createCable } from "@anycable/core";
import { issueToken, signJwt } from "../src/identity/jwt.ts";
import { signStream } from "../src/identity/signed_stream.ts";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

const SECRET = "standalone-secret";
const EXT = "actioncable-v1-ext-json";

Deno.test("@anycable/core with a JWT and signed streams: no request reaches the backend", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, "--norpc", `--secret=${SECRET}`]);
  const token = await issueToken({ user_id: 42 }, SECRET, 300);
  const cable = createCable(`${server.wsUrl}?jid=${token}`, {
    protocol: EXT,
    websocketImplementation: WebSocket,
    logLevel: "error",
  });
  try {
    const channel = cable.streamFromSigned(await signStream("room/1", SECRET));
    await channel.ensureSubscribed();
    const got: unknown[] = [];
    channel.on("message", (m: unknown) => got.push(m));
    await server.broadcast(
      { stream: "room/1", data: JSON.stringify({ hi: 1 }) },
      await broadcastKey(),
    );
    await waitUntil(() => got.length === 1);
    assert.deepEqual(got, [{ hi: 1 }]);
    const session = [...server.app.node.sessions.values()][0];
    assert.equal(session.identifiers, JSON.stringify({ user_id: 42 }));
    // A tampered signed stream is rejected.
    const bad = cable.streamFromSigned((await signStream("room/2", SECRET)).slice(0, -2) + "00");
    await assert.rejects(bad.ensureSubscribed());
    assert.equal(rpc.requests.length, 0);
  } finally {
    cable.disconnect();
    await server.stop();
    await rpc.stop();
  }
});

async function broadcastKey(): Promise<string> {
  const { deriveKey } = await import("../src/util/secrets.ts");
  return deriveKey(SECRET, "broadcast-cable");
}

Deno.test("JWT: header, subprotocol, expired, forged, alg none, enforced", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([`--rpc_host=${rpc.url}`, `--jwt_secret=${SECRET}`]);
  try {
    const good = await issueToken({ user: "h" }, SECRET, 60);
    const viaHeader = new WsClient(server.wsUrl, "actioncable-v1-json", {
      headers: { "X-JID": good },
    });
    assert.equal((await viaHeader.waitFor((f) => f.type === "welcome")).type, "welcome");
    const viaProtocol = new WsClient(server.wsUrl, [
      "actioncable-v1-json",
      `anycable-token.${good}`,
    ]);
    await viaProtocol.waitFor((f) => f.type === "welcome");
    assert.equal(viaProtocol.ws.protocol, "actioncable-v1-json");
    assert.equal(rpc.calls("connect").length, 0);

    const expired = await issueToken({ user: "e" }, SECRET, 10, Date.now() - 60_000);
    const e = new WsClient(`${server.wsUrl}?jid=${expired}`);
    assert.deepEqual(await e.waitFor((f) => f.type === "disconnect"), {
      type: "disconnect",
      reason: "token_expired",
      reconnect: false,
    });
    const forged = await issueToken({ user: "f" }, "other-key", 60);
    const f = new WsClient(`${server.wsUrl}?jid=${forged}`);
    assert.equal((await f.waitFor((x) => x.type === "disconnect")).reason, "unauthorized");
    const none = [
      btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, ""),
      btoa(JSON.stringify({ ext: '{"user":"x"}' })).replace(/=+$/, ""),
      "",
    ].join(".");
    const n = new WsClient(`${server.wsUrl}?jid=${none}`);
    assert.equal((await n.waitFor((x) => x.type === "disconnect")).reason, "unauthorized");
    // Without a token the backend is asked, as usual.
    const anon = new WsClient(server.wsUrl);
    await anon.waitFor((x) => x.type === "welcome");
    assert.equal(rpc.calls("connect").length, 1);
    // The JWT header is forwarded to RPC only when configured; here, identifiers came from ext.
    const noExt = await signJwt({ sub: "x" }, SECRET);
    const ne = new WsClient(`${server.wsUrl}?jid=${noExt}`);
    assert.equal((await ne.closed).code, 1011);
    await Promise.all([viaHeader.close(), viaProtocol.close(), anon.close()]);
  } finally {
    await server.stop();
    await rpc.stop();
  }
  const enforced = await startServer(["--norpc", `--jwt_secret=${SECRET}`, "--enforce_jwt"]);
  try {
    const c = new WsClient(enforced.wsUrl);
    assert.deepEqual(await c.waitFor((x) => x.type === "disconnect"), {
      type: "disconnect",
      reason: "unauthorized",
      reconnect: false,
    });
  } finally {
    await enforced.stop();
  }
});

Deno.test("signed, public and Turbo streams; no secret means signed streams are refused", async () => {
  const server = await startServer([
    "--noauth",
    "--norpc",
    `--secret=${SECRET}`,
    "--turbo_streams",
  ]);
  const nosecret = await startServer(["--noauth", "--norpc", "--public_streams"]);
  try {
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    const signed = JSON.stringify({
      channel: "$pubsub",
      signed_stream_name: await signStream("a", SECRET),
    });
    const turbo = JSON.stringify({
      channel: "Turbo::StreamsChannel",
      signed_stream_name: await signStream("t", SECRET),
    });
    const publicId = JSON.stringify({ channel: "$pubsub", stream_name: "p" });
    const garbage = JSON.stringify({ channel: "$pubsub", signed_stream_name: "@@@--zz" });
    for (const id of [signed, turbo, publicId, garbage]) {
      c.send({ command: "subscribe", identifier: id });
    }
    await c.waitFor((f) => f.type === "confirm_subscription" && f.identifier === signed);
    await c.waitFor((f) => f.type === "confirm_subscription" && f.identifier === turbo);
    await c.waitFor((f) => f.type === "reject_subscription" && f.identifier === publicId);
    await c.waitFor((f) => f.type === "reject_subscription" && f.identifier === garbage);
    await server.broadcast({ stream: "t", data: '"turbo"' }, await broadcastKey());
    await c.waitFor((f) => f.message === "turbo" && f.identifier === turbo);
    await c.close();

    const d = new WsClient(nosecret.wsUrl);
    await d.waitFor((f) => f.type === "welcome");
    // Even a name signed with an empty key is refused when no secret is configured.
    const forgedEmpty = `${btoa(JSON.stringify("a"))}--${await hmacEmpty(
      btoa(JSON.stringify("a")),
    )}`;
    const forged = JSON.stringify({ channel: "$pubsub", signed_stream_name: forgedEmpty });
    d.send({ command: "subscribe", identifier: forged });
    d.send({ command: "subscribe", identifier: publicId });
    await d.waitFor((f) => f.type === "reject_subscription" && f.identifier === forged);
    await d.waitFor((f) => f.type === "confirm_subscription" && f.identifier === publicId);
    await d.close();
  } finally {
    await server.stop();
    await nosecret.stop();
  }
});

/** HMAC-SHA256 with a one-byte zero key stands in for "an empty key" (WebCrypto refuses ""). */
async function hmacEmpty(message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(1),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)),
  );
  return [...sig].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("whispers reach the others, never the sender, never history", async () => {
  const server = await startServer([
    "--noauth",
    "--norpc",
    `--secret=${SECRET}`,
    "--streams_whisper",
    "--broker=memory",
  ]);
  try {
    const id = JSON.stringify({
      channel: "$pubsub",
      signed_stream_name: await signStream("w", SECRET),
    });
    const [a, b] = [new WsClient(server.wsUrl, EXT), new WsClient(server.wsUrl, EXT)];
    for (const c of [a, b]) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    a.send({ command: "whisper", identifier: id, data: { event: "typing", user: "a" } });
    const w = await b.waitFor((f) => (f.message as { event?: string })?.event === "typing");
    assert.equal(w.offset, undefined);
    b.send({
      command: "history",
      identifier: id,
      history: { since: Math.floor(Date.now() / 1000) - 10 },
    });
    await b.waitFor((f) => f.type === "confirm_history");
    assert.equal(
      b.frames.filter((f) => (f.message as { event?: string })?.event === "typing").length,
      1,
    );
    assert.equal(
      a.frames.some((f) => (f.message as { event?: string })?.event === "typing"),
      false,
    );
    await Promise.all([a.close(), b.close()]);
  } finally {
    await server.stop();
  }
  // Without --streams_whisper the whisper is dropped.
  const strict = await startServer(["--noauth", "--norpc", `--secret=${SECRET}`]);
  try {
    const id = JSON.stringify({
      channel: "$pubsub",
      signed_stream_name: await signStream("w", SECRET),
    });
    const [a, b] = [new WsClient(strict.wsUrl), new WsClient(strict.wsUrl)];
    for (const c of [a, b]) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    a.send({ command: "whisper", identifier: id, data: { event: "typing" } });
    await strict.broadcast({ stream: "w", data: '"marker"' }, await broadcastKey());
    await b.waitFor((f) => f.message === "marker");
    assert.equal(b.frames.some((f) => (f.message as { event?: string })?.event), false);
    await Promise.all([a.close(), b.close()]);
  } finally {
    await strict.stop();
  }
});

Deno.test("presence: join once per user, info, leave when the last session goes", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
  ]);
  try {
    const id = JSON.stringify({ channel: "$pubsub", stream_name: "lobby" });
    const clients = [0, 1, 2].map(() => new WsClient(server.wsUrl, EXT));
    for (const c of clients) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    const [watcher, alice1, alice2] = clients;
    alice1.send({
      command: "join",
      identifier: id,
      presence: { id: "alice", info: { name: "Alice" } },
    });
    const join = await watcher.waitFor((f) => f.type === "presence");
    assert.deepEqual(join, {
      type: "presence",
      identifier: id,
      message: { type: "join", id: "alice", info: { name: "Alice" } },
    });
    alice2.send({
      command: "join",
      identifier: id,
      presence: { id: "alice", info: { name: "Alice" } },
    });
    watcher.send({ command: "presence", identifier: id, data: { return_records: true } });
    const info = await watcher.waitFor((f) =>
      f.type === "presence" && (f.message as { type: string }).type === "info"
    );
    assert.deepEqual(info.message, {
      type: "info",
      total: 1,
      records: [{ id: "alice", info: { name: "Alice" } }],
    });
    alice1.send({ command: "leave", identifier: id });
    alice2.send({ command: "unsubscribe", identifier: id });
    const leave = await watcher.waitFor((f) => (f.message as { type: string })?.type === "leave");
    assert.deepEqual(leave.message, { type: "leave", id: "alice" });
    assert.equal(
      watcher.frames.filter((f) => (f.message as { type: string })?.type === "join").length,
      1,
    );
    assert.equal(
      watcher.frames.filter((f) => (f.message as { type: string })?.type === "leave").length,
      1,
    );
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await server.stop();
  }
});

Deno.test("a disconnected session leaves after presence_ttl", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
    "--presence_ttl=1",
  ]);
  try {
    const id = JSON.stringify({ channel: "$pubsub", stream_name: "room" });
    const [watcher, bob] = [new WsClient(server.wsUrl, EXT), new WsClient(server.wsUrl, EXT)];
    for (const c of [watcher, bob]) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    bob.send({ command: "join", identifier: id, presence: { id: "bob" } });
    await watcher.waitFor((f) => (f.message as { type: string })?.type === "join");
    await bob.close();
    const leave = await watcher.waitFor(
      (f) => (f.message as { type: string })?.type === "leave",
      6000,
    );
    assert.deepEqual(leave.message, { type: "leave", id: "bob" });
    await watcher.close();
  } finally {
    await server.stop();
  }
});

Deno.test("broadcast to others: the backend excludes the performer by its sid", async () => {
  // The backend broadcasts through the server it serves.
  const ref: { server?: Awaited<ReturnType<typeof startServer>> } = {};
  const rpc = new FakeRpc({
    command: async (body, headers) => {
      const identifier = body.identifier as string;
      if (body.command === "subscribe") {
        return {
          status: 1,
          streams: ["board"],
          env: { istate: { $w: "board" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      await ref.server!.broadcast({
        stream: "board",
        data: JSON.stringify({ moved: true }),
        meta: { exclude_socket: headers.get("x-anycable-meta-sid") },
      });
      return { status: 1 };
    },
  });
  const server = ref.server = await startServer([`--rpc_host=${rpc.url}`]);
  try {
    const id = JSON.stringify({ channel: "BoardChannel" });
    const [mover, viewer] = [new WsClient(server.wsUrl), new WsClient(server.wsUrl)];
    for (const c of [mover, viewer]) {
      await c.waitFor((f) => f.type === "welcome");
      c.send({ command: "subscribe", identifier: id });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    mover.send({ command: "message", identifier: id, data: JSON.stringify({ action: "move" }) });
    await viewer.waitFor((f) => (f.message as { moved?: boolean })?.moved === true);
    // RPC channel state `$w` enables whispers on an RPC channel.
    viewer.send({ command: "whisper", identifier: id, data: { cursor: 1 } });
    await mover.waitFor((f) => (f.message as { cursor?: number })?.cursor === 1);
    assert.equal(mover.frames.some((f) => (f.message as { moved?: boolean })?.moved), false);
    await Promise.all([mover.close(), viewer.close()]);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("RPC-driven presence: a Command response joins and leaves", async () => {
  const rpc = new FakeRpc({
    command: (body) => {
      const identifier = body.identifier as string;
      if (body.command === "subscribe") {
        return {
          status: 1,
          streams: ["team"],
          env: { istate: { $p: "team" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      const { action } = JSON.parse(body.data as string);
      return {
        status: 1,
        presence: action === "join"
          ? { type: "join", id: "u1", info: JSON.stringify({ name: "Uma" }) }
          : { type: "leave", id: "u1" },
      };
    },
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--broker=memory"]);
  try {
    const id = JSON.stringify({ channel: "TeamChannel" });
    const c = new WsClient(server.wsUrl, EXT);
    await c.waitFor((f) => f.type === "welcome");
    c.send({ command: "subscribe", identifier: id });
    await c.waitFor((f) => f.type === "confirm_subscription");
    c.send({ command: "message", identifier: id, data: JSON.stringify({ action: "join" }) });
    const join = await c.waitFor((f) => f.type === "presence");
    assert.deepEqual(join.message, { type: "join", id: "u1", info: { name: "Uma" } });
    c.send({ command: "message", identifier: id, data: JSON.stringify({ action: "leave" }) });
    const leave = await c.waitFor((f) => (f.message as { type: string })?.type === "leave");
    assert.deepEqual(leave.message, { type: "leave", id: "u1" });
    await c.close();
  } finally {
    await server.stop();
    await rpc.stop();
  }
});
