/** `--path` patterns (exact, `*` suffix, `{param}` segments) and `--disconnect_mode`. */
import assert from "node:assert/strict";
import { issueToken } from "../src/identity/jwt.ts";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { rawHandshake, WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

Deno.test("--path: exact paths, a * suffix and {param} segments accept WebSockets; others 404", async () => {
  const rpc = new FakeRpc();
  const server = await startServer([
    `--rpc_host=${rpc.url}`,
    "--path=/cable,/ws/*,/rooms/{room}/cable",
  ]);
  try {
    const port = server.app.port;
    const upgrade = { "Sec-WebSocket-Protocol": "actioncable-v1-json" };
    const accepted = [
      "/cable",
      "/ws/",
      "/ws/a",
      "/ws/a/b?x=1",
      "/rooms/42/cable",
      "/rooms/x-y/cable",
    ];
    const refused = [
      "/",
      "/cable/",
      "/cables",
      "/ws",
      "/rooms/cable",
      "/rooms//cable",
      "/rooms/42/extra/cable",
      "/rooms/42/cable/x",
      "/other",
    ];
    for (const path of accepted) {
      assert.equal((await rawHandshake(port, path, upgrade)).status, 101, path);
    }
    for (const path of refused) {
      assert.equal((await rawHandshake(port, path, upgrade)).status, 404, path);
    }
    // A real client on a {param} path: the backend sees the URL with the parameter.
    const c = new WsClient(`ws://127.0.0.1:${port}/rooms/42/cable?token=t`);
    await c.waitFor((f) => f.type === "welcome");
    await c.close();
    const urls = rpc.calls("connect").map((r) => (r.body.env as { url: string }).url);
    assert.ok(urls.some((u) => u.endsWith("/rooms/42/cable?token=t")), urls.join(", "));
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

const SECRET = "disconnect-mode-secret";

/**
 * One client identified by a JWT that only uses a public stream (the backend never heard of
 * it) and one authenticated by the backend's Connect; both leave, the server stops (flushing
 * its Disconnect queue), and we count the Disconnect calls.
 */
async function disconnectCalls(mode: string): Promise<{ jwt: number; rpc: number }> {
  const rpc = new FakeRpc();
  const server = await startServer([
    `--rpc_host=${rpc.url}`,
    `--secret=${SECRET}`,
    "--public_streams",
    `--disconnect_mode=${mode}`,
  ]);
  try {
    const token = await issueToken({ user: "jwt-user" }, SECRET, 300);
    const jwt = new WsClient(`${server.wsUrl}?jid=${token}`);
    await jwt.waitFor((f) => f.type === "welcome");
    const id = JSON.stringify({ channel: "$pubsub", stream_name: "lobby" });
    jwt.send({ command: "subscribe", identifier: id });
    await jwt.waitFor((f) => f.type === "confirm_subscription");
    const viaRpc = new WsClient(server.wsUrl);
    await viaRpc.waitFor((f) => f.type === "welcome");
    assert.equal(rpc.calls("connect").length, 1, "only the second client called Connect");
    await Promise.all([jwt.close(), viaRpc.close()]);
    await waitUntil(() => server.app.node.sessions.size === 0, "sessions closed", 10000);
  } finally {
    await server.stop();
    await rpc.stop();
  }
  const ids = rpc.calls("disconnect").map((r) => String(r.body.identifiers));
  return {
    jwt: ids.filter((i) => i.includes("jwt-user")).length,
    rpc: ids.filter((i) => i.includes("anon")).length,
  };
}

Deno.test("--disconnect_mode: auto calls Disconnect for backend-known sessions only, always for all, never for none", async () => {
  assert.deepEqual(await disconnectCalls("auto"), { jwt: 0, rpc: 1 });
  assert.deepEqual(await disconnectCalls("always"), { jwt: 1, rpc: 1 });
  assert.deepEqual(await disconnectCalls("never"), { jwt: 0, rpc: 0 });
});
