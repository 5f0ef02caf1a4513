import assert from "node:assert/strict";
import type { Broker, StreamMessage } from "../broker/broker.ts";
import { MemoryBroker } from "../broker/memory_broker.ts";
import { Logger } from "../logger/logger.ts";
import type { PubSubHandler, RemoteCommand } from "../pubsub/pubsub.ts";
import { StreamCatchUp } from "./catch_up.ts";

class Target implements PubSubHandler {
  readonly got: string[] = [];
  deliver(msg: StreamMessage): void {
    this.got.push(`${msg.stream}:${msg.epoch}:${msg.offset}`);
  }
  execute(_cmd: RemoteCommand): void {}
}

function setup(broker: Broker = new MemoryBroker(opts())) {
  const lines: Record<string, unknown>[] = [];
  const logger = new Logger({
    format: "json",
    sink: { write: (l) => lines.push(JSON.parse(l)) },
  });
  const target = new Target();
  const catchUp = new StreamCatchUp({ target, broker, logger, retryMs: 10 });
  return { broker, target, catchUp, lines };
}

function opts() {
  return { historyLimit: 100, historyTtl: 300, sessionsTtl: 300, presenceTtl: 15 };
}

const key = (m: StreamMessage) => `${m.stream}:${m.epoch}:${m.offset}`;

Deno.test("catch-up: replays what was stored while the link was down, in order, once", async () => {
  const { broker, target, catchUp } = setup();
  catchUp.streamAdded("chat");
  const live: StreamMessage[] = [];
  for (let i = 0; i < 3; i++) live.push(await broker.store({ stream: "chat", data: `${i}` }));
  for (const m of live) catchUp.deliver(m);
  assert.equal(catchUp.ready, true);

  catchUp.linkLost();
  assert.equal(catchUp.ready, false);
  const missed: StreamMessage[] = [];
  for (let i = 3; i < 6; i++) missed.push(await broker.store({ stream: "chat", data: `${i}` }));
  // Some of them still arrive live after the reconnect, before and after the history read.
  catchUp.deliver(missed[2]);
  catchUp.linkRestored();
  const late = await broker.store({ stream: "chat", data: "6" });
  catchUp.deliver(missed[1]);
  catchUp.deliver(late);
  await catchUp.settled();
  assert.equal(catchUp.ready, true);
  assert.deepEqual(target.got, [...live, ...missed, late].map(key));
  assert.equal(catchUp.stats.replayed, 3);

  // Back to normal delivery.
  const next = await broker.store({ stream: "chat", data: "7" });
  catchUp.deliver(next);
  assert.equal(target.got.at(-1), key(next));
});

Deno.test("catch-up: after an epoch change everything of the new epoch is replayed", async () => {
  let broker = new MemoryBroker({ ...opts(), epoch: "old1" });
  const proxy: Broker = new Proxy({} as Broker, {
    get: (_t, p) => {
      const v = (broker as unknown as Record<string | symbol, unknown>)[p];
      return typeof v === "function" ? v.bind(broker) : v;
    },
  });
  const { target, catchUp } = setup(proxy);
  catchUp.streamAdded("chat");
  catchUp.deliver(await broker.store({ stream: "chat", data: "a" }));
  catchUp.deliver(await broker.store({ stream: "chat", data: "b" }));
  catchUp.linkLost();
  broker = new MemoryBroker({ ...opts(), epoch: "new2" }); // the service came back empty
  const fresh = [
    await broker.store({ stream: "chat", data: "c" }),
    await broker.store({ stream: "chat", data: "d" }),
  ];
  catchUp.linkRestored();
  await catchUp.settled();
  assert.deepEqual(target.got, ["chat:old1:1", "chat:old1:2", ...fresh.map(key)]);
});

Deno.test("catch-up: a gap the history no longer covers is logged, the rest delivered", async () => {
  const { broker, target, catchUp, lines } = setup(
    new MemoryBroker({ ...opts(), historyLimit: 3 }),
  );
  catchUp.streamAdded("chat");
  catchUp.deliver(await broker.store({ stream: "chat", data: "1" }));
  catchUp.linkLost();
  for (let i = 0; i < 6; i++) await broker.store({ stream: "chat", data: `${i}` }); // 2..7
  catchUp.linkRestored();
  await catchUp.settled();
  assert.deepEqual(target.got.map((k) => Number(k.split(":")[2])), [1, 5, 6, 7]);
  const gap = lines.find((l) =>
    l.msg === "messages trimmed from history before this node caught up"
  );
  assert.ok(gap, JSON.stringify(lines));
  assert.equal(gap.missing, 3);
  assert.equal(catchUp.stats.gaps, 1);
});

Deno.test("catch-up: a failed history read is retried; a new drop restarts the catch-up", async () => {
  const inner = new MemoryBroker(opts());
  let failures = 2;
  const flaky: Broker = new Proxy(inner, {
    get: (t, p) => {
      if (p === "historySince") {
        return (s: string, since: number) =>
          failures-- > 0 ? Promise.reject(new Error("down")) : t.historySince(s, since);
      }
      const v = (t as unknown as Record<string | symbol, unknown>)[p];
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  const { target, catchUp } = setup(flaky);
  catchUp.streamAdded("chat");
  catchUp.deliver(await inner.store({ stream: "chat", data: "1" }));
  catchUp.linkLost();
  const missed = await inner.store({ stream: "chat", data: "2" });
  catchUp.linkRestored();
  const deadline = Date.now() + 5000;
  while (!catchUp.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(catchUp.ready, true);
  assert.deepEqual(target.got.at(-1), key(missed));

  // Lost again while catching up: the older run stops, the new one delivers.
  catchUp.linkLost();
  const a = await inner.store({ stream: "chat", data: "3" });
  catchUp.linkRestored();
  catchUp.linkLost();
  const b = await inner.store({ stream: "chat", data: "4" });
  catchUp.linkRestored();
  await catchUp.settled();
  while (!catchUp.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(target.got.slice(-2), [key(a), key(b)]);
  assert.equal(new Set(target.got).size, target.got.length, "no duplicates");
  catchUp.close();
});

Deno.test("catch-up: a stream first subscribed during the outage gets what was stored since", async () => {
  const { broker, target, catchUp } = setup();
  await broker.store({ stream: "news", data: "old" }); // before anyone here subscribed
  await new Promise((r) => setTimeout(r, 1100)); // history `since` has 1 s resolution
  catchUp.linkLost();
  catchUp.streamAdded("news");
  const during = await broker.store({ stream: "news", data: "during" });
  catchUp.linkRestored();
  await catchUp.settled();
  assert.deepEqual(target.got, [key(during)]);
  // Transient messages (no offset) are never held.
  catchUp.linkLost();
  catchUp.deliver({ stream: "news", data: "whisper" });
  assert.equal(target.got.length, 2);
  catchUp.close();
});

Deno.test("catch-up: many streams are all replayed (reads run concurrently)", async () => {
  const { broker, target, catchUp } = setup();
  const streams = Array.from({ length: 50 }, (_, i) => `s${i}`);
  for (const s of streams) {
    catchUp.streamAdded(s);
    catchUp.deliver(await broker.store({ stream: s, data: "before" }));
  }
  catchUp.linkLost();
  for (const s of streams) await broker.store({ stream: s, data: "during" });
  catchUp.linkRestored();
  await catchUp.settled();
  assert.equal(catchUp.ready, true);
  assert.equal(catchUp.stats.replayed, 50);
  for (const s of streams) {
    assert.deepEqual(target.got.filter((k) => k.startsWith(`${s}:`)).map((k) => k.split(":")[2]), [
      "1",
      "2",
    ]);
  }
});

Deno.test("catch-up: a long hold empties its buffer; the history read still delivers all", async () => {
  const { broker, target, catchUp } = setup(
    new MemoryBroker({ ...opts(), historyLimit: 20_000 }),
  );
  catchUp.streamAdded("chat");
  catchUp.deliver(await broker.store({ stream: "chat", data: "0" }));
  catchUp.linkLost();
  // The link is back in the pub/sub (messages flow) but the catch-up has not started yet.
  for (let i = 1; i <= 10_050; i++) {
    catchUp.deliver(await broker.store({ stream: "chat", data: "x" }));
  }
  catchUp.linkRestored();
  await catchUp.settled();
  const offsets = target.got.map((k) => Number(k.split(":")[2]));
  assert.equal(offsets.length, 10_051);
  assert.ok(offsets.every((o, i) => o === i + 1), "1..10051 once, in order");
});
