/**
 * Redis connection options: `rediss://` with a verified certificate and mutual TLS against a
 * `redis-server` started with TLS, and Sentinel failover with real `redis-sentinel` processes.
 */
import assert from "node:assert/strict";
import { hasOpenssl, makeCerts } from "./support/certs.ts";
import {
  hasRedis,
  hasRedisSentinel,
  type ServiceHandle,
  startRedisCustom,
} from "./support/services.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { RedisConnection } from "../src/util/redis_connection.ts";
import { silentLogger } from "../src/logger/logger.ts";

const BASE = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"];

async function cli(port: number, args: string[], tls: string[] = []): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-p", String(port), ...tls, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

async function subscribed(server: { wsUrl: string }, stream: string): Promise<WsClient> {
  const client = new WsClient(server.wsUrl);
  await client.waitFor((f) => f.type === "welcome");
  const identifier = JSON.stringify({ channel: "$pubsub", stream_name: stream });
  client.send({ command: "subscribe", identifier });
  await client.waitFor((f) => f.type === "confirm_subscription");
  return client;
}

const publication = (stream: string, n: number) =>
  JSON.stringify({ stream, data: JSON.stringify({ n }) });

Deno.test({
  name: "rediss:// with --redis_tls_verify, a CA and a client certificate (mutual TLS)",
  ignore: !hasRedis() || !hasOpenssl(),
  async fn() {
    const certs = await makeCerts();
    const redis = await startRedisCustom("redis-server", (port, dir) => [
      ...BASE,
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--tls-cert-file",
      certs.serverCert,
      "--tls-key-file",
      certs.serverKey,
      "--tls-ca-cert-file",
      certs.caPath,
      "--tls-auth-clients",
      "yes",
      "--dir",
      dir,
      "--logfile",
      `${dir}/server.log`,
    ]);
    const url = `rediss://127.0.0.1:${redis.port}`;
    const tlsCli = [
      "--tls",
      "--cacert",
      certs.caPath,
      "--cert",
      certs.clientCert,
      "--key",
      certs.clientKey,
    ];
    const server = await startServer([
      "--norpc",
      "--public",
      "--broadcast_adapter=http,redis",
      "--pubsub=none",
      `--redis_url=${url}`,
      "--redis_tls_verify",
      `--redis_tls_ca_cert_path=${certs.caPath}`,
      `--redis_tls_client_cert_path=${certs.clientCert}`,
      `--redis_tls_client_key_path=${certs.clientKey}`,
      "--redis_keepalive_interval=1",
    ]);
    try {
      const client = await subscribed(server, "tls");
      for (let i = 0; i < 50 && !client.frames.some((f) => f.message); i++) {
        await cli(redis.port, ["PUBLISH", "__anycable__", publication("tls", 1)], tlsCli);
        await new Promise((r) => setTimeout(r, 100));
      }
      await client.waitFor((f) => (f.message as { n?: number })?.n === 1);
      await client.close();

      // Without the client certificate the server refuses the handshake (and the process
      // survives it); with verification on and no CA, the client refuses the server.
      const open = (
        tls: { verify: boolean; caPath?: string; certPath?: string; keyPath?: string },
      ) =>
        RedisConnection.open({
          url,
          logger: silentLogger,
          connectTimeoutMs: 2000,
          settings: { tls },
        });
      await assert.rejects(open({ verify: true, caPath: certs.caPath }));
      await assert.rejects(
        open({ verify: true, certPath: certs.clientCert, keyPath: certs.clientKey }),
      );
      const ok = await open({
        verify: true,
        caPath: certs.caPath,
        certPath: certs.clientCert,
        keyPath: certs.clientKey,
      });
      assert.equal(await ok.command(["PING"]), "PONG");
      await ok.close();
    } finally {
      await server.stop();
      await redis.stop();
      await certs.remove();
    }
  },
});

Deno.test({
  name:
    "--redis_sentinels: the master is found through redis-sentinel and followed after a failover",
  ignore: !hasRedis() || !hasRedisSentinel(),
  async fn() {
    const services: ServiceHandle[] = [];
    try {
      const master = await startRedisCustom("redis-server", (port, dir) => [
        ...BASE,
        "--port",
        String(port),
        "--dir",
        dir,
        "--logfile",
        `${dir}/server.log`,
      ]);
      services.push(master);
      const replica = await startRedisCustom("redis-server", (port, dir) => [
        ...BASE,
        "--port",
        String(port),
        "--replicaof",
        "127.0.0.1",
        String(master.port),
        "--dir",
        dir,
        "--logfile",
        `${dir}/server.log`,
      ]);
      services.push(replica);
      // The sentinel learns the replica from the master's INFO: start it once replication is up.
      for (let i = 0; i < 100; i++) {
        if ((await cli(master.port, ["INFO", "replication"])).includes("connected_slaves:1")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const sentinel = await startRedisCustom("redis-sentinel", (port, dir) => {
        Deno.writeTextFileSync(
          `${dir}/sentinel.conf`,
          [
            `port ${port}`,
            "bind 127.0.0.1",
            `dir ${dir}`,
            `logfile ${dir}/server.log`,
            `sentinel monitor cablemaster 127.0.0.1 ${master.port} 1`,
            "sentinel down-after-milliseconds cablemaster 1000",
            "sentinel failover-timeout cablemaster 5000",
            "",
          ].join("\n"),
        );
        return [`${dir}/sentinel.conf`];
      });
      services.push(sentinel);
      const masterAddr = async () =>
        (await cli(sentinel.port, ["SENTINEL", "get-master-addr-by-name", "cablemaster"]))
          .split("\n")[1];
      for (let i = 0; i < 100; i++) {
        const replicas = await cli(sentinel.port, ["SENTINEL", "replicas", "cablemaster"]);
        if (replicas.includes(String(replica.port))) break;
        await new Promise((r) => setTimeout(r, 100));
      }

      const server = await startServer([
        "--norpc",
        "--public",
        "--broadcast_adapter=http,redis",
        "--pubsub=none",
        "--redis_url=redis://cablemaster",
        `--redis_sentinels=127.0.0.1:${sentinel.port}`,
        "--redis_sentinel_discovery_interval=1",
      ]);
      try {
        const client = await subscribed(server, "sent");
        const deliver = async (port: number, n: number, rounds: number) => {
          for (let i = 0; i < rounds; i++) {
            await cli(port, ["PUBLISH", "__anycable__", publication("sent", n)]);
            if (client.frames.some((f) => (f.message as { n?: number })?.n === n)) return true;
            await new Promise((r) => setTimeout(r, 200));
          }
          return false;
        };
        assert.ok(await deliver(master.port, 1, 50), "delivered through the first master");

        await master.kill();
        for (let i = 0; i < 150 && (await masterAddr()) !== String(replica.port); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(await masterAddr(), String(replica.port), "the sentinel promoted the replica");
        assert.ok(await deliver(replica.port, 2, 100), "delivered through the promoted master");
        await client.close();
      } finally {
        await server.stop();
      }
    } finally {
      for (const s of services.reverse()) await s.stop();
    }
  },
});

Deno.test({
  name: "--redis_keepalive_interval: idle Redis connections are PINGed",
  ignore: !hasRedis(),
  async fn() {
    const redis = await startRedisCustom("redis-server", (port, dir) => [
      ...BASE,
      "--port",
      String(port),
      "--dir",
      dir,
      "--logfile",
      `${dir}/server.log`,
    ]);
    const server = await startServer([
      "--norpc",
      "--public",
      "--broker=redis",
      "--pubsub=none",
      `--redis_url=${redis.url}`,
      "--redis_keepalive_interval=1",
    ]);
    try {
      let clients = "";
      for (let i = 0; i < 50 && !/cmd=ping/.test(clients); i++) {
        await new Promise((r) => setTimeout(r, 200));
        clients = await cli(redis.port, ["CLIENT", "LIST"]);
      }
      // redis-cli's own connection shows cmd=client; the broker's idle one its last PING.
      assert.match(clients, /cmd=ping/);
    } finally {
      await server.stop();
      await redis.stop();
    }
  },
});
