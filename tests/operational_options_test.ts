/**
 * Operational switches from AnyCable-Go: --max-conn, --enable_native_pings, --shutdown_delay,
 * --node_id, --http_broadcast_cors, --rpc_max_call_recv_size / --rpc_max_call_send_size,
 * --redisx_group / --redisx_read_block_milliseconds, --nats_dont_randomize_servers.
 */
import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { GrpcBackend } from "./support/grpc_backend.ts";
import { spawnServer } from "./support/process.ts";
import { RawWs } from "./support/raw_ws.ts";
import { startServer } from "./support/server.ts";
import { hasNats, hasRedis, startNats, startRedis } from "./support/services.ts";
import { waitUntil } from "./support/wait.ts";
import { rawHandshake, WsClient } from "./support/ws_client.ts";
import { NatsLink } from "../src/util/nats_connection.ts";
import { silentLogger } from "../src/logger/logger.ts";

const WS_HEADERS = { "Sec-WebSocket-Protocol": "actioncable-v1-json" };

Deno.test("--max-conn: connections beyond the limit get 503, are counted, and room frees up", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--sse",
    "--poll",
    "--max-conn=2",
    "--metrics_http=/metrics",
  ]);
  const a = new WsClient(server.wsUrl);
  const b = new WsClient(server.wsUrl);
  try {
    await a.opened;
    await b.opened;
    await waitUntil(() => server.app.node.sessions.size === 2, "two sessions");
    const third = await rawHandshake(server.app.port, "/cable", WS_HEADERS);
    assert.equal(third.status, 503);
    assert.equal(third.headers.get("retry-after"), "1");
    const sse = await fetch(`${server.url}/events?stream=x`);
    assert.equal(sse.status, 503);
    assert.match(await sse.text(), /too many connections \(limit 2\)/);
    const lp = await fetch(`${server.url}/lp`, { method: "POST", body: "" });
    assert.equal(lp.status, 503);
    await lp.body?.cancel();
    // Not connections: health and broadcasts pass.
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.equal((await server.broadcast({ stream: "x", data: "{}" })).status, 201);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /server_refused_connections_total(\{[^}]*\})? 3\b/);
    assert.ok(server.logs.some((l) => l.msg === "connection refused: --max-conn reached"));
    await b.close();
    await waitUntil(() => server.app.node.sessions.size === 1, "one session left");
    const again = new WsClient(server.wsUrl);
    await again.opened;
    await again.close();
  } finally {
    await a.close();
    await b.close();
    await server.stop();
  }
});

Deno.test("--enable_native_pings: WebSocket ping frames reach an idle client; without it none do", async () => {
  const on = await startServer([
    "--norpc",
    "--public",
    "--enable_native_pings",
    "--ping_interval=1",
  ]);
  const off = await startServer(["--norpc", "--public", "--ping_interval=1"]);
  const wsOn = await RawWs.connect(on.app.port);
  const wsOff = await RawWs.connect(off.app.port);
  try {
    // Action Cable pings come every second: read frames for a bounded time.
    const deadline = Date.now() + 8000;
    while (wsOn.pings === 0 && Date.now() < deadline) await wsOn.next();
    assert.ok(wsOn.pings >= 1, "a ping frame with --enable_native_pings");
    for (let i = 0; i < 4; i++) await wsOff.next();
    assert.equal(wsOff.pings, 0, "no ping frame without it");
  } finally {
    wsOn.close();
    wsOff.close();
    await on.stop();
    await off.stop();
  }
});

Deno.test("--enable_ws_compression: accepted with a warning; Deno answers without permessage-deflate", async () => {
  const server = await startServer(["--norpc", "--public", "--enable_ws_compression"]);
  try {
    const res = await rawHandshake(server.app.port, "/cable", {
      ...WS_HEADERS,
      "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    });
    assert.equal(res.status, 101);
    assert.equal(res.headers.get("sec-websocket-extensions"), null);
  } finally {
    await server.stop();
  }
});

Deno.test("--shutdown_delay: still serving for the delay after SIGTERM, then stops; --node_id names the node in logs", async () => {
  const server = await spawnServer([
    "--norpc",
    "--public",
    "--broadcast_key=k",
    "--shutdown_delay=2",
    "--node_id=node-42",
  ]);
  try {
    assert.ok(
      server.lines.some((l) => l.msg === "Cableway is listening" && l.nodeid === "node-42"),
    );
    // The signal handlers are installed right after the listening line: a served request
    // shows the process got past that point.
    const first = new WsClient(`ws://127.0.0.1:${server.port}/cable`);
    await first.waitFor((f) => f.type === "welcome");
    const started = Date.now();
    server.child.kill("SIGTERM");
    await server.waitForLog((l) => l.msg === "shutdown delay: still serving");
    const client = new WsClient(`ws://127.0.0.1:${server.port}/cable`);
    await client.opened;
    await client.waitFor((f) => f.type === "welcome");
    const code = await server.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - started >= 2000, `stopped after ${Date.now() - started} ms`);
    const delayLine = server.lines.findIndex((l) => l.msg === "shutdown delay: still serving");
    const stopLine = server.lines.findIndex((l) => l.msg === "shutting down");
    assert.ok(delayLine >= 0 && stopLine > delayLine);
    await client.closed;
    await first.closed;
  } finally {
    try {
      server.child.kill("SIGKILL");
    } catch {
      // exited
    }
  }
});

Deno.test("--http_broadcast_cors: preflight and CORS headers on the broadcast endpoint, origins checked", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--http_broadcast_cors",
    "--allowed_origins=app.example.com",
  ]);
  const plain = await startServer(["--norpc", "--public"]);
  try {
    const url = `${server.url}/_broadcast`;
    const pre = await fetch(url, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
    assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/i);
    await pre.body?.cancel();
    const post = await fetch(url, {
      method: "POST",
      headers: { origin: "https://app.example.com", authorization: "Bearer test-key" },
      body: JSON.stringify({ stream: "s", data: "{}" }),
    });
    assert.equal(post.status, 201);
    assert.equal(post.headers.get("access-control-allow-origin"), "https://app.example.com");
    await post.body?.cancel();
    const evil = await fetch(url, {
      method: "POST",
      headers: { origin: "https://evil.example.org", authorization: "Bearer test-key" },
      body: JSON.stringify({ stream: "s", data: "{}" }),
    });
    assert.equal(evil.status, 403);
    await evil.body?.cancel();
    // Without the flag: no CORS headers.
    const none = await fetch(`${plain.url}/_broadcast`, {
      method: "POST",
      headers: { origin: "https://app.example.com", authorization: "Bearer test-key" },
      body: JSON.stringify({ stream: "s", data: "{}" }),
    });
    assert.equal(none.status, 201);
    assert.equal(none.headers.get("access-control-allow-origin"), null);
    await none.body?.cancel();
  } finally {
    await server.stop();
    await plain.stop();
  }
});

Deno.test("--rpc_max_call_recv_size / --rpc_max_call_send_size bound HTTP RPC bodies", async () => {
  const big = "x".repeat(4000);
  const rpc = new FakeRpc({
    connect: (_b, headers) => ({
      status: 1,
      identifiers: JSON.stringify({ user: "u" }),
      transmissions: [JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") })],
      cstate: { padding: big },
    }),
  });
  const recv = await startServer([`--rpc_host=${rpc.url}`, "--rpc_max_call_recv_size=1000"]);
  const send = await startServer([`--rpc_host=${rpc.url}`, "--rpc_max_call_send_size=300"]);
  const roomy = await startServer([`--rpc_host=${rpc.url}`, "--rpc_max_call_recv_size=100000"]);
  try {
    const a = new WsClient(recv.wsUrl);
    const refused = await a.waitFor((f) => f.type === "disconnect");
    assert.equal(refused.reason, "server_error");
    assert.ok(recv.logs.some((l) => JSON.stringify(l).includes("--rpc_max_call_recv_size")));
    await a.close();

    const before = rpc.calls("connect").length;
    const b = new WsClient(send.wsUrl, "actioncable-v1-json", {
      headers: { cookie: `c=${"y".repeat(1000)}` },
    });
    assert.equal((await b.waitFor((f) => f.type === "disconnect")).reason, "server_error");
    assert.ok(send.logs.some((l) => JSON.stringify(l).includes("--rpc_max_call_send_size")));
    assert.equal(rpc.calls("connect").length, before, "the oversized request was not sent");
    await b.close();

    const c = new WsClient(roomy.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    await c.close();
  } finally {
    await recv.stop();
    await send.stop();
    await roomy.stop();
    await rpc.stop();
  }
});

Deno.test("--rpc_max_call_recv_size / --rpc_max_call_send_size bound gRPC messages", async () => {
  const backend = await GrpcBackend.start({
    connect: (_req, metadata) => ({
      status: 1,
      identifiers: JSON.stringify({ user: "u" }),
      transmissions: [JSON.stringify({ type: "welcome", sid: metadata.sid })],
      env: { cstate: { padding: "x".repeat(4000) } },
    }),
  });
  const recv = await startServer([
    `--rpc_host=${backend.address}`,
    "--rpc_max_call_recv_size=1000",
  ]);
  const send = await startServer([`--rpc_host=${backend.address}`, "--rpc_max_call_send_size=300"]);
  const roomy = await startServer([
    `--rpc_host=${backend.address}`,
    "--rpc_max_call_recv_size=100000",
  ]);
  try {
    const a = new WsClient(recv.wsUrl);
    assert.equal((await a.waitFor((f) => f.type === "disconnect")).reason, "server_error");
    assert.ok(recv.logs.some((l) => /bytes exceeds 1000/.test(JSON.stringify(l))));
    await a.close();
    const calls = backend.calls.length;
    const b = new WsClient(send.wsUrl, "actioncable-v1-json", {
      headers: { cookie: `c=${"y".repeat(1000)}` },
    });
    assert.equal((await b.waitFor((f) => f.type === "disconnect")).reason, "server_error");
    assert.ok(send.logs.some((l) => JSON.stringify(l).includes("--rpc_max_call_send_size")));
    assert.equal(backend.calls.length, calls, "the oversized request was not sent");
    await b.close();
    const c = new WsClient(roomy.wsUrl);
    await c.waitFor((f) => f.type === "welcome");
    await c.close();
  } finally {
    await recv.stop();
    await send.stop();
    await roomy.stop();
    await backend.stop();
  }
});

Deno.test({
  name:
    "--redisx_group / --redisx_read_block_milliseconds: the redisx consumer group is the one given",
  ignore: !hasRedis(),
  async fn() {
    const redis = await startRedis();
    const server = await startServer([
      "--norpc",
      "--public",
      "--broadcast_adapter=redisx",
      `--redis_url=${redis.url}`,
      "--redisx_group=custom-group",
      "--redisx_read_block_milliseconds=300",
    ]);
    try {
      const client = new WsClient(server.wsUrl);
      await client.waitFor((f) => f.type === "welcome");
      const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "rx" });
      client.send({ command: "subscribe", identifier });
      await client.waitFor((f) => f.type === "confirm_subscription");
      const cli = async (...args: string[]) =>
        new TextDecoder().decode(
          (await new Deno.Command("redis-cli", { args: ["-p", String(redis.port), ...args] })
            .output()).stdout,
        );
      let groups = "";
      for (let i = 0; i < 50 && !groups.includes("custom-group"); i++) {
        groups = await cli("XINFO", "GROUPS", "__anycable__");
        if (!groups.includes("custom-group")) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(groups, /custom-group/);
      await cli(
        "XADD",
        "__anycable__",
        "*",
        "payload",
        JSON.stringify({ stream: "rx", data: '{"v":1}' }),
      );
      await client.waitFor((f) => (f.message as { v?: number })?.v === 1);
      await client.close();
    } finally {
      await server.stop();
      await redis.stop();
    }
  },
});

Deno.test({
  name: "--nats_dont_randomize_servers: the first listed server is always the one used",
  ignore: !hasNats(),
  async fn() {
    const a = await startNats();
    const b = await startNats();
    try {
      for (let i = 0; i < 6; i++) {
        const link = await NatsLink.open({
          servers: `${a.url},${b.url}`,
          noRandomize: true,
          logger: silentLogger,
        });
        assert.equal(link.nc.getServer(), `127.0.0.1:${a.port}`);
        await link.close();
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  },
});
