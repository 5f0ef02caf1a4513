/** The shared broker suite against a real redis-server, plus Redis-specific cases. */
import assert from "node:assert/strict";
import type { BrokerOptions } from "../src/broker/broker.ts";
import { RedisBroker } from "../src/broker/redis_broker.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { RedisUnavailableError } from "../src/util/redis_connection.ts";
import { brokerSuite } from "./broker_suite.ts";
import { captureLogger } from "./support/adapter_helpers.ts";
import { hasRedis, startRedis } from "./support/services.ts";

const REDIS = hasRedis();
const OPTS: BrokerOptions = {
  historyLimit: 100,
  historyTtl: 300,
  sessionsTtl: 300,
  presenceTtl: 15,
};

if (REDIS) {
  brokerSuite("redis broker", async (opts) => {
    const redis = await startRedis();
    return {
      broker: new RedisBroker({ ...opts, url: redis.url, logger: silentLogger }),
      cleanup: () => redis.stop(),
    };
  });
}

Deno.test({
  name: "redis broker: two brokers on one Redis share epoch, offsets, history, sessions, presence",
  ignore: !REDIS,
  async fn() {
    const redis = await startRedis();
    const a = new RedisBroker({ ...OPTS, url: redis.url });
    const b = new RedisBroker({ ...OPTS, url: redis.url });
    try {
      await a.start();
      await b.start();
      assert.equal(await a.epoch(), await b.epoch());
      const stored = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store({ stream: "s", data: `${i}` })),
      );
      assert.deepEqual(
        stored.map((m) => m.offset!).sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      assert.equal((await b.historyFrom("s", await a.epoch(), 38)).length, 2);
      await a.commitSession("sid1", "state");
      assert.equal(await b.restoreSession("sid1"), "state");
      assert.deepEqual(await a.presenceAdd("p", "sid1", "u1", { n: 1 }), {
        type: "join",
        id: "u1",
        info: { n: 1 },
      });
      assert.equal(await b.presenceAdd("p", "sid2", "u1", { n: 1 }), null);
      assert.equal(await b.presenceRemove("p", "sid1"), null);
      assert.deepEqual(await a.presenceRemove("p", "sid2"), { type: "leave", id: "u1" });
    } finally {
      await Promise.all([a.close(), b.close()]);
      await redis.stop();
    }
  },
});

Deno.test({
  name: "redis broker: a wiped database gets a new epoch and restarts offsets",
  ignore: !REDIS,
  async fn() {
    const redis = await startRedis();
    const broker = new RedisBroker({ ...OPTS, url: redis.url });
    try {
      await broker.start();
      const first = await broker.store({ stream: "s", data: "a" });
      await broker.store({ stream: "s", data: "b" });
      await redis.restart(); // no persistence: Redis comes back empty
      const again = await retry(() => broker.store({ stream: "s", data: "c" }));
      assert.equal(again.offset, 1);
      assert.notEqual(again.epoch, first.epoch);
      assert.equal(await broker.epoch(), again.epoch);
    } finally {
      await broker.close();
      await redis.stop();
    }
  },
});

Deno.test({
  name: "redis broker: calls reject with RedisUnavailableError while Redis is down",
  ignore: !REDIS,
  async fn() {
    const redis = await startRedis();
    const { logger, lines } = captureLogger();
    const broker = new RedisBroker({ ...OPTS, url: redis.url, logger });
    try {
      await broker.start();
      await redis.kill();
      await lines.waitFor((xs) => xs.some((l) => l.includes("redis unavailable, retrying")));
      await assert.rejects(broker.store({ stream: "s", data: "a" }), RedisUnavailableError);
      await assert.rejects(broker.restoreSession("x"), RedisUnavailableError);
    } finally {
      await broker.close();
      await redis.stop();
    }
  },
});

/** Retries `fn` until it succeeds (the connection is coming back), bounded to 5 s. */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RedisUnavailableError) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
