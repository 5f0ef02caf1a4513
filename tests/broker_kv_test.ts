import assert from "node:assert/strict";
import { join } from "node:path";
import type { BrokerOptions } from "../src/broker/broker.ts";
import { KvBroker } from "../src/broker/kv_broker.ts";
import { brokerSuite } from "./broker_suite.ts";
import { lines } from "./support/lines.ts";

const OPTS: BrokerOptions = {
  historyLimit: 100,
  historyTtl: 300,
  sessionsTtl: 300,
  presenceTtl: 15,
};

brokerSuite("kv broker (:memory:)", (opts) => {
  return Promise.resolve({ broker: new KvBroker({ ...opts, path: ":memory:" }) });
});

brokerSuite("kv broker (file)", async (opts) => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_" });
  return {
    broker: new KvBroker({ ...opts, path: join(dir, "broker.sqlite") }),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

Deno.test("kv broker: a path that cannot be opened is named in the error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_" });
  try {
    const path = join(dir, "missing", "broker.sqlite");
    const broker = new KvBroker({ ...OPTS, path });
    await assert.rejects(broker.start(), (err: Error) => err.message.includes(path));
    await broker.close();
    await assert.rejects(broker.epoch(), /closed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv broker: methods reject before start", async () => {
  const broker = new KvBroker({ ...OPTS, path: ":memory:" });
  await assert.rejects(broker.store({ stream: "s", data: "d" }), /not started/);
  await assert.rejects(broker.presenceInfo("s"), /not started/);
  await broker.close();
});

Deno.test("kv broker: epoch and offsets survive a restart on the same file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_" });
  try {
    const path = join(dir, "broker.sqlite");
    const first = new KvBroker({ ...OPTS, path });
    await first.start();
    const epoch = await first.epoch();
    await first.store({ stream: "s", data: "a" });
    await first.store({ stream: "s", data: "b" });
    await first.close();

    const second = new KvBroker({ ...OPTS, path });
    await second.start();
    assert.equal(await second.epoch(), epoch);
    assert.equal((await second.store({ stream: "s", data: "c" })).offset, 3);
    const history = await second.historyFrom("s", epoch, 1);
    assert.deepEqual(history.map((m) => m.data), ["b", "c"]);
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv broker: a given kv is shared, left open, and prefixes are isolated", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const a = new KvBroker({ ...OPTS, kv, prefix: ["app_a"] });
    const b = new KvBroker({ ...OPTS, kv, prefix: ["app_b"] });
    const a2 = new KvBroker({ ...OPTS, kv, prefix: ["app_a"] });
    await Promise.all([a.start(), b.start(), a2.start()]);
    assert.equal(await a.epoch(), await a2.epoch());
    assert.equal((await a.store({ stream: "s", data: "1" })).offset, 1);
    assert.equal((await a2.store({ stream: "s", data: "2" })).offset, 2);
    assert.equal((await b.store({ stream: "s", data: "1" })).offset, 1);
    const epochA = await a.epoch();
    assert.notEqual(await b.epoch(), "");
    await Promise.all([a.close(), b.close(), a2.close()]);
    // Still open: the brokers did not own it.
    assert.equal((await kv.get(["app_a", "epoch"])).value, epochA);
  } finally {
    kv.close();
  }
});

Deno.test("kv broker: two processes on one file share the epoch and never reuse an offset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_" });
  const path = join(dir, "broker.sqlite");
  const script = new URL("./support/kv_publisher.ts", import.meta.url).pathname;
  const count = 100;
  try {
    const children = ["p0", "p1"].map((label) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--unstable-kv",
          "--allow-read",
          "--allow-write",
          script,
          path,
          "chat",
          String(count),
          label,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      return { child, out: lines(child.stdout) };
    });
    // Both are ready (epoch settled, database open) before either starts storing.
    const ready = [];
    for (const c of children) ready.push(JSON.parse((await c.out.next()).value ?? "null"));
    for (const c of children) await c.child.stdin.close();
    const results = [];
    for (const c of children) {
      results.push(JSON.parse((await c.out.next()).value ?? "null"));
      for await (const _ of c.out) { /* drain */ }
      assert.equal((await c.child.status).code, 0);
    }

    assert.equal(ready[0].epoch, ready[1].epoch);
    assert.equal(results[0].epoch, ready[0].epoch);
    assert.equal(results[1].epoch, ready[0].epoch);
    const all = [...results[0].offsets, ...results[1].offsets].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 2 * count }, (_, i) => i + 1));

    const broker = new KvBroker({ ...OPTS, historyLimit: 1000, path });
    await broker.start();
    try {
      assert.equal(await broker.epoch(), ready[0].epoch);
      const history = await broker.historySince("chat", 0);
      assert.equal(history.length, 2 * count);
      for (const [p, r] of results.entries()) {
        r.offsets.forEach((offset: number, i: number) => {
          assert.equal(history[offset - 1].data, `p${p}-${i}`);
        });
      }
    } finally {
      await broker.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
