/**
 * "history trimmed before --history_ttl": logged once per stream when --history_limit drops a
 * message the TTL would still keep (memory, kv and redis brokers), never for messages that had
 * expired anyway; and seen by a user in the server's log.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Broker, BrokerOptions } from "../src/broker/broker.ts";
import { KvBroker } from "../src/broker/kv_broker.ts";
import { MemoryBroker } from "../src/broker/memory_broker.ts";
import { RedisBroker } from "../src/broker/redis_broker.ts";
import { Logger } from "../src/logger/logger.ts";
import { httpPublish, startNodes, stopNodes } from "./support/cluster.ts";
import { hasRedis, startRedis } from "./support/services.ts";

const REDIS = hasRedis();
const WARNING = "history trimmed before --history_ttl";

function jsonLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = new Logger({
    level: "info",
    format: "json",
    sink: { write: (line) => lines.push(JSON.parse(line)) },
  });
  return { logger, lines };
}

type Make = (
  opts: BrokerOptions,
) => Promise<{ broker: Broker; cleanup?: () => Promise<void> }>;

const brokers: Array<[string, Make, boolean]> = [
  ["memory", (opts) => Promise.resolve({ broker: new MemoryBroker(opts) }), true],
  ["kv", async (opts) => {
    const dir = await Deno.makeTempDir({ prefix: "cableway_trim_" });
    return {
      broker: new KvBroker({ ...opts, path: join(dir, "broker.sqlite") }),
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  }, true],
  ["redis", async (opts) => {
    const redis = await startRedis();
    return { broker: new RedisBroker({ ...opts, url: redis.url }), cleanup: () => redis.stop() };
  }, REDIS],
];

for (const [name, make, available] of brokers) {
  Deno.test({
    name: `${name} broker: a limit that trims before the TTL is warned about once per stream`,
    ignore: !available,
    async fn() {
      let now = 1_000_000;
      const { logger, lines } = jsonLogger();
      const opts: BrokerOptions = {
        historyLimit: 3,
        historyTtl: 60,
        sessionsTtl: 300,
        presenceTtl: 15,
        now: () => now,
        logger,
      };
      const { broker, cleanup } = await make(opts);
      try {
        await broker.start();
        // 3 messages fit: nothing trimmed yet.
        for (let i = 0; i < 3; i++) await broker.store({ stream: "a", data: `${i}` });
        assert.equal(lines.filter((l) => l.msg === WARNING).length, 0);
        // 10 more at 1 s intervals: each trims a message 3 s old (TTL 60 s): one warning.
        for (let i = 0; i < 10; i++) {
          now += 1000;
          await broker.store({ stream: "a", data: `a${i}` });
        }
        let warnings = lines.filter((l) => l.msg === WARNING);
        assert.equal(warnings.length, 1, JSON.stringify(lines));
        assert.equal(warnings[0].level, "warn");
        assert.equal(warnings[0].stream, "a");
        assert.equal(warnings[0].history_limit, 3);
        assert.equal(warnings[0].history_ttl, 60);
        assert.equal(typeof warnings[0].kept_seconds, "number");
        assert.ok((warnings[0].kept_seconds as number) < 60);

        // Another stream whose trimmed messages had expired anyway (stored 61 s apart): no
        // warning, the limit took nothing the TTL would have kept.
        for (let i = 0; i < 6; i++) {
          now += 61_000;
          await broker.store({ stream: "slow", data: `s${i}` });
        }
        warnings = lines.filter((l) => l.msg === WARNING);
        assert.equal(warnings.length, 1, "expired messages trimmed: no warning");

        // A third, fast stream warns on its own.
        for (let i = 0; i < 5; i++) await broker.store({ stream: "b", data: `b${i}` });
        warnings = lines.filter((l) => l.msg === WARNING);
        assert.deepEqual(warnings.map((w) => w.stream), ["a", "b"]);
      } finally {
        await broker.close();
        await cleanup?.();
      }
    },
  });
}

Deno.test("server: --history_limit=5 with 20 quick publications logs the trim warning once", async () => {
  const [node] = await startNodes(1, ["--broker=memory", "--history_limit=5"]);
  try {
    for (let i = 0; i < 20; i++) {
      const body = JSON.stringify({ stream: "fast", data: JSON.stringify({ i }) });
      assert.equal(await httpPublish(node.port, body), 201);
    }
    await node.waitForLog((l) => l.msg === WARNING, 10_000);
    const warnings = node.lines.filter((l) => l.msg === WARNING);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].stream, "fast");
    assert.equal(warnings[0].broker, "memory");
    assert.equal(warnings[0].history_ttl, 300);
  } finally {
    await stopNodes([node]);
  }
});
