import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

function value(text: string, name: string): number {
  const line = text.split("\n").find((l) =>
    l.startsWith(`anycable_go_${name}{`) || l.startsWith(`anycable_go_${name} `)
  );
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(" ").pop());
}

Deno.test("Prometheus metrics with the reference's names and tags", async () => {
  const rpc = new FakeRpc({
    connect: (body, headers) =>
      (body.env as { url: string }).url.includes("bad")
        ? {
          status: 2,
          transmissions: ['{"type":"disconnect","reason":"unauthorized","reconnect":false}'],
        }
        : {
          status: 1,
          identifiers: (body.env as { url: string }).url.includes("u=2") ? '{"u":2}' : '{"u":1}',
          transmissions: [
            JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") }),
          ],
        },
  });
  const server = await startServer([
    `--rpc_host=${rpc.url}`,
    "--metrics_http=/metrics",
    "--metrics_tags=env:test,region:eu",
  ]);
  try {
    const clients = [`?u=1`, `?u=1`, `?u=2`].map((q) => new WsClient(server.wsUrl + q));
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === "welcome")));
    const bad = new WsClient(`${server.wsUrl}?bad=1`);
    await bad.closed;
    clients[0].send({
      command: "subscribe",
      identifier: JSON.stringify({ channel: "C", stream: "s" }),
    });
    await clients[0].waitFor((f) => f.type === "confirm_subscription");
    clients[0].send("garbage");
    await clients[0].waitFor((f) => f.type === "error");
    await server.broadcast({ stream: "s", data: "1" });
    await server.broadcast("nonsense");
    await clients[0].waitFor((f) => f.message === 1);

    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/plain/);
    const text = await res.text();
    assert.match(text, /# TYPE anycable_go_clients_num gauge/);
    assert.match(text, /anycable_go_clients_num\{env="test",region="eu"\} 3/);
    assert.equal(value(text, "clients_uniq_num"), 2);
    assert.equal(value(text, "failed_auths_total"), 1);
    assert.equal(value(text, "broadcast_streams_num"), 1);
    assert.equal(value(text, "broadcast_msg_total"), 1);
    assert.equal(value(text, "failed_broadcast_msg_total"), 1);
    assert.equal(value(text, "failed_client_msg_total"), 1);
    assert.equal(value(text, "client_msg_total"), 2);
    assert.equal(value(text, "rpc_call_total"), 5);
    assert.equal(value(text, "rpc_capacity_num"), 28);
    assert.ok(value(text, "server_msg_total") >= 6);
    assert.ok(value(text, "data_sent_total") > 0);
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("metrics only where configured; a separate port; the periodic log line", async () => {
  const plain = await startServer(["--norpc", "--noauth"]);
  try {
    const res = await fetch(`${plain.url}/metrics`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await plain.stop();
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--metrics_http=/metrics",
    `--metrics_port=${port}`,
    "--metrics_log",
    "--metrics_rotate_interval=1",
  ]);
  try {
    const c = new WsClient(server.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(value(await res.text(), "clients_num"), 1);
    const onMain = await fetch(`${server.url}/metrics`);
    assert.equal(onMain.status, 404);
    await onMain.body?.cancel();
    const deadline = Date.now() + 4000;
    while (!server.logs.some((x) => x.msg === "stats") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const stats = server.logs.find((x) => x.msg === "stats");
    assert.ok(stats, "no stats log line");
    assert.equal(stats.clients_num, 1);
    await c.close();
  } finally {
    await server.stop();
  }
});
