/**
 * The REST API (`/api/publish`, `/api/presence/<stream>/users`) against a real server, with
 * @anycable/core clients receiving what it publishes and joining presence.
 */
import assert from "node:assert/strict";
import { createCable } from "@anycable/core";
import { createApiHandler } from "../src/api/api_handler.ts";
import { InvalidBroadcastError } from "../src/broadcast/broadcaster.ts";
import type { Broker } from "../src/broker/broker.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { deriveKey } from "../src/util/secrets.ts";
import { startServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";
import { freePort } from "./support/services.ts";

const KEY = "api-test-key";

function api(url: string, path: string, init: RequestInit = {}, key = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("authorization", `Bearer ${key}`);
  return fetch(`${url}/api${path}`, { ...init, headers });
}

async function drain(res: Response): Promise<Response> {
  await res.body?.cancel();
  return res;
}

// deno-lint-ignore no-explicit-any
type Users = any;

/** Asks the API until its answer satisfies `pred` (presence joins are applied asynchronously). */
async function usersWhen(ask: () => Promise<Users>, pred: (u: Users) => boolean): Promise<Users> {
  let last: Users;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    last = await ask();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`presence never matched; last answer ${JSON.stringify(last)}`);
}

function cableFor(wsUrl: string) {
  return createCable(wsUrl, {
    protocol: "actioncable-v1-ext-json",
    websocketImplementation: WebSocket,
    logLevel: "error",
  });
}

Deno.test("REST API: publish and batch reach @anycable/core receivers", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--public_streams",
    "--broker=memory",
    `--api_secret=${KEY}`,
  ], "info");
  const cable = cableFor(server.wsUrl);
  try {
    const a = cable.streamFrom("chat/1");
    const b = cable.streamFrom("chat 2?&");
    const got: Array<[string, unknown]> = [];
    a.on("message", (m: unknown) => got.push(["a", m]));
    b.on("message", (m: unknown) => got.push(["b", m]));
    await a.ensureSubscribed();
    await b.ensureSubscribed();

    let res = await drain(
      await api(server.url, "/publish", {
        method: "POST",
        body: JSON.stringify({ stream: "chat/1", data: JSON.stringify({ n: 1 }) }),
      }),
    );
    assert.equal(res.status, 201);
    res = await drain(
      await api(server.url, "/publish", {
        method: "POST",
        body: JSON.stringify([
          { stream: "chat/1", data: JSON.stringify({ n: 2 }) },
          { stream: "chat 2?&", data: JSON.stringify({ n: 3 }) },
        ]),
      }),
    );
    assert.equal(res.status, 201);
    await waitUntil(() => got.length === 3, "three API publications");
    assert.deepEqual(got.filter(([c]) => c === "a").map(([, m]) => m), [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(got.filter(([c]) => c === "b").map(([, m]) => m), [{ n: 3 }]);
  } finally {
    cable.disconnect();
    await server.stop();
  }
});

Deno.test("REST API: auth, methods, malformed bodies, disabled mount", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--broker=memory",
    "--secret=qwerty",
  ], "info");
  const derived = await deriveKey("qwerty", "api-cable");
  assert.equal(derived, "bdd0244b3664404d03b7d0c2f1b946dc4fc6c13fdcbfa2be62a4a28deb04d096");
  const body = JSON.stringify({ stream: "s", data: "1" });
  try {
    let res = await drain(await api(server.url, "/publish", { method: "POST", body }, ""));
    assert.equal(res.status, 401);
    res = await drain(await api(server.url, "/publish", { method: "POST", body }, "wrong"));
    assert.equal(res.status, 401);
    res = await drain(await api(server.url, "/publish", { method: "POST", body }, derived));
    assert.equal(res.status, 201);
    res = await drain(await api(server.url, "/publish", { method: "GET" }, derived));
    assert.equal(res.status, 422);
    res = await api(server.url, "/publish", { method: "POST", body: "{not json" }, derived);
    assert.equal(res.status, 422);
    assert.match((await res.json()).error, /./);
    res = await drain(
      await api(server.url, "/publish", { method: "POST", body: '{"data":"x"}' }, derived),
    );
    assert.equal(res.status, 422);
    res = await drain(await api(server.url, "/presence/s/users", { method: "GET" }, ""));
    assert.equal(res.status, 401);
    res = await drain(await api(server.url, "/presence/s/users", { method: "POST" }, derived));
    assert.equal(res.status, 422);
    res = await drain(await api(server.url, "/presence/s/other", {}, derived));
    assert.equal(res.status, 404);
    assert.ok(
      server.logs.some((l) => String(l.msg).includes("malformed body")),
      "a malformed body is logged",
    );
    // The server keeps serving after bad requests.
    res = await drain(await api(server.url, "/publish", { method: "POST", body }, derived));
    assert.equal(res.status, 201);
  } finally {
    await server.stop();
  }

  // Without a secret, a port or --public the API is not mounted at all.
  const closed = await startServer(["--norpc", "--noauth"], "info");
  try {
    const res = await drain(await api(closed.url, "/publish", { method: "POST", body }, ""));
    assert.equal(res.status, 404);
  } finally {
    await closed.stop();
  }

  // A dedicated port, no key: unauthenticated there, and not on the main port.
  const apiPort = freePort();
  const own = await startServer(["--norpc", "--noauth", `--api_port=${apiPort}`], "info");
  try {
    assert.equal(own.app.apiPort, apiPort);
    let res = await drain(
      await api(`http://127.0.0.1:${apiPort}`, "/publish", { method: "POST", body }, ""),
    );
    assert.equal(res.status, 201);
    res = await drain(await api(own.url, "/publish", { method: "POST", body }, ""));
    assert.equal(res.status, 404);
  } finally {
    await own.stop();
  }
});

Deno.test("REST API: presence users after join and after leave, percent-encoded names", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--public_streams",
    "--broker=memory",
    `--api_secret=${KEY}`,
    "--api_path=/rest",
  ], "info");
  const users = async (stream: string) => {
    const res = await fetch(
      `${server.url}/rest/presence/${encodeURIComponent(stream)}/users`,
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    assert.equal(res.status, 200);
    return await res.json();
  };
  const alice = cableFor(server.wsUrl);
  const bob = cableFor(server.wsUrl);
  const name = "room/42 ü&?";
  try {
    assert.deepEqual(await users(name), { type: "info", total: 0 });
    const ca = alice.streamFrom(name);
    const cb = bob.streamFrom(name);
    await ca.ensureSubscribed();
    await cb.ensureSubscribed();
    await ca.presence.join("alice", { name: "Alice" });
    await cb.presence.join("bob", { name: "Bob" });
    let info = await usersWhen(() => users(name), (i) => i.total === 2);
    assert.deepEqual(
      info.records.sort((x: { id: string }, y: { id: string }) => x.id.localeCompare(y.id)),
      [{ id: "alice", info: { name: "Alice" } }, { id: "bob", info: { name: "Bob" } }],
    );
    await ca.presence.leave();
    info = await usersWhen(() => users(name), (i) => i.total === 1);
    assert.deepEqual(info, {
      type: "info",
      total: 1,
      records: [{ id: "bob", info: { name: "Bob" } }],
    });
    // Another stream is unaffected; a malformed escape is a 404.
    assert.deepEqual(await users("room"), { type: "info", total: 0 });
    const bad = await fetch(`${server.url}/rest/presence/%E0%A4%A/users`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    await bad.body?.cancel();
    assert.equal(bad.status, 404);
  } finally {
    alice.disconnect();
    bob.disconnect();
    await server.stop();
  }
});

Deno.test("REST API: a broker failure is 501, a malformed body 422 (handler level)", async () => {
  const failing = {
    handleBroadcast: (body: string) =>
      body.startsWith("{")
        ? Promise.reject(new Error("broker down"))
        : Promise.reject(new InvalidBroadcastError("bad")),
  };
  const broker = {
    persistent: true,
    presenceInfo: () => Promise.reject(new Error("broker down")),
  } as unknown as Broker;
  const handler = createApiHandler(
    { path: "/api", key: "", maxBodySize: 1024, logger: silentLogger },
    { publisher: failing, broker },
  );
  const post = (body: string) =>
    handler(new Request("http://x/api/publish", { method: "POST", body }), "");
  assert.equal((await post('{"stream":"s","data":"1"}')).status, 501);
  assert.equal((await post("nope")).status, 422);
  assert.equal((await post("x".repeat(2000))).status, 413);
  const p = await handler(new Request("http://x/api/presence/s/users"), "");
  assert.equal(p.status, 501);
});
