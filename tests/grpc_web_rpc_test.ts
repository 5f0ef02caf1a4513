import assert from "node:assert/strict";
import { encodeGrpcFrame } from "../src/rpc/grpc_framing.ts";
import { grpcWebBaseUrl, GrpcWebRpcClient } from "../src/rpc/grpc_web_client.ts";
import { decodeBase64Chunks, encodeBase64, parseGrpcWebBody } from "../src/rpc/grpc_web_framing.ts";
import { RpcResponseError, RpcTimeoutError, RpcUnavailableError } from "../src/rpc/rpc_client.ts";
import { GrpcWebBackend } from "./support/grpc_web_backend.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const chat = (stream = "chat_1") => JSON.stringify({ channel: "ChatChannel", stream });

/** A port nothing listens on (bound, then released). */
function deadPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("gRPC-web framing: trailer frame, base64 chunks, base URLs", () => {
  const trailer = new TextEncoder().encode("grpc-status: 0\r\nGrpc-Message: ok%20then\r\n");
  const trailerFrame = encodeGrpcFrame(trailer);
  trailerFrame[0] = 0x80;
  const msg = encodeGrpcFrame(new Uint8Array([1, 2, 3]));
  const body = new Uint8Array([...msg, ...trailerFrame]);
  const parsed = parseGrpcWebBody(body);
  assert.deepEqual(parsed.messages, [new Uint8Array([1, 2, 3])]);
  assert.deepEqual([...parsed.trailers!], [["grpc-status", "0"], ["grpc-message", "ok%20then"]]);
  // Two padded chunks back to back decode as one body.
  const text = encodeBase64(msg) + "\n" + encodeBase64(trailerFrame);
  assert.ok(encodeBase64(msg).endsWith("="), "the first chunk is padded");
  assert.deepEqual(decodeBase64Chunks(text), body);
  assert.throws(() => parseGrpcWebBody(body.subarray(0, 7)), /truncated/);
  assert.throws(() => parseGrpcWebBody(new Uint8Array([...trailerFrame, ...msg])), /after/);
  assert.throws(() => parseGrpcWebBody(new Uint8Array([1, 0, 0, 0, 0])), /compressed/);
  assert.throws(() => decodeBase64Chunks("AAA*"), /not base64/);
  assert.throws(() => decodeBase64Chunks("=AAA"), /padding/);
  assert.equal(grpcWebBaseUrl("http://h:1/rpc/"), "http://h:1/rpc");
  assert.equal(grpcWebBaseUrl("h:1"), "http://h:1");
  assert.equal(grpcWebBaseUrl("h:1", true), "https://h:1");
  assert.throws(() => grpcWebBaseUrl("ftp://h:1"), /http/);
});

Deno.test("gRPC-web against a Connect server: binary and text, errors, deadlines", async (t) => {
  const backend = await GrpcWebBackend.start();
  try {
    for (const mode of ["binary", "text"] as const) {
      await t.step(`${mode}: connect, subscribe, perform, unsubscribe, disconnect`, async () => {
        backend.calls.length = 0;
        const server = await startServer([
          `--rpc_host=${mode === "text" ? backend.textUrl : backend.url}`,
          "--rpc_impl=grpc-web",
          `--rpc_grpc_web_mode=${mode}`,
          "--headers=cookie",
        ]);
        try {
          const client = new WsClient(`${server.wsUrl}?token=abc`, "actioncable-v1-json", {
            headers: { cookie: "session=42" },
          });
          const hello = await client.waitFor((f) => f.type === "welcome");
          const sid = hello.sid as string;
          assert.ok(server.app.node.sessions.has(sid), "the sid metadata reached the backend");
          client.send({ command: "subscribe", identifier: chat() });
          await client.waitFor((f) => f.type === "confirm_subscription");
          client.send({
            command: "message",
            identifier: chat(),
            data: JSON.stringify({ action: "echo", text: "hi" }),
          });
          const echo = await client.waitFor((f) => f.message !== undefined);
          assert.deepEqual(echo, { identifier: chat(), message: { action: "echo", text: "hi" } });
          // The subscription's stream is live.
          const res = await server.broadcast({ stream: "chat_1", data: JSON.stringify({ n: 1 }) });
          assert.equal(res.status, 201);
          await client.waitFor((f) => (f.message as { n?: number })?.n === 1);
          client.send({ command: "unsubscribe", identifier: chat() });
          await backend.waitFor((cs) => cs.some((c) => c.request.command === "unsubscribe"));
          await client.close();
          await backend.waitFor((cs) => cs.some((c) => c.method === "disconnect"));

          for (const call of backend.calls) {
            assert.equal(call.headers.sid, sid, call.method);
            assert.equal(call.headers.protov, "v1");
            assert.equal(call.headers["x-grpc-web"], "1");
            assert.match(call.headers["grpc-timeout"] ?? "", /^\d+m$/);
            // The text port hands Connect a binary request; it notes what the client sent.
            assert.equal(
              call.headers["x-client-content-type"] ?? call.headers["content-type"],
              mode === "text" ? "application/grpc-web-text" : "application/grpc-web+proto",
            );
          }
          const [connect] = backend.of("connect");
          const env = connect.request.env as Record<string, unknown>;
          assert.match(env.url as string, /\/cable\?token=abc$/);
          assert.deepEqual(env.headers, { cookie: "session=42", REMOTE_ADDR: "127.0.0.1" });
          const ids = JSON.stringify({ user: "web" });
          assert.deepEqual(backend.of("command").map((c) => c.request.command), [
            "subscribe",
            "message",
            "unsubscribe",
          ]);
          assert.equal(backend.of("command")[0].request.connectionIdentifiers, ids);
          // cstate from Connect travels with the later calls.
          assert.deepEqual(
            (backend.of("disconnect")[0].request.env as Record<string, unknown>).cstate,
            { visits: "1" },
          );
          assert.equal(backend.of("disconnect")[0].request.identifiers, ids);
          assert.equal(server.app.rpc!.stats.errors, 0);
        } finally {
          await server.stop();
        }
      });
    }

    await t.step("rejections, error statuses, a deadline — others still served", async () => {
      backend.calls.length = 0;
      const server = await startServer([
        `--rpc_host=${backend.url}`,
        "--rpc_impl=grpc-web",
        "--rpc_request_timeout=400",
      ]);
      try {
        const ws = (rpc: string) => new WsClient(`${server.wsUrl}?rpc=${rpc}`);
        const started = Date.now();
        const hang = ws("hang");
        await backend.waitFor((cs) => cs.some((c) => c.method === "connect"));
        const reject = ws("reject");
        const internal = ws("internal");
        const ok = ws("ok");
        await ok.waitFor((f) => f.type === "welcome");
        assert.equal(hang.frames.length, 0, "the hanging connect is still pending");
        assert.deepEqual(await reject.waitFor((f) => f.type === "disconnect"), {
          type: "disconnect",
          reason: "unauthorized",
        });
        assert.equal((await reject.closed).code, 1000);
        assert.deepEqual(await internal.waitFor((f) => f.type === "disconnect"), {
          type: "disconnect",
          reason: "server_error",
          reconnect: true,
        });
        assert.deepEqual(await hang.waitFor((f) => f.type === "disconnect", 5000), {
          type: "disconnect",
          reason: "server_error",
          reconnect: true,
        });
        const elapsed = Date.now() - started;
        // The per-request deadline ended it, not the 3 s call budget (the message says which).
        assert.ok(elapsed >= 400 && elapsed < 5000, `timed out after ${elapsed} ms`);
        // The backend saw the deadline expire (grpc-timeout) or the request go away.
        await backend.waitFor((cs) => cs.some((c) => c.method === "aborted"));
        const failed = server.logs.filter((l) => l.msg === "Connect RPC failed")
          .map((l) => String((l.error as Record<string, unknown>)?.message ?? l.error));
        assert.ok(failed.some((m) => /gRPC INTERNAL: boom in connect/.test(m)), failed.join());
        // Our 400 ms deadline (it fires up to one 10 ms clock tick late) or the backend's own
        // answer to grpc-timeout, whichever came first; the 3 s call budget would say so.
        assert.ok(
          failed.some((m) => /no answer within 400 ms|DEADLINE_EXCEEDED/.test(m)),
          failed.join(),
        );
        assert.equal(
          backend.calls.filter((c) =>
            c.method === "connect" && /rpc=internal/.test(
              String((c.request.env as Record<string, unknown>).url),
            )
          ).length,
          1,
          "INTERNAL is not retried",
        );

        // A Command that fails with a gRPC status: rejected, the connection stays.
        ok.send({ command: "subscribe", identifier: chat() });
        await ok.waitFor((f) => f.type === "confirm_subscription");
        ok.send({ command: "message", identifier: chat(), data: '{"action":"fail"}' });
        await backend.waitFor((cs) => cs.some((c) => c.request?.data === '{"action":"fail"}'));
        ok.send({ command: "message", identifier: chat(), data: '{"action":"echo"}' });
        await ok.waitFor((f) => f.message !== undefined);
        assert.ok(
          server.logs.some((l) =>
            l.msg === "perform failed" && /PERMISSION_DENIED: not allowed/.test(JSON.stringify(l))
          ),
        );
        assert.equal(ok.ws.readyState, WebSocket.OPEN);
        await ok.close();
      } finally {
        await server.stop();
      }
    });

    await t.step("UNAVAILABLE is retried within the call budget", async () => {
      const server = await startServer([`--rpc_host=${backend.url}`, "--rpc_impl=grpc-web"]);
      try {
        const c = new WsClient(`${server.wsUrl}?rpc=unavailable`);
        await c.waitFor((f) => f.type === "disconnect", 8000);
        assert.ok(server.app.rpc!.stats.retries >= 2, "retried with backoff");
      } finally {
        await server.stop();
      }
    });
  } finally {
    await backend.kill();
  }
});

Deno.test("gRPC-web: a dead backend is retried, then server_error; it comes back", async () => {
  let backend = await GrpcWebBackend.start();
  const port = backend.port;
  const server = await startServer([
    `--rpc_host=http://127.0.0.1:${port}`,
    "--rpc_impl=grpc-web",
  ]);
  try {
    const first = new WsClient(server.wsUrl);
    await first.waitFor((f) => f.type === "welcome");
    await backend.kill();

    const started = Date.now();
    const orphan = new WsClient(server.wsUrl);
    assert.deepEqual(await orphan.waitFor((f) => f.type === "disconnect", 8000), {
      type: "disconnect",
      reason: "server_error",
      reconnect: true,
    });
    assert.ok(Date.now() - started < 6000);
    assert.ok(server.app.rpc!.stats.retries >= 3, "retried with backoff");
    const failed = server.logs.find((l) => l.msg === "Connect RPC failed");
    assert.match(JSON.stringify(failed), /unreachable/);

    backend = await GrpcWebBackend.start({ port });
    const again = new WsClient(server.wsUrl);
    await again.waitFor((f) => f.type === "welcome", 8000);
    assert.equal(backend.of("connect").length, 1);
    await Promise.all([first.close(), again.close()]);
  } finally {
    await server.stop();
    await backend.kill();
  }
});

Deno.test("GrpcWebRpcClient: trailers-only, HTTP errors, malformed bodies, abort", async () => {
  let answer: () => Response = () => new Response(null, { status: 500 });
  const raw = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    return answer();
  });
  const client = new GrpcWebRpcClient({
    url: `http://127.0.0.1:${raw.addr.port}`,
    requestTimeout: 2000,
    mode: "binary",
  });
  const call = () => client.connect({ env: { url: "ws://x/" } }, { sid: "s1" });
  const grpcWeb = (body: Uint8Array | null, headers: Record<string, string> = {}) => () =>
    new Response(body as Uint8Array<ArrayBuffer> | null, {
      headers: { "content-type": "application/grpc-web+proto", ...headers },
    });
  const trailers = (text: string) => {
    const f = encodeGrpcFrame(new TextEncoder().encode(text));
    f[0] = 0x80;
    return f;
  };
  try {
    answer = grpcWeb(null, { "grpc-status": "16", "grpc-message": "who%20are%20you" });
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof RpcResponseError);
      assert.match(e.message, /UNAUTHENTICATED: who are you/);
      return true;
    });
    answer = grpcWeb(null, { "grpc-status": "14" });
    await assert.rejects(call(), RpcUnavailableError);
    answer = grpcWeb(trailers("grpc-status: 4\r\n"));
    await assert.rejects(call(), RpcTimeoutError);
    answer = () => new Response("busy", { status: 503 });
    await assert.rejects(call(), RpcUnavailableError);
    answer = () => new Response("<html>", { headers: { "content-type": "text/html" } });
    await assert.rejects(call(), /unexpected content-type/);
    answer = grpcWeb(encodeGrpcFrame(new Uint8Array([0x08, 0x01])));
    await assert.rejects(call(), /without grpc-status/);
    answer = grpcWeb(encodeGrpcFrame(new Uint8Array([0x08, 0x01])).subarray(0, 4));
    await assert.rejects(call(), /truncated/);
    answer = grpcWeb(new Uint8Array([...trailers("grpc-status: 0\r\n")]));
    await assert.rejects(call(), /expected one response message, got 0/);
    answer = grpcWeb(
      new Uint8Array([...encodeGrpcFrame(new Uint8Array([0xff])), ...trailers("grpc-status: 0")]),
    );
    await assert.rejects(call(), /undecodable/);
    // A good answer (status SUCCESS = 1) in text form, in two chunks.
    answer = () =>
      new Response(
        encodeBase64(encodeGrpcFrame(new Uint8Array([0x08, 0x01]))) +
          encodeBase64(trailers("grpc-status: 0\r\n")),
        { headers: { "content-type": "application/grpc-web-text+proto" } },
      );
    assert.deepEqual(await call(), { status: 1 });

    // The caller's abort is passed through as an abort, not as a timeout.
    answer = () =>
      new Response(new ReadableStream({ start() {} }), {
        headers: { "content-type": "application/grpc-web+proto" },
      });
    const ac = new AbortController();
    const pending = client.connect({ env: { url: "ws://x/" } }, { sid: "s1", signal: ac.signal });
    setTimeout(() => ac.abort(new DOMException("session closed", "AbortError")), 50);
    await assert.rejects(pending, (e) => e instanceof DOMException && e.name === "AbortError");

    const dead = new GrpcWebRpcClient({
      url: `http://127.0.0.1:${deadPort()}`,
      requestTimeout: 1000,
      mode: "text",
    });
    await assert.rejects(
      dead.connect({ env: { url: "ws://x/" } }, { sid: "s" }),
      RpcUnavailableError,
    );
  } finally {
    await client.close();
    await raw.shutdown();
  }
});
