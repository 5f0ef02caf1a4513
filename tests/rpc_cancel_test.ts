import assert from "node:assert/strict";
import { defaultCommand, FakeRpc, type RpcHandler } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";
import { WsClient } from "./support/ws_client.ts";

/** Calls whose session has gone are dropped or abandoned, never executed late. */

const chan = (stream: string) => JSON.stringify({ channel: "ChatChannel", stream });
const dataOf = (r: { body: Record<string, unknown> }) => r.body.data as string | undefined;

/** A backend answer that waits until the test opens the gate. */
function gated(): { handler: (inner: RpcHandler) => RpcHandler; open: () => void } {
  const gate = Promise.withResolvers<void>();
  return {
    handler: (inner) => async (body, headers) => {
      await gate.promise;
      return inner(body, headers);
    },
    open: () => gate.resolve(),
  };
}

Deno.test("RPC cancel: a Command queued behind the concurrency limit is dropped when its session closes", async () => {
  const slow = gated();
  const rpc = new FakeRpc({
    command: (body, headers) =>
      dataOf({ body }) === '{"action":"slow"}'
        ? slow.handler(defaultCommand)(body, headers)
        : defaultCommand(body, headers),
  });
  const server = await startServer([
    `--rpc_host=${rpc.url}`,
    "--rpc_concurrency=1",
    "--metrics_http=/metrics",
  ]);
  const stats = server.app.rpc!.stats;
  try {
    const a = new WsClient(server.wsUrl);
    const b = new WsClient(server.wsUrl);
    const sidA = (await a.waitFor((f) => f.type === "welcome")).sid as string;
    await b.waitFor((f) => f.type === "welcome");
    for (const c of [a, b]) {
      c.send({ command: "subscribe", identifier: chan("room") });
      await c.waitFor((f) => f.type === "confirm_subscription");
    }
    // B takes the only slot and holds it; A's perform waits in line.
    b.send({ command: "message", identifier: chan("room"), data: '{"action":"slow"}' });
    await rpc.waitFor((rs) => rs.some((r) => dataOf(r) === '{"action":"slow"}'));
    a.send({ command: "message", identifier: chan("room"), data: '{"action":"late"}' });
    await waitUntil(() => stats.pending === 1, "A's perform queued");

    await a.close();
    // A's perform leaves the line at once; A's Disconnect takes its place.
    await waitUntil(() => stats.canceled === 1, "A's perform dropped");
    await waitUntil(() => stats.pending === 1, "A's Disconnect queued");
    slow.open();
    await rpc.waitFor((rs) => rs.some((r) => r.method === "disconnect"));
    await b.close();
    await rpc.waitFor((rs) => rs.filter((r) => r.method === "disconnect").length === 2);

    assert.deepEqual(rpc.requests.filter((r) => dataOf(r) === '{"action":"late"}'), []);
    const [disconnectA] = rpc.calls("disconnect");
    assert.equal(disconnectA.headers.get("x-anycable-meta-sid"), sidA);
    assert.deepEqual(disconnectA.body.subscriptions, [chan("room")]);
    assert.equal(stats.canceled, 1);
    assert.equal(stats.errors, 0, "a dropped call is not an error");
    assert.ok(!server.logs.some((l) => l.level === "error"), JSON.stringify(server.logs));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /rpc_canceled_total 1/);
  } finally {
    slow.open();
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("RPC cancel: in-flight Connect and subscribe of a closed session are abandoned, their late answers discarded", async () => {
  const slowConnect = gated();
  const slowSubscribe = gated();
  const rpc = new FakeRpc({
    connect: (body, headers) => {
      const url = (body.env as { url: string }).url;
      if (!url.includes("slow")) {
        return {
          status: 1,
          identifiers: JSON.stringify({ user: "anon" }),
          transmissions: [JSON.stringify({ type: "welcome" })],
        };
      }
      return slowConnect.handler(() => ({
        status: 1,
        identifiers: JSON.stringify({ user: "late" }),
        transmissions: [JSON.stringify({ type: "welcome" })],
      }))(body, headers);
    },
    command: (body, headers) =>
      body.identifier === chan("late_stream")
        ? slowSubscribe.handler(defaultCommand)(body, headers)
        : defaultCommand(body, headers),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  const stats = server.app.rpc!.stats;
  try {
    // Connect in flight, then the client goes.
    const early = new WsClient(`${server.wsUrl}?slow=1`);
    await rpc.waitFor((rs) => rs.some((r) => r.method === "connect"));
    await early.close();
    await waitUntil(() => stats.canceled === 1, "the Connect call abandoned");

    // Subscribe in flight, then the client goes.
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    c.send({ command: "subscribe", identifier: chan("late_stream") });
    await rpc.waitFor((rs) => rs.some((r) => r.body.identifier === chan("late_stream")));
    await c.close();
    await waitUntil(() => stats.canceled === 2, "the subscribe call abandoned");
    await rpc.waitFor((rs) => rs.some((r) => r.method === "disconnect"));

    // The backend answers late; nothing of it lands.
    slowConnect.open();
    slowSubscribe.open();
    const probe = new WsClient(server.wsUrl);
    await probe.waitFor((f) => f.type === "welcome");
    await probe.close();
    await rpc.waitFor((rs) => rs.filter((r) => r.method === "disconnect").length === 2);
    assert.equal(server.app.node.sessions.size, 0);
    assert.equal(server.app.node.deps.hub.streamsCount, 0, "no stream left for a dead session");
    const [disconnect] = rpc.calls("disconnect");
    assert.deepEqual(disconnect.body.subscriptions, [], "the abandoned subscription is not in it");
    assert.equal(rpc.calls("connect").length, 3);
    assert.equal(stats.errors, 0);
    assert.ok(
      server.logs.some((l) => l.msg === "skip subscribe result: session closed"),
      "the discard is logged at debug level",
    );
    assert.ok(!server.logs.some((l) => l.level === "error"), JSON.stringify(server.logs));
  } finally {
    slowConnect.open();
    slowSubscribe.open();
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("RPC cancel: a Connect retrying an unreachable backend stops when its client goes", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = (l.addr as Deno.NetAddr).port;
  l.close();
  const server = await startServer([`--rpc_host=http://127.0.0.1:${dead}/_anycable`]);
  const stats = server.app.rpc!.stats;
  try {
    const c = new WsClient(server.wsUrl);
    await waitUntil(() => stats.retries >= 1, "a first retry");
    await c.close();
    const closedAt = Date.now();
    // The backoff sleep is cut short; the next attempt finds the session gone.
    await waitUntil(() => stats.canceled === 1, "the retrying Connect dropped");
    const waited = Date.now() - closedAt;
    const retries = stats.retries;
    assert.ok(waited < 2500, `dropped ${waited} ms after the close (budget is 3 s)`);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(stats.retries, retries, "no retry after the drop");
    assert.equal(stats.errors, 0);
    assert.ok(!server.logs.some((l) => l.msg === "Connect RPC failed"));
  } finally {
    await server.stop();
  }
});
