/** Redis broadcasters (legacy pub/sub, redisx) and Redis pub/sub against a real redis-server. */
import assert from "node:assert/strict";
import { type BroadcastHandler, InvalidBroadcastError } from "../src/broadcast/broadcaster.ts";
import { RedisBroadcaster } from "../src/broadcast/redis_broadcaster.ts";
import { RedisStreamsBroadcaster } from "../src/broadcast/redisx_broadcaster.ts";
import type { StreamMessage } from "../src/broker/broker.ts";
import { silentLogger } from "../src/logger/logger.ts";
import type { PubSubHandler, RemoteCommand } from "../src/pubsub/pubsub.ts";
import { RedisPubSub } from "../src/pubsub/redis_pubsub.ts";
import { RedisConnection, RedisUnavailableError } from "../src/util/redis_connection.ts";
import {
  captureLogger,
  eventually,
  Inbox,
  retryUntilDelivered,
} from "./support/adapter_helpers.ts";
import { hasRedis, type ServiceHandle, startRedis } from "./support/services.ts";

const REDIS = hasRedis();

function redisTest(name: string, fn: (redis: ServiceHandle) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !REDIS,
    async fn() {
      const redis = await startRedis();
      try {
        await fn(redis);
      } finally {
        await redis.stop();
      }
    },
  });
}

interface Received {
  body: string;
  fanout: boolean;
}

class RecordingHandler implements BroadcastHandler {
  readonly inbox = new Inbox<Received>();
  constructor(readonly behaviour: (body: string) => Promise<void> = () => Promise.resolve()) {}
  async handleBroadcast(body: string, opts: { fanout: boolean }): Promise<void> {
    await this.behaviour(body);
    this.inbox.push({ body, fanout: opts.fanout });
  }
  handleBroadcastValue(value: unknown, opts: { fanout: boolean }): Promise<void> {
    return this.handleBroadcast(JSON.stringify(value), opts);
  }
}

class RecordingNode implements PubSubHandler {
  readonly messages = new Inbox<StreamMessage>();
  readonly commands = new Inbox<RemoteCommand>();
  deliver(msg: StreamMessage): void {
    this.messages.push(msg);
  }
  execute(cmd: RemoteCommand): void {
    this.commands.push(cmd);
  }
}

function raw(url: string): Promise<RedisConnection> {
  return RedisConnection.open({ url, logger: silentLogger });
}

redisTest("redis broadcaster: every instance receives every publication (fan-out)", async (r) => {
  const h1 = new RecordingHandler((body) =>
    body === "bad" ? Promise.reject(new InvalidBroadcastError("bad")) : Promise.resolve()
  );
  const h2 = new RecordingHandler((body) => {
    if (body === "bad") throw new Error("sync failure inside the handler");
    return Promise.resolve();
  });
  const b1 = new RedisBroadcaster({ url: r.url, logger: silentLogger });
  const b2 = new RedisBroadcaster({ url: r.url, logger: silentLogger });
  const client = await raw(r.url);
  try {
    await b1.start(h1);
    await b2.start(h2);
    const body = '{"stream":"chat_1","data":"{\\"text\\":\\"hi\\"}"}';
    await client.command(["PUBLISH", "__anycable__", "bad"]);
    await client.command(["PUBLISH", "__anycable__", body]);
    await client.command(["PUBLISH", "other_channel", "ignored"]);
    await client.command(["PUBLISH", "__anycable__", "second"]);
    for (const h of [h1, h2]) {
      await h.inbox.waitForCount(2);
      assert.deepEqual(h.inbox.items, [
        { body, fanout: true },
        { body: "second", fanout: true },
      ]);
    }
  } finally {
    await Promise.all([b1.close(), b2.close(), client.close()]);
    await b1.close(); // idempotent
  }
});

redisTest(
  "redisx: two consumers in group bx handle each entry exactly once, then XACK+XDEL",
  async (r) => {
    const h1 = new RecordingHandler();
    const h2 = new RecordingHandler();
    const b1 = new RedisStreamsBroadcaster({ url: r.url, logger: silentLogger, consumer: "n1" });
    const b2 = new RedisStreamsBroadcaster({ url: r.url, logger: silentLogger, consumer: "n2" });
    const client = await raw(r.url);
    try {
      await b1.start(h1);
      await b2.start(h2);
      const groups = await client.command(["XINFO", "GROUPS", "__anycable__"]);
      assert.ok(JSON.stringify(groups).includes('"bx"'), "consumer group bx exists");
      const total = 40;
      const sent: string[] = [];
      for (let i = 0; i < total; i++) {
        const body = JSON.stringify({ stream: "s", data: String(i) });
        sent.push(body);
        await client.command(["XADD", "__anycable__", "*", "payload", body]);
      }
      const all = new Inbox<Received>();
      const seen = () => h1.inbox.items.length + h2.inbox.items.length;
      await eventually(() => Promise.resolve(seen() >= total), 5000, "all entries handled");
      all.items.push(...h1.inbox.items, ...h2.inbox.items);
      assert.equal(all.items.length, total, "no entry handled twice");
      assert.deepEqual(all.items.map((x) => x.body).sort(), [...sent].sort());
      assert.ok(all.items.every((x) => x.fanout === false));
      await eventually(async () => (await client.command(["XLEN", "__anycable__"])) === 0);
      const pending = await client.command(["XPENDING", "__anycable__", "bx"]);
      assert.equal((pending as unknown[])[0], 0, "nothing left pending");
    } finally {
      await Promise.all([b1.close(), b2.close(), client.close()]);
    }
  },
);

redisTest(
  "redisx: a failed entry stays pending and is retried before later ones; invalid ones are dropped",
  async (r) => {
    let failures = 0;
    const h = new RecordingHandler((body) => {
      if (body === "invalid") return Promise.reject(new InvalidBroadcastError("nope"));
      if (body === "flaky" && failures++ === 0) return Promise.reject(new Error("broker down"));
      return Promise.resolve();
    });
    const b = new RedisStreamsBroadcaster({
      url: r.url,
      logger: silentLogger,
      blockMs: 200,
      claimIdleMs: 300,
    });
    const client = await raw(r.url);
    try {
      await b.start(h);
      await client.command(["XADD", "__anycable__", "*", "payload", "invalid"]);
      await client.command(["XADD", "__anycable__", "*", "payload", "flaky"]);
      await client.command(["XADD", "__anycable__", "*", "payload", "ok"]);
      await h.inbox.waitFor((xs) => xs.some((x) => x.body === "ok"), 4000, "ok handled");
      // The failed entry was not acked and not skipped: it was retried first, so the order holds.
      assert.deepEqual(h.inbox.items.map((x) => x.body), ["flaky", "ok"]);
      assert.equal(failures, 2);
      await eventually(async () => (await client.command(["XLEN", "__anycable__"])) === 0);
      assert.equal(((await client.command(["XPENDING", "__anycable__", "bx"])) as unknown[])[0], 0);
    } finally {
      await Promise.all([b.close(), client.close()]);
    }
  },
);

redisTest("redis pub/sub: messages reach only nodes subscribed to the stream", async (r) => {
  const nodeA = new RecordingNode();
  const nodeB = new RecordingNode();
  const a = new RedisPubSub({ url: r.url, logger: silentLogger });
  const b = new RedisPubSub({ url: r.url, logger: silentLogger });
  const client = await raw(r.url);
  const wire = new Inbox<string>();
  try {
    await a.start(nodeA);
    await b.start(nodeB);
    await client.subscribe(["chat_1"], (m) => wire.push(m));
    b.subscribe("chat_1");
    b.subscribe("chat_2");
    b.subscribe("chat_1"); // repeated: no-op
    await b.sync();

    const msg: StreamMessage = {
      stream: "chat_1",
      data: '{"text":"hi"}',
      meta: { exclude_socket: "x1" },
      offset: 3,
      epoch: "yS2g",
    };
    await a.broadcast(msg);
    await nodeB.messages.waitForCount(1);
    assert.deepEqual(nodeB.messages.items[0], msg);
    await wire.waitForCount(1);
    assert.equal(
      wire.items[0],
      '{"stream":"chat_1","data":"{\\"text\\":\\"hi\\"}","meta":{"exclude_socket":"x1"},' +
        '"offset":3,"epoch":"yS2g"}',
    );

    b.unsubscribe("chat_1");
    await b.sync();
    await a.broadcast({ stream: "chat_1", data: "after-unsubscribe" });
    await a.broadcast({ stream: "chat_2", data: "marker" });
    await nodeB.messages.waitForCount(2);
    assert.deepEqual(nodeB.messages.items.map((m) => m.data), ['{"text":"hi"}', "marker"]);
    assert.equal(nodeA.messages.items.length, 0, "A never subscribed");
  } finally {
    await Promise.all([a.close(), b.close(), client.close()]);
    await a.close();
  }
});

redisTest("redis pub/sub: remote commands reach every node, the sender included", async (r) => {
  const nodes = [new RecordingNode(), new RecordingNode()];
  const a = new RedisPubSub({ url: r.url, logger: silentLogger });
  const b = new RedisPubSub({ url: r.url, logger: silentLogger });
  try {
    await a.start(nodes[0]);
    await b.start(nodes[1]);
    const cmd: RemoteCommand = {
      command: "disconnect",
      payload: { identifier: '{"user":"1"}', reconnect: true },
    };
    await a.broadcastCommand(cmd);
    for (const n of nodes) {
      await n.commands.waitForCount(1);
      assert.deepEqual(n.commands.items, [cmd]);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

redisTest("redis fault: kill + restart on the same port, every adapter resumes", async (r) => {
  const { logger, lines } = captureLogger();
  const legacy = new RecordingHandler();
  const streams = new RecordingHandler();
  const nodeA = new RecordingNode();
  const nodeB = new RecordingNode();
  const legacyB = new RedisBroadcaster({ url: r.url, logger });
  const streamsB = new RedisStreamsBroadcaster({ url: r.url, logger, blockMs: 300 });
  const a = new RedisPubSub({ url: r.url, logger: logger.child({ node: "a" }) });
  const b = new RedisPubSub({ url: r.url, logger: logger.child({ node: "b" }) });
  let client: RedisConnection | undefined;
  try {
    await legacyB.start(legacy);
    await streamsB.start(streams);
    await a.start(nodeA);
    await b.start(nodeB);
    b.subscribe("chat_1");
    await b.sync();
    b.subscribe("chat_2"); // possibly still in flight when Redis dies

    await r.kill();
    // Every connection notices the drop on its own; wait for the publishing node's warning.
    await lines.waitFor(
      (xs) =>
        xs.some((l) =>
          l.includes("redis unavailable, retrying") && l.includes("node=a") &&
          l.includes("conn=publish")
        ),
      5000,
      "a warning from node a's publish connection",
    );
    // While Redis is down, pub/sub publishes are refused at once.
    await assert.rejects(a.broadcast({ stream: "chat_1", data: "lost" }), RedisUnavailableError);
    b.subscribe("chat_3"); // issued while down

    await r.restart();
    client = await raw(r.url);
    const c = client;
    await retryUntilDelivered(
      nodeB.messages,
      (xs) => xs.some((m) => m.data.startsWith("after")),
      (i) => a.broadcast({ stream: "chat_1", data: `after-${i}` }),
      { label: "redis pub/sub" },
    );
    for (const stream of ["chat_2", "chat_3"]) {
      await retryUntilDelivered(
        nodeB.messages,
        (xs) => xs.some((m) => m.stream === stream),
        (i) => a.broadcast({ stream, data: `after-${i}` }),
        { label: `redis pub/sub ${stream}` },
      );
    }
    await retryUntilDelivered(
      legacy.inbox,
      (xs) => xs.length > 0,
      (i) => c.command(["PUBLISH", "__anycable__", `legacy-${i}`]),
      { label: "legacy broadcaster" },
    );
    // Redis came back empty: the redisx consumer group has to be recreated.
    await retryUntilDelivered(
      streams.inbox,
      (xs) => xs.length > 0,
      (i) => c.command(["XADD", "__anycable__", "*", "payload", `streams-${i}`]),
      { label: "redisx broadcaster", intervalMs: 500 },
    );
    assert.ok(!nodeB.messages.items.some((m) => m.data === "lost"));
    assert.ok(lines.items.some((l) => l.includes("redis connection restored")));
  } finally {
    await Promise.all([legacyB.close(), streamsB.close(), a.close(), b.close(), client?.close()]);
  }
});

Deno.test({
  name: "redis connection: an unreachable Redis fails start with RedisUnavailableError",
  ignore: !REDIS,
  async fn() {
    const r = await startRedis();
    const url = r.url;
    await r.stop();
    await assert.rejects(
      RedisConnection.open({ url, logger: silentLogger, connectTimeoutMs: 300 }),
      RedisUnavailableError,
    );
  },
});
