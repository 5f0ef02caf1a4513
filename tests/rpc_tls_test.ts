import assert from "node:assert/strict";
import { loadRootCa, RpcTlsConfigError } from "../src/rpc/rpc_tls.ts";
import { FakeRpc } from "./support/fake_rpc.ts";
import { GrpcWebBackend } from "./support/grpc_web_backend.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { hasOpenssl, makeCerts, type TestCerts } from "./support/certs.ts";
import { WsClient } from "./support/ws_client.ts";

const OPENSSL = hasOpenssl();
const why = OPENSSL ? "" : " (ignored: no openssl CLI here)";

/** Connects one client and returns its first decisive frame (welcome or disconnect). */
async function firstFrame(server: TestServer): Promise<Record<string, unknown>> {
  const c = new WsClient(server.wsUrl);
  const frame = await c.waitFor((f) => f.type === "welcome" || f.type === "disconnect", 8000);
  await c.close();
  return frame;
}

function tlsFailures(server: TestServer): string[] {
  return server.logs.filter((l) => l.msg === "Connect RPC failed").map((l) =>
    JSON.stringify(l.error)
  );
}

async function withPki(fn: (pki: TestCerts) => Promise<void>): Promise<void> {
  const pki = await makeCerts();
  try {
    await fn(pki);
  } finally {
    await pki.remove();
  }
}

Deno.test({
  name: `RPC TLS: gRPC-web over https verifies the backend with --rpc_tls_root_ca${why}`,
  ignore: !OPENSSL,
  fn: () =>
    withPki(async (pki) => {
      const backend = await GrpcWebBackend.start({
        tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caPath },
      });
      try {
        // The CA as a file path (binary) and as inline PEM text (text mode).
        for (
          const [flags, label] of [
            [[`--rpc_host=${backend.url}`, `--rpc_tls_root_ca=${pki.caPath}`], "file, binary"],
            [[
              `--rpc_host=127.0.0.1:${backend.textPort}`,
              `--rpc_tls_root_ca=${pki.ca}`,
              "--rpc_grpc_web_mode=text",
            ], "inline PEM, text, https implied"],
          ] as const
        ) {
          const server = await startServer(["--rpc_impl=grpc-web", ...flags]);
          try {
            assert.equal((await firstFrame(server)).type, "welcome", label);
          } finally {
            await server.stop();
          }
        }
        assert.equal(backend.of("connect").length, 2);

        // A wrong CA, and no CA at all: the handshake fails, is not retried, is logged.
        for (const extra of [[`--rpc_tls_root_ca=${pki.otherCaPath}`], []]) {
          const server = await startServer([
            `--rpc_host=${backend.url}`,
            "--rpc_impl=grpc-web",
            ...extra,
          ]);
          try {
            assert.deepEqual(await firstFrame(server), {
              type: "disconnect",
              reason: "server_error",
              reconnect: true,
            });
            const failures = tlsFailures(server);
            assert.equal(failures.length, 1);
            assert.match(
              failures[0],
              /connect: TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed/,
            );
            assert.match(failures[0], /certificate|UnknownIssuer/i);
            assert.equal(server.app.rpc!.stats.retries, 0, "a TLS failure is not retried");
          } finally {
            await server.stop();
          }
        }
        assert.equal(backend.of("connect").length, 2, "no call got through without trust");
      } finally {
        await backend.kill();
      }
    }),
});

Deno.test({
  name: `RPC TLS: https:// HTTP RPC uses --rpc_tls_root_ca${why}`,
  ignore: !OPENSSL,
  fn: () =>
    withPki(async (pki) => {
      const rpc = new FakeRpc({}, { cert: pki.serverCertPem, key: pki.serverKeyPem });
      try {
        assert.match(rpc.url, /^https:/);
        const good = await startServer([
          `--rpc_host=${rpc.url}`,
          `--rpc_tls_root_ca=${pki.caPath}`,
        ]);
        try {
          assert.equal((await firstFrame(good)).type, "welcome");
        } finally {
          await good.stop();
        }
        assert.equal(rpc.calls("connect").length, 1);

        // --rpc_tls_verify=false cannot turn verification off for fetch: a warning says so.
        const bad = await startServer([
          `--rpc_host=${rpc.url}`,
          `--rpc_tls_root_ca=${pki.otherCaPath}`,
          "--rpc_tls_verify=false",
        ]);
        try {
          assert.equal((await firstFrame(bad)).reason, "server_error");
          const failures = tlsFailures(bad);
          assert.equal(failures.length, 1);
          assert.match(
            failures[0],
            /connect: TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed/,
          );
          assert.ok(bad.logs.some((l) =>
            l.level === "warn" && /--rpc_tls_verify=false is not available/.test(String(l.msg))
          ));
        } finally {
          await bad.stop();
        }
        assert.equal(rpc.calls("connect").length, 1);
      } finally {
        await rpc.stop();
      }
    }),
});

Deno.test("RPC TLS: an unusable --rpc_tls_root_ca stops the start with a clear error", async () => {
  assert.throws(() => loadRootCa("/nonexistent/ca.pem"), (e) => {
    assert.ok(e instanceof RpcTlsConfigError);
    assert.match(e.message, /--rpc_tls_root_ca: cannot read "\/nonexistent\/ca.pem"/);
    return true;
  });
  assert.throws(
    () => loadRootCa("-----BEGIN NONSENSE-----\nxx\n-----END NONSENSE-----"),
    /no PEM certificate found/,
  );
  await assert.rejects(
    startServer(["--rpc_host=https://127.0.0.1:1/_anycable", "--rpc_tls_root_ca=/nonexistent"]),
    RpcTlsConfigError,
  );
});
