/**
 * --ssl_cert / --ssl_key: WebSocket (wss), SSE, long polling, broadcasts and metrics over HTTPS,
 * checked by clients that verify the server's certificate against a CA made for the test.
 */
import assert from "node:assert/strict";
import { hasOpenssl, makeCerts } from "./support/certs.ts";
import { RawWs } from "./support/raw_ws.ts";
import { startServer } from "./support/server.ts";

const HAS_OPENSSL = hasOpenssl();
if (!HAS_OPENSSL) console.log("tls_test: openssl is missing (Debian package openssl)");

Deno.test({
  name:
    "TLS: wss, SSE, long polling, broadcasts and metrics (own ports too) over HTTPS with a verified certificate",
  ignore: !HAS_OPENSSL,
  async fn() {
    const certs = await makeCerts();
    const free = () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      return port;
    };
    const [broadcastPort, metricsPort] = [free(), free()];
    const server = await startServer([
      "--norpc",
      "--public",
      "--sse",
      "--poll",
      "--poll_flush_interval=20",
      "--metrics_http=/metrics",
      `--metrics_port=${metricsPort}`,
      `--http_broadcast_port=${broadcastPort}`,
      "--broadcast_key=test-key",
      `--ssl_cert=${certs.serverCert}`,
      `--ssl_key=${certs.serverKey}`,
    ]);
    const client = Deno.createHttpClient({ caCerts: [certs.ca] });
    const base = `https://127.0.0.1:${server.app.port}`;
    const ws = await RawWs.connect(server.app.port, "/cable", "actioncable-v1-json", {
      caCerts: [certs.ca],
    });
    const ctl = new AbortController();
    try {
      const health = await fetch(`${base}/health`, { client });
      assert.equal(health.status, 200);
      assert.equal(await health.text(), "Success");

      // A client that does not trust the CA is refused by its own verification.
      await assert.rejects(fetch(`${base}/health`));
      // Plain HTTP on the TLS port gets nothing useful.
      await assert.rejects(
        fetch(`http://127.0.0.1:${server.app.port}/health`, { signal: AbortSignal.timeout(5000) })
          .then(async (r) => {
            await r.body?.cancel();
            if (r.status === 200) return;
            throw new Error(`status ${r.status}`);
          }),
      );

      // wss: subscribe to a public stream.
      assert.match((await ws.until((t) => t.includes("welcome")))!, /welcome/);
      const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "tls" });
      await ws.sendText(JSON.stringify({ command: "subscribe", identifier }));
      await ws.until((t) => t.includes("confirm_subscription"));

      // SSE over HTTPS.
      const sse = await fetch(`${base}/events?stream=tls`, { client, signal: ctl.signal });
      assert.equal(sse.status, 200);
      const reader = sse.body!.pipeThrough(new TextDecoderStream()).getReader();
      let sseText = "";
      while (!sseText.includes("confirm_subscription")) {
        const { value, done } = await reader.read();
        if (done) break;
        sseText += value;
      }

      // Long polling over HTTPS.
      const open = await fetch(`${base}/lp`, {
        client,
        method: "POST",
        body: JSON.stringify({ command: "subscribe", identifier }),
      });
      assert.equal(open.status, 200);
      const pollId = open.headers.get("x-anycable-poll-id");
      assert.ok(pollId);
      await open.text();

      // A broadcast over HTTPS reaches all three.
      const b = await fetch(`https://127.0.0.1:${broadcastPort}/_broadcast`, {
        client,
        method: "POST",
        headers: { authorization: "Bearer test-key" },
        body: JSON.stringify({ stream: "tls", data: JSON.stringify({ over: "tls" }) }),
      });
      assert.equal(b.status, 201);
      await b.body?.cancel();
      assert.match((await ws.until((t) => t.includes('"over"')))!, /"tls"/);
      while (!sseText.includes('"over"')) {
        const { value, done } = await reader.read();
        if (done) break;
        sseText += value;
      }
      assert.match(sseText, /"over":"tls"/);
      let polled = "";
      for (let i = 0; i < 20 && !polled.includes('"over"'); i++) {
        const next = await fetch(`${base}/lp`, {
          client,
          method: "POST",
          headers: { "x-anycable-poll-id": pollId },
          body: "",
        });
        polled += await next.text();
      }
      assert.match(polled, /"over":"tls"/);

      // Metrics over HTTPS.
      const metrics = await fetch(`https://127.0.0.1:${metricsPort}/metrics`, { client });
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /clients_num/);
    } finally {
      ctl.abort();
      ws.close();
      client.close();
      await server.stop();
      await certs.remove();
    }
  },
});
