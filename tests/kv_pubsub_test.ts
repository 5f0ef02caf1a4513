/**
 * KvPubSub: several instances on one temporary KV file in one process, each standing in for
 * a node. `sync()` waits until a node has handled everything appended before the call, so
 * "not received" is checked without sleeping.
 */
import assert from "node:assert/strict";
import type { StreamMessage } from "../src/broker/broker.ts";
import { shardOf } from "../src/pubsub/kv_bus.ts";
import { defaultPollInterval, KvPubSub, type KvPubSubOptions } from "../src/pubsub/kv_pubsub.ts";
import type { PubSubHandler, RemoteCommand } from "../src/pubsub/pubsub.ts";

class Recorder implements PubSubHandler {
  readonly messages: StreamMessage[] = [];
  readonly commands: RemoteCommand[] = [];
  #waiters: Array<() => void> = [];

  deliver(msg: StreamMessage): void {
    this.messages.push(msg);
    for (const w of this.#waiters.splice(0)) w();
  }
  execute(cmd: RemoteCommand): void {
    this.commands.push(cmd);
    for (const w of this.#waiters.splice(0)) w();
  }
  data(stream?: string): string[] {
    return this.messages.filter((m) => stream === undefined || m.stream === stream).map((m) =>
      m.data
    );
  }
  /** Waits (bounded) until `pred` holds, woken by each delivery. */
  async until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.data())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

interface Cluster {
  nodes: Array<{ pubsub: KvPubSub; rec: Recorder }>;
  path: string;
  close(): Promise<void>;
}

async function cluster(n: number, opts: Partial<KvPubSubOptions> = {}): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_pubsub_" });
  const path = `${dir}/bus.sqlite`;
  const nodes: Cluster["nodes"] = [];
  for (let i = 0; i < n; i++) {
    const pubsub = new KvPubSub({ path, ...opts });
    const rec = new Recorder();
    await pubsub.start(rec);
    nodes.push({ pubsub, rec });
  }
  return {
    nodes,
    path,
    async close() {
      await Promise.all(nodes.map((x) => x.pubsub.close()));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const msg = (stream: string, data: string, offset?: number): StreamMessage =>
  offset === undefined ? { stream, data } : { stream, data, offset, epoch: "ep01" };

Deno.test("kv pub/sub: a subscribed node receives a registered message once, as sent", async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    b.pubsub.subscribe("chat");
    const sent = { ...msg("chat", '{"text":"hi"}', 7), meta: { exclude_socket: "s1" } };
    await a.pubsub.broadcast(sent);
    await b.rec.until(() => b.rec.messages.length === 1);
    assert.deepEqual(b.rec.messages, [sent]);
    // The publishing node delivered locally, once, and skipped its own entry on the bus.
    a.pubsub.subscribe("chat");
    await a.pubsub.sync();
    await b.pubsub.sync();
    assert.deepEqual(a.rec.messages, [sent]);
    assert.equal(b.rec.messages.length, 1);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: unsubscribed streams are not delivered", async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    b.pubsub.subscribe("room/1");
    await a.pubsub.broadcast(msg("room/2", "other stream"));
    await a.pubsub.broadcast(msg("room/1", "one"));
    await b.rec.until(() => b.rec.data().includes("one"));
    b.pubsub.unsubscribe("room/1");
    await a.pubsub.broadcast(msg("room/1", "after unsubscribe"));
    await b.pubsub.sync();
    assert.deepEqual(b.rec.data(), ["one"]);
    // Subscribing again delivers what comes next.
    b.pubsub.subscribe("room/1");
    await a.pubsub.broadcast(msg("room/1", "again"));
    await b.rec.until(() => b.rec.data().includes("again"));
    assert.deepEqual(b.rec.data(), ["one", "again"]);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: per-stream order and exactly-once with concurrent writers", async () => {
  const c = await cluster(3);
  const [a, b, reader] = c.nodes;
  const streams = ["s1", "s2", "s3", "s4"];
  const count = 60;
  try {
    for (const s of streams) reader.pubsub.subscribe(s);
    // Two nodes write every stream at once: appends to a shard conflict and are retried.
    await Promise.all(
      [a, b].flatMap((w, wi) =>
        streams.map(async (s) => {
          for (let i = 0; i < count; i++) await w.pubsub.broadcast(msg(s, `${wi}:${i}`));
        })
      ),
    );
    await reader.pubsub.sync();
    for (const s of streams) {
      const got = reader.rec.data(s);
      assert.equal(got.length, 2 * count, `stream ${s}`);
      for (const wi of [0, 1]) {
        const mine = got.filter((d) => d.startsWith(`${wi}:`));
        assert.deepEqual(mine, Array.from({ length: count }, (_, i) => `${wi}:${i}`));
      }
    }
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: remote commands reach every node once, the sender included", async () => {
  const c = await cluster(3);
  const [a, b, d] = c.nodes;
  try {
    const cmd: RemoteCommand = {
      command: "disconnect",
      payload: { identifier: '{"user":1}', reconnect: false },
    };
    await a.pubsub.broadcastCommand(cmd);
    await b.rec.until(() => b.rec.commands.length === 1);
    await d.rec.until(() => d.rec.commands.length === 1);
    await Promise.all(c.nodes.map((x) => x.pubsub.sync()));
    for (const x of [a, b, d]) assert.deepEqual(x.rec.commands, [cmd]);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: messages larger than a KV value travel in chunks", async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    b.pubsub.subscribe("big");
    const data = "x".repeat(150_000) + "é".repeat(40_000);
    await a.pubsub.broadcast(msg("big", data, 1));
    await b.rec.until(() => b.rec.messages.length === 1);
    assert.equal(b.rec.messages[0].data, data);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: long stream names are filtered after decoding", async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  const long = "l".repeat(3000);
  const other = "m".repeat(3000);
  try {
    assert.equal(shardOf(long, 1), shardOf(other, 1));
    b.pubsub.subscribe(long);
    await a.pubsub.broadcast(msg(other, "not for b"));
    await a.pubsub.broadcast(msg(long, "for b"));
    await b.rec.until(() => b.rec.messages.length >= 1);
    await b.pubsub.sync();
    assert.deepEqual(b.rec.data(), ["for b"]);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: in one process the watch alone delivers (no polling)", async () => {
  const c = await cluster(2, { pollInterval: 600_000 });
  const [a, b] = c.nodes;
  try {
    b.pubsub.subscribe("w");
    const t = performance.now();
    await a.pubsub.broadcast(msg("w", "via watch"));
    await b.rec.until(() => b.rec.messages.length === 1, 3000);
    assert.ok(performance.now() - t < 3000);
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: a node only sees messages appended after it started", async () => {
  const c = await cluster(1);
  const [a] = c.nodes;
  try {
    await a.pubsub.broadcast(msg("late", "before"));
    const late = new KvPubSub({ path: c.path });
    const rec = new Recorder();
    await late.start(rec);
    late.subscribe("late");
    await a.pubsub.broadcast(msg("late", "after"));
    await rec.until(() => rec.messages.length === 1);
    await late.sync();
    assert.deepEqual(rec.data(), ["after"]);
    await late.close();
  } finally {
    await c.close();
  }
});

Deno.test("kv pub/sub: close is idempotent; a closed pub/sub refuses to publish", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_kv_pubsub_" });
  try {
    const p = new KvPubSub({ path: `${dir}/bus.sqlite` });
    const rec = new Recorder();
    await p.start(rec);
    await Promise.all([p.close(), p.close()]);
    await p.close();
    await assert.rejects(() => p.broadcast(msg("x", "y")), /not running/);
    await assert.rejects(
      () => p.broadcastCommand({ command: "disconnect", payload: { identifier: "i" } }),
      /not running/,
    );
    await p.start(rec); // no-op after close
    assert.deepEqual(rec.messages, []);
    // Never started: close still resolves.
    await new KvPubSub({ path: `${dir}/bus.sqlite` }).close();
    // An injected database is left open.
    const kv = await Deno.openKv(`${dir}/bus.sqlite`);
    const q = new KvPubSub({ kv });
    await q.start(rec);
    await q.close();
    await kv.set(["still", "open"], 1);
    kv.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv pub/sub: options are checked; polling is slow only where the watch sees all", () => {
  assert.throws(() => new KvPubSub({ shards: 10 }), RangeError);
  assert.throws(() => new KvPubSub({ shards: 0 }), RangeError);
  assert.equal(defaultPollInterval("/tmp/x.sqlite"), 50);
  assert.equal(defaultPollInterval("https://api.deno.com/databases/x/connect"), 5000);
});

Deno.test("kv pub/sub: a new subscription gets what is published after it, not the backlog", async () => {
  const c = await cluster(2);
  const [a, b] = c.nodes;
  try {
    // "late" shares a shard with "early", so b reads that shard for "early" anyway.
    const early = "early";
    let late = "late-0";
    for (let i = 1; shardOf(late, 8) !== shardOf(early, 8); i++) late = `late-${i}`;
    b.pubsub.subscribe(early);
    await b.pubsub.sync();
    await a.pubsub.broadcast(msg(late, "published before b subscribed"));
    // b subscribes before its reader has had a turn to read that entry.
    b.pubsub.subscribe(late);
    await a.pubsub.broadcast(msg(late, "published after"));
    await b.rec.until(() => b.rec.data(late).includes("published after"));
    await b.pubsub.sync();
    assert.deepEqual(b.rec.data(late), ["published after"]);
  } finally {
    await c.close();
  }
});
