/** The shared broker suite against a real nats-server with JetStream, plus NATS-specific cases. */
import assert from "node:assert/strict";
import type { BrokerOptions } from "../src/broker/broker.ts";
import { NatsBroker } from "../src/broker/nats_broker.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { NatsUnavailableError } from "../src/util/nats_connection.ts";
import { brokerSuite } from "./broker_suite.ts";
import { captureLogger } from "./support/adapter_helpers.ts";
import { hasNats, startNats } from "./support/services.ts";

const NATS = hasNats();
const OPTS: BrokerOptions = {
  historyLimit: 100,
  historyTtl: 300,
  sessionsTtl: 300,
  presenceTtl: 15,
};

if (NATS) {
  brokerSuite("nats broker", async (opts) => {
    const nats = await startNats({ jetstream: true });
    return {
      broker: new NatsBroker({ ...opts, servers: nats.url, logger: silentLogger }),
      cleanup: () => nats.stop(),
    };
  });
}

Deno.test({
  name: "nats broker: two brokers share epoch, exact offsets under concurrency, sessions, presence",
  ignore: !NATS,
  async fn() {
    const nats = await startNats({ jetstream: true });
    const a = new NatsBroker({ ...OPTS, servers: nats.url });
    const b = new NatsBroker({ ...OPTS, servers: nats.url });
    try {
      await Promise.all([a.start(), b.start()]);
      assert.equal(await a.epoch(), await b.epoch());
      const stored = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store({ stream: "s", data: `${i}` })),
      );
      assert.deepEqual(
        stored.map((m) => m.offset!).sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      const tail = await b.historyFrom("s", await a.epoch(), 37);
      assert.deepEqual(tail.map((m) => m.offset), [38, 39, 40]);
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
      await nats.stop();
    }
  },
});

Deno.test({
  name: "nats broker: epoch and offsets survive a NATS restart (file storage)",
  ignore: !NATS,
  async fn() {
    const nats = await startNats({ jetstream: true });
    const broker = new NatsBroker({ ...OPTS, servers: nats.url });
    try {
      await broker.start();
      const first = await broker.store({ stream: "s", data: "a" });
      await nats.restart();
      const next = await retry(() => broker.store({ stream: "s", data: "b" }));
      assert.equal(next.offset, 2);
      assert.equal(next.epoch, first.epoch);
    } finally {
      await broker.close();
      await nats.stop();
    }
  },
});

Deno.test({
  name: "nats broker: calls reject with NatsUnavailableError while NATS is down",
  ignore: !NATS,
  async fn() {
    const nats = await startNats({ jetstream: true });
    const { logger, lines } = captureLogger();
    const broker = new NatsBroker({ ...OPTS, servers: nats.url, logger });
    try {
      await broker.start();
      await nats.kill();
      await lines.waitFor((xs) => xs.some((l) => l.includes("nats unavailable, retrying")));
      await assert.rejects(broker.store({ stream: "s", data: "a" }), NatsUnavailableError);
      await assert.rejects(broker.restoreSession("x"), NatsUnavailableError);
      await assert.rejects(broker.presenceInfo("p"), NatsUnavailableError);
    } finally {
      await broker.close();
      await nats.stop();
    }
  },
});

/** Retries `fn` until it succeeds (NATS is coming back), bounded to 10 s. */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
