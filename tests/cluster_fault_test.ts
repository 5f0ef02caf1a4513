/**
 * Outages of the shared service under a running two-node cluster (docs/cluster.md, "When Redis
 * or NATS goes down"): Redis, then NATS, is killed and restarted on the same port while clients
 * stay connected. The nodes keep serving, log the outage, refuse HTTP publications they cannot
 * distribute (501), and deliver again through every adapter once the service is back.
 */
import assert from "node:assert/strict";
import { silentLogger } from "../src/logger/logger.ts";
import { NatsLink } from "../src/util/nats_connection.ts";
import { RedisConnection } from "../src/util/redis_connection.ts";
import {
  CHAT,
  EXT,
  type Frame,
  httpPublish,
  ident,
  startNodes,
  stopNodes,
  subscribe,
} from "./support/cluster.ts";
import type { ServerProcess } from "./support/process.ts";
import {
  hasNats,
  hasRedis,
  type ServiceHandle,
  startNats,
  startRedis,
} from "./support/services.ts";
import { WsClient } from "./support/ws_client.ts";

const REDIS = hasRedis();
const NATS = hasNats();

interface Node {
  proc: ServerProcess;
  port: number;
  /** Set when the process exits. */
  exitCode?: number;
}

async function startFaultNodes(n: number, args: string[]): Promise<Node[]> {
  return (await startNodes(n, args)).map((proc) => {
    const node: Node = { proc, port: proc.port };
    proc.exited.then((code) => node.exitCode = code);
    return node;
  });
}

function stopFaultNodes(nodes: Node[]): Promise<void> {
  return stopNodes(nodes.map((n) => n.proc));
}

async function connect(port: number): Promise<WsClient> {
  const client = new WsClient(`ws://127.0.0.1:${port}/cable`, EXT);
  await client.waitFor((f) => f.type === "welcome");
  return client;
}

/** Data frames of a subscription carrying `{id}` messages whose id starts with `prefix`. */
function received(client: WsClient, prefix: string, identifier = CHAT): Frame[] {
  return client.frames.filter((f) =>
    f.identifier === identifier && f.type === undefined &&
    String((f.message as { id?: unknown } | undefined)?.id).startsWith(prefix)
  );
}

function publication(id: string, stream = "chat", meta?: Record<string, unknown>): string {
  return JSON.stringify({ stream, data: JSON.stringify({ id }), ...(meta ? { meta } : {}) });
}

/**
 * Repeats `attempt(i)` (errors ignored: the service may still be coming back) until every
 * client has a message whose id starts with `prefix`; each attempt gets `intervalMs` to land.
 * Returns the HTTP-like results of the attempts.
 */
async function retryUntilEveryone(
  clients: WsClient[],
  prefix: string,
  attempt: (i: number) => Promise<unknown>,
  opts: { identifier?: string; intervalMs?: number; timeoutMs?: number } = {},
): Promise<unknown[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const results: unknown[] = [];
  const done = (c: WsClient) => received(c, prefix, opts.identifier).length > 0;
  for (let i = 0; !clients.every(done); i++) {
    if (Date.now() > deadline) {
      throw new Error(`delivery of ${prefix}* did not resume; attempts: ${results.join(",")}`);
    }
    results.push(await attempt(i).catch((err) => `error: ${err}`));
    await Promise.allSettled(
      clients.map((c) => c.waitFor(() => done(c), opts.intervalMs ?? 300)),
    );
  }
  return results;
}

async function health(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  await res.body?.cancel();
  return res.status;
}

function waitForLogEverywhere(nodes: Node[], msg: string, timeoutMs = 10_000): Promise<void[]> {
  return Promise.all(nodes.map((n) => n.proc.waitForLog((l) => l.msg === msg, timeoutMs)));
}

/**
 * Asks for the history after the position of the data frame `seen`; returns the
 * confirm_history / reject_history reply.
 */
async function history(client: WsClient, seen: Frame): Promise<Frame> {
  const from = client.frames.length;
  client.send({
    command: "history",
    identifier: CHAT,
    history: { streams: { chat: { epoch: seen.epoch, offset: seen.offset } } },
  });
  const isReply = (f: Frame) => f.type === "confirm_history" || f.type === "reject_history";
  await client.waitFor(() => client.frames.slice(from).some(isReply));
  return client.frames.slice(from).find(isReply)!;
}

/**
 * During the outage: processes up, /health 200, clients connected, HTTP publications and
 * remote commands -> 501.
 */
async function checkServingWhileDown(nodes: Node[], clients: WsClient[]): Promise<void> {
  for (const node of nodes) {
    assert.equal(node.exitCode, undefined, "the process keeps running");
    assert.equal(await health(node.port), 200);
    assert.equal(await httpPublish(node.port, publication("during-outage")), 501);
    const command = { command: "disconnect", payload: { identifier: "{}", reconnect: true } };
    assert.equal(await httpPublish(node.port, JSON.stringify(command)), 501);
  }
  for (const c of clients) assert.equal(c.ws.readyState, WebSocket.OPEN, "clients stay connected");
}

/** Two nodes, one ext client on each subscribed to chat; waits until the pub/sub carries it. */
async function clientsOn(nodes: Node[]): Promise<WsClient[]> {
  const clients = await Promise.all(nodes.map((n) => connect(n.port)));
  await Promise.all(clients.map((c) => subscribe(c)));
  await retryUntilEveryone(
    clients,
    "warm-",
    (i) => httpPublish(nodes[0].port, publication(`warm-${i}`, "chat", { transient: true })),
  );
  return clients;
}

Deno.test({
  name: "redis outage: nodes keep serving, HTTP gets 501, every adapter resumes after restart",
  ignore: !REDIS,
  async fn() {
    const redis: ServiceHandle = await startRedis();
    let nodes: Node[] = [];
    const clients: WsClient[] = [];
    let publisher: RedisConnection | undefined;
    try {
      // No --pubsub: the Redis broker turns Redis pub/sub on by itself.
      nodes = await startFaultNodes(2, [
        "--broker=redis",
        `--redis_url=${redis.url}`,
        "--broadcast_adapter=http,redis,redisx",
      ]);
      for (const n of nodes) {
        const line = n.proc.lines.find((l) => l.msg === "Cableway is listening")!;
        assert.equal(line.pubsub, "redis");
      }
      clients.push(...await clientsOn(nodes));
      assert.equal(await httpPublish(nodes[0].port, publication("before")), 201);
      await Promise.all(clients.map((c) => c.waitFor((f) => received(c, "before").includes(f))));
      const before = received(clients[1], "before")[0];

      await redis.kill();
      await waitForLogEverywhere(nodes, "redis unavailable, retrying");
      const warning = nodes[0].proc.lines.find((l) => l.msg === "redis unavailable, retrying")!;
      assert.equal(warning.level, "warn");
      assert.equal(warning.redis, `127.0.0.1:${redis.port}`);
      await checkServingWhileDown(nodes, clients);
      // No history while the broker is unreachable.
      assert.equal((await history(clients[0], before)).type, "reject_history");
      // Subscribing still works locally; this node's first "news" subscriber, so the pub/sub
      // SUBSCRIBE can only reach Redis after the restart.
      const late = await connect(nodes[1].port);
      clients.push(late);
      await subscribe(late, ident("news"));

      await redis.restart();
      await waitForLogEverywhere(nodes, "redis connection restored");
      const main = clients.slice(0, 2);
      await retryUntilEveryone(
        main,
        "after-",
        (i) => httpPublish(nodes[i % 2].port, publication(`after-${i}`)),
      );
      // This Redis keeps nothing across restarts: the broker starts a new epoch, and positions
      // from the old one are rejected.
      const after = received(main[0], "after-")[0];
      assert.equal(typeof after.epoch, "string");
      assert.notEqual(after.epoch, before.epoch, "new epoch after Redis lost its data");
      assert.equal((await history(main[1], before)).type, "reject_history");
      await retryUntilEveryone(
        [late],
        "news-",
        (i) => httpPublish(nodes[0].port, publication(`news-${i}`, "news")),
        { identifier: ident("news") },
      );

      const p = publisher = await RedisConnection.open({ url: redis.url, logger: silentLogger });
      await retryUntilEveryone(
        main,
        "legacy-",
        (i) => p.command(["PUBLISH", "__anycable__", publication(`legacy-${i}`)]),
      );
      // The redisx consumer group vanished with the data; it is recreated and entries added
      // after the restart are consumed (once, by one node).
      await retryUntilEveryone(
        main,
        "queued-",
        (i) => p.command(["XADD", "__anycable__", "*", "payload", publication(`queued-${i}`)]),
      );

      for (const c of main) assert.equal(received(c, "during-outage").length, 0);
      for (const n of nodes) assert.equal(n.exitCode, undefined);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await publisher?.close();
      await stopFaultNodes(nodes);
      await redis.stop();
    }
  },
});

Deno.test({
  name: "nats outage: nodes keep serving, HTTP gets 501, history survives (JetStream files)",
  ignore: !NATS,
  async fn() {
    const nats: ServiceHandle = await startNats({ jetstream: true });
    let nodes: Node[] = [];
    const clients: WsClient[] = [];
    let publisher: NatsLink | undefined;
    try {
      // No --pubsub: the NATS broker turns NATS pub/sub on by itself.
      nodes = await startFaultNodes(2, [
        "--broker=nats",
        `--nats_servers=${nats.url}`,
        "--broadcast_adapter=http,nats",
      ]);
      for (const n of nodes) {
        const line = n.proc.lines.find((l) => l.msg === "Cableway is listening")!;
        assert.equal(line.pubsub, "nats");
      }
      clients.push(...await clientsOn(nodes));
      assert.equal(await httpPublish(nodes[0].port, publication("before")), 201);
      await Promise.all(clients.map((c) => c.waitFor((f) => received(c, "before").includes(f))));
      const before = received(clients[1], "before")[0];

      await nats.kill();
      await waitForLogEverywhere(nodes, "nats unavailable, retrying");
      const warning = nodes[0].proc.lines.find((l) => l.msg === "nats unavailable, retrying")!;
      assert.equal(warning.level, "warn");
      await checkServingWhileDown(nodes, clients);
      assert.equal((await history(clients[0], before)).type, "reject_history");
      const main = [...clients];
      const late = await connect(nodes[1].port);
      clients.push(late);
      await subscribe(late, ident("news"));

      await nats.restart(); // same port, same JetStream store directory
      await waitForLogEverywhere(nodes, "nats connection restored");
      await retryUntilEveryone(
        main,
        "after-",
        (i) => httpPublish(nodes[i % 2].port, publication(`after-${i}`)),
      );
      await retryUntilEveryone(
        [late],
        "news-",
        (i) => httpPublish(nodes[0].port, publication(`news-${i}`, "news")),
        { identifier: ident("news") },
      );
      // JetStream kept its files: same epoch, offsets go on, old positions still replay.
      const after = received(main[0], "after-")[0];
      assert.equal(after.epoch, before.epoch);
      assert.ok((after.offset as number) > (before.offset as number));
      const from = main[1].frames.length;
      assert.equal((await history(main[1], before)).type, "confirm_history");
      const replay = main[1].frames.slice(from).filter((f) =>
        f.identifier === CHAT && f.type === undefined
      );
      assert.ok(replay.length > 0);
      replay.forEach((f, k) => {
        assert.equal(f.epoch, before.epoch);
        assert.equal(f.offset, (before.offset as number) + k + 1);
      });
      assert.ok(replay.some((f) => f.offset === after.offset), "the live message is in history");

      const p = publisher = await NatsLink.open({ servers: nats.url, logger: silentLogger });
      const encoder = new TextEncoder();
      await retryUntilEveryone(main, "fanout-", async (i) => {
        p.nc.publish("__anycable__", encoder.encode(publication(`fanout-${i}`)));
        await p.nc.flush();
      });

      for (const c of main) assert.equal(received(c, "during-outage").length, 0);
      for (const n of nodes) assert.equal(n.exitCode, undefined);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await publisher?.close();
      await stopFaultNodes(nodes);
      await nats.stop();
    }
  },
});
