import assert from "node:assert/strict";
import { GrpcRpcClient } from "../src/rpc/grpc_rpc_client.ts";
import { formatGrpcTimeout } from "../src/rpc/grpc_framing.ts";
import { GrpcTargetError, parseGrpcTarget } from "../src/rpc/grpc_target.ts";
import { RpcResponseError, RpcTimeoutError, RpcUnavailableError } from "../src/rpc/rpc_client.ts";
import {
  GrpcBackend,
  GrpcStatus,
  type RawGrpcMode,
  startRawGrpcBackend,
} from "./support/grpc_backend.ts";
import { FaultBackend, hasNode } from "./support/grpc_fault_process.ts";
import { startServer } from "./support/server.ts";
import { hasOpenssl, makeCerts } from "./support/certs.ts";
import { WsClient } from "./support/ws_client.ts";

const chat = (stream = "chat_1") => JSON.stringify({ channel: "ChatChannel", stream });
const welcome = (metadata: Record<string, string>) => ({
  status: 1,
  identifiers: JSON.stringify({ user: "anon" }),
  transmissions: [JSON.stringify({ type: "welcome", sid: metadata.sid })],
});

/** A port nothing listens on (bound, then released). */
function deadPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("gRPC targets: host:port, dns:///, grpc-list:// and bad forms", () => {
  assert.deepEqual(parseGrpcTarget("localhost:50051"), [
    { host: "localhost", port: 50051, origin: "http://localhost:50051" },
  ]);
  assert.deepEqual(parseGrpcTarget("dns:///rpc.internal:50051").map((e) => e.origin), [
    "http://rpc.internal:50051",
  ]);
  assert.deepEqual(parseGrpcTarget("dns://8.8.8.8/rpc:1").map((e) => e.origin), ["http://rpc:1"]);
  assert.deepEqual(
    parseGrpcTarget("grpc-list://10.0.0.1:50051, [::1]:50052,").map((e) => e.origin),
    ["http://10.0.0.1:50051", "http://[::1]:50052"],
  );
  for (const bad of ["localhost", "host:0", "host:99999", "grpc-list://", "::1:5", "dns://x"]) {
    assert.throws(() => parseGrpcTarget(bad), GrpcTargetError, bad);
  }
  assert.equal(formatGrpcTimeout(300), "300m");
  assert.equal(formatGrpcTimeout(0.2), "1m");
  assert.equal(formatGrpcTimeout(1e9), "1000000S");
});

Deno.test("gRPC: connect, subscribe, perform, unsubscribe, disconnect — fields and metadata", async () => {
  const backend = await GrpcBackend.start({
    command: (req) => {
      const identifier = req.identifier as string;
      if (req.command === "subscribe") {
        return {
          status: 1,
          streams: ["chat_1"],
          env: { istate: { room: "1" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      if (req.command === "message") {
        const data = JSON.parse(req.data as string);
        return {
          status: 1,
          env: { istate: { last: data.action }, cstate: { count: "1" } },
          transmissions: [JSON.stringify({ identifier, message: { echo: data.text } })],
        };
      }
      return { status: 1 };
    },
  });
  const server = await startServer([
    `--rpc_host=${backend.address}`,
    "--headers=cookie,x-api-token",
  ]);
  try {
    const client = new WsClient(`${server.wsUrl}?token=abc`, "actioncable-v1-json", {
      headers: { cookie: "session=42", "x-api-token": "t0k", "x-ignored": "no" },
    });
    const hello = await client.waitFor((f) => f.type === "welcome");
    // The backend echoes the sid metadata; it is the session id the server assigned.
    assert.ok(server.app.node.sessions.has(hello.sid as string));
    client.send({ command: "subscribe", identifier: chat() });
    await client.waitFor((f) => f.type === "confirm_subscription");
    client.send({
      command: "message",
      identifier: chat(),
      data: JSON.stringify({ action: "speak", text: "hello" }),
    });
    const echo = await client.waitFor((f) => f.message !== undefined);
    assert.deepEqual(echo, { identifier: chat(), message: { echo: "hello" } });
    const res = await server.broadcast({ stream: "chat_1", data: JSON.stringify({ n: 1 }) });
    assert.equal(res.status, 201);
    await client.waitFor((f) => (f.message as { n?: number })?.n === 1);
    client.send({ command: "unsubscribe", identifier: chat() });
    await backend.waitFor((cs) => cs.some((c) => c.request.command === "unsubscribe"));
    await client.close();
    await backend.waitFor((cs) => cs.some((c) => c.method === "disconnect"));

    const sid = hello.sid as string;
    assert.ok(sid);
    assert.equal(server.app.rpc!.stats.retries, 0);
    for (const call of backend.calls) {
      assert.equal(call.metadata.sid, sid, call.method);
      assert.equal(call.metadata.protov, "v1");
      assert.ok(call.hasDeadline, "grpc-timeout sent");
    }

    const [connect] = backend.callsOf("connect");
    const env = connect.request.env as Record<string, unknown>;
    assert.match(env.url as string, /^http:\/\/127\.0\.0\.1:\d+\/cable\?token=abc$/);
    assert.deepEqual(connect.request, {
      env: {
        url: env.url,
        headers: { cookie: "session=42", "x-api-token": "t0k", REMOTE_ADDR: "127.0.0.1" },
      },
    });
    const base = { url: env.url, headers: env.headers };
    const ids = JSON.stringify({ user: "anon" });
    assert.deepEqual(backend.callsOf("command").map((c) => c.request), [
      { command: "subscribe", identifier: chat(), connection_identifiers: ids, env: base },
      {
        command: "message",
        identifier: chat(),
        connection_identifiers: ids,
        data: JSON.stringify({ action: "speak", text: "hello" }),
        env: { ...base, istate: { room: "1" } },
      },
      {
        command: "unsubscribe",
        identifier: chat(),
        connection_identifiers: ids,
        env: { ...base, cstate: { count: "1" }, istate: { room: "1", last: "speak" } },
      },
    ]);
    assert.deepEqual(backend.callsOf("disconnect").map((c) => c.request), [
      { identifiers: ids, env: { ...base, cstate: { count: "1" } } },
    ]);
  } finally {
    await server.stop();
    await backend.stop();
  }
});

Deno.test("gRPC: FAILURE rejects; channel state, stopped streams and disconnect istate", async () => {
  const backend = await GrpcBackend.start({
    connect: (req, metadata) =>
      (req.env as { url: string }).url.includes("bad")
        ? {
          status: 2,
          error_msg: "nope",
          transmissions: [
            JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
          ],
        }
        : welcome(metadata),
    command: (req) => {
      const identifier = req.identifier as string;
      if (req.command === "subscribe" && identifier.includes("secret")) {
        return {
          status: 2,
          transmissions: [JSON.stringify({ identifier, type: "reject_subscription" })],
        };
      }
      if (req.command === "subscribe") {
        return {
          status: 1,
          streams: ["s1", "s2"],
          env: { istate: { a: "1", b: "2" } },
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      return { status: 1, env: { istate: { a: "" } }, stopped_streams: ["s1"] };
    },
  });
  const server = await startServer([`--rpc_host=dns:///${backend.address}`, "--rpc_impl=grpc"]);
  try {
    const bad = new WsClient(`${server.wsUrl}?bad=1`);
    const msg = await bad.waitFor((f) => f.type === "disconnect");
    assert.deepEqual(msg, { type: "disconnect", reason: "unauthorized", reconnect: false });
    assert.equal((await bad.closed).code, 1000);

    const client = new WsClient(server.wsUrl);
    await client.waitFor((f) => f.type === "welcome");
    client.send({ command: "subscribe", identifier: chat("secret") });
    await client.waitFor((f) => f.type === "reject_subscription");
    client.send({ command: "subscribe", identifier: chat() });
    await client.waitFor((f) => f.type === "confirm_subscription");
    client.send({ command: "message", identifier: chat(), data: "{}" });
    await backend.waitFor((cs) => cs.filter((c) => c.request.command === "message").length === 1);
    await server.broadcast({ stream: "s1", data: '"one"' });
    await server.broadcast({ stream: "s2", data: '"two"' });
    await client.waitFor((f) => f.message === "two");
    assert.equal(client.frames.some((f) => f.message === "one"), false);
    await client.close();
    await backend.waitFor((cs) => cs.some((c) => c.method === "disconnect"));
    const [disconnect] = backend.callsOf("disconnect");
    assert.deepEqual(disconnect.request.subscriptions, [chat()]);
    assert.deepEqual((disconnect.request.env as Record<string, unknown>).istate, {
      [chat()]: JSON.stringify({ b: "2" }),
    });
  } finally {
    await server.stop();
    await backend.stop();
  }
});

Deno.test("gRPC: error statuses, retried codes, a hanging handler — others still served", async () => {
  const seen = new Map<string, number>();
  const backend = await GrpcBackend.start({
    connect: (req, metadata) => {
      const url = (req.env as { url: string }).url;
      const kind = new URL(url).searchParams.get("kind") ?? "ok";
      const n = (seen.get(kind) ?? 0) + 1;
      seen.set(kind, n);
      if (kind === "internal") return new GrpcStatus(13, "backend exploded");
      if (kind === "exhausted" && n === 1) return new GrpcStatus(8, "slow down");
      if (kind === "unavailable" && n === 1) return new GrpcStatus(14, "warming up");
      if (kind === "hang") return new Promise<never>(() => {});
      return welcome(metadata);
    },
    command: (req) =>
      req.identifier === chat("broken") ? new GrpcStatus(2, "unknown") : { status: 1 },
  });
  const server = await startServer([
    `--rpc_host=${backend.address}`,
    "--rpc_impl=grpc",
    "--rpc_request_timeout=300",
  ]);
  try {
    const ws = (kind: string) => new WsClient(`${server.wsUrl}?kind=${kind}`);
    const started = Date.now();
    const hang = ws("hang");
    await backend.waitFor((cs) => cs.length === 1);
    // While that call hangs, others are served.
    const [internal, exhausted, unavailable, ok] = ["internal", "exhausted", "unavailable", "ok"]
      .map(ws);
    await ok.waitFor((f) => f.type === "welcome");
    assert.equal(hang.frames.length, 0, "the hanging connect is still pending");
    await exhausted.waitFor((f) => f.type === "welcome");
    await unavailable.waitFor((f) => f.type === "welcome");
    assert.deepEqual(await internal.waitFor((f) => f.type === "disconnect"), {
      type: "disconnect",
      reason: "server_error",
      reconnect: true,
    });
    assert.equal((await internal.closed).code, 1011);
    assert.deepEqual(await hang.waitFor((f) => f.type === "disconnect"), {
      type: "disconnect",
      reason: "server_error",
      reconnect: true,
    });
    assert.equal((await hang.closed).code, 1011);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 300 && elapsed < 2000, `timed out after ${elapsed} ms`);
    assert.equal(seen.get("hang"), 1, "a timeout is not retried");
    assert.equal(seen.get("internal"), 1, "INTERNAL is not retried");
    assert.equal(seen.get("exhausted"), 2);
    assert.equal(seen.get("unavailable"), 2);
    const stats = server.app.rpc!.stats;
    assert.ok(stats.timeouts >= 1);
    assert.equal(stats.retries, 2);

    // A failed Command: the subscription is rejected, the connection stays.
    ok.send({ command: "subscribe", identifier: chat("broken") });
    await ok.waitFor((f) => f.type === "reject_subscription");
    assert.equal(ok.ws.readyState, WebSocket.OPEN);
    await Promise.all([ok.close(), exhausted.close(), unavailable.close()]);
  } finally {
    await server.stop();
    await backend.stop();
  }
});

Deno.test("gRPC: a backend that goes away is retried, then server_error; it comes back", async () => {
  let backend = await GrpcBackend.start();
  const port = backend.port;
  const server = await startServer([`--rpc_host=127.0.0.1:${port}`, "--rpc_impl=grpc"]);
  try {
    const first = new WsClient(server.wsUrl);
    await first.waitFor((f) => f.type === "welcome");
    await backend.stop();

    const started = Date.now();
    const orphan = new WsClient(server.wsUrl);
    assert.deepEqual(await orphan.waitFor((f) => f.type === "disconnect", 8000), {
      type: "disconnect",
      reason: "server_error",
      reconnect: true,
    });
    assert.equal((await orphan.closed).code, 1011);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000, `gave up after ${elapsed} ms`);
    assert.ok(server.app.rpc!.stats.retries >= 3, "retried with backoff");
    assert.ok(server.logs.some((l) => l.msg === "Connect RPC failed"));

    backend = await GrpcBackend.start({}, port);
    const again = new WsClient(server.wsUrl);
    await again.waitFor((f) => f.type === "welcome");
    assert.equal(backend.callsOf("connect").length, 1);
    await Promise.all([first.close(), again.close()]);
  } finally {
    await server.stop();
    await backend.stop();
  }
});

Deno.test("gRPC: grpc-list:// round-robins and fails over from a dead host", async () => {
  const a = await GrpcBackend.start();
  const b = await GrpcBackend.start();
  const server = await startServer([
    `--rpc_host=grpc-list://${a.address},127.0.0.1:${deadPort()},${b.address}`,
  ]);
  try {
    const clients = Array.from({ length: 6 }, () => new WsClient(server.wsUrl));
    for (const c of clients) await c.waitFor((f) => f.type === "welcome");
    assert.equal(a.calls.length + b.calls.length, 6);
    assert.ok(a.calls.length >= 2 && b.calls.length >= 2, `${a.calls.length}/${b.calls.length}`);
    assert.ok(server.app.rpc!.stats.retries >= 1, "the dead host's share was retried");
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await server.stop();
    await Promise.all([a.stop(), b.stop()]);
  }
});

Deno.test("GrpcRpcClient: malformed answers, HTTP errors, trailers-only, abort, close", async () => {
  const raw = await startRawGrpcBackend();
  const client = new GrpcRpcClient({ host: `127.0.0.1:${raw.port}`, requestTimeout: 2000 });
  const env = { url: "http://x/cable" };
  const call = (signal?: AbortSignal) => client.connect({ env }, { sid: "s-1", signal });
  try {
    const cases: Array<[RawGrpcMode, new (...a: never[]) => Error, RegExp]> = [
      ["garbage", RpcResponseError, /undecodable/],
      ["two", RpcResponseError, /expected one response message, got 2/],
      ["no-status", RpcResponseError, /without grpc-status/],
      ["http503", RpcUnavailableError, /UNAVAILABLE: HTTP 503/],
      ["trailers-only", RpcResponseError, /PERMISSION_DENIED: go away ✋/],
      ["deadline", RpcTimeoutError, /DEADLINE_EXCEEDED/],
    ];
    for (const [mode, type, text] of cases) {
      raw.mode = mode;
      await assert.rejects(call(), (err: Error) => {
        assert.ok(err instanceof type, `${mode}: ${err.name} ${err.message}`);
        assert.match(err.message, text);
        return true;
      });
    }
    // All of the above went over one session.
    assert.equal(client.channels[0].dials, 1);
    const h = raw.headers[0];
    assert.equal(h[":method"], "POST");
    assert.equal(h[":path"], "/anycable.RPC/Connect");
    assert.equal(h["content-type"], "application/grpc");
    assert.equal(h["te"], "trailers");
    assert.equal(h["grpc-timeout"], "2000m");
    assert.equal(h["sid"], "s-1");
    assert.equal(h["protov"], "v1");

    raw.mode = "silent";
    const abort = new AbortController();
    const pending = call(abort.signal);
    abort.abort();
    await assert.rejects(pending, RpcTimeoutError);

    await client.close();
    await assert.rejects(call(), RpcResponseError);
  } finally {
    await client.close();
    await raw.stop();
  }
});

Deno.test({
  name: "gRPC over TLS: --rpc_enable_tls with --rpc_tls_root_ca (file or PEM text); bad setups " +
    "(needs node and openssl)",
  ignore: !hasOpenssl() || !hasNode(),
}, async () => {
  const certs = await makeCerts();
  // Node's own TLS + HTTP/2 server in a child process (ALPN h2), answering every call.
  const backend = await FaultBackend.start(0, {
    keyPath: certs.serverKey,
    certPath: certs.serverCert,
  });
  try {
    // The CA file against the IP; then the CA as PEM text against the "localhost" name.
    for (
      const [host, ca] of [
        [backend.address, certs.caPath],
        [`localhost:${backend.port}`, certs.ca],
      ]
    ) {
      const server = await startServer([
        `--rpc_host=${host}`,
        "--rpc_enable_tls",
        `--rpc_tls_root_ca=${ca}`,
      ]);
      try {
        const client = new WsClient(server.wsUrl);
        await client.waitFor((f) => f.type === "welcome");
        await client.close();
        assert.equal(server.app.rpc!.stats.errors, 0);
      } finally {
        await server.stop();
      }
    }
    const streams = backend.streams; // Connect + Disconnect per session
    assert.ok(streams >= 2, `${streams} streams`);

    // Without the CA the certificate is not trusted: the session fails, with a log line.
    const untrusted = await startServer([
      `--rpc_host=${backend.address}`,
      "--rpc_enable_tls",
      "--rpc_request_timeout=500",
    ]);
    try {
      const client = new WsClient(untrusted.wsUrl);
      const msg = await client.waitFor((f) => f.type === "disconnect", 8000);
      assert.equal(msg.reason, "server_error");
      const failures = untrusted.logs.filter((l) => l.msg === "gRPC connection failed");
      assert.ok(
        failures.some((l) => /certificate|issuer/i.test(String(l.error))),
        JSON.stringify(failures),
      );
    } finally {
      await untrusted.stop();
    }

    // A plain-text (h2c) client against the TLS port fails cleanly too.
    const plain = await startServer([`--rpc_host=${backend.address}`, "--rpc_request_timeout=500"]);
    try {
      const client = new WsClient(plain.wsUrl);
      const msg = await client.waitFor((f) => f.type === "disconnect", 8000);
      assert.equal(msg.reason, "server_error");
    } finally {
      await plain.stop();
    }
    assert.equal(backend.streams, streams, "no call got through without TLS trust");

    // Refused at startup with a message that says what to do instead.
    await assert.rejects(
      startServer([`--rpc_host=${backend.address}`, "--rpc_enable_tls", "--rpc_tls_verify=false"]),
      /rpc_tls_verify=false is not supported.*--rpc_tls_root_ca/,
    );
    await assert.rejects(
      startServer([`--rpc_host=${backend.address}`, "--rpc_enable_tls", "--rpc_tls_root_ca=/nope"]),
      /--rpc_tls_root_ca: cannot read \/nope/,
    );
  } finally {
    await backend.stop();
    await certs.remove();
  }
});
