/**
 * Durable Streams storage across a restart: with --broker=kv and the Redis broker a stream
 * written over HTTP (data, offsets, TTL, closing, producer state) is all there for the next
 * process; with the memory broker it is gone. Also an append while a reader long-polls on the
 * Redis store, and what a Redis outage looks like to writers.
 */
import assert from "node:assert/strict";
import { formatOffset } from "../src/ds/offset.ts";
import { hasRedis, startRedis } from "./support/services.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const FLAGS = ["--norpc", "--public", "--ds", "--ds_poll_interval=5"];

async function req(
  server: TestServer,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${server.url}/ds/${path}`, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Writes a few streams the way a user would; returns what a reader must see afterwards. */
async function write(server: TestServer): Promise<void> {
  const json = { "content-type": "application/json" };
  assert.equal(
    (await req(server, "keep/json", { method: "PUT", headers: json, body: "[]" })).status,
    201,
  );
  const a = await req(server, "keep/json", {
    method: "POST",
    headers: { ...json, "producer-id": "p1", "producer-epoch": "0", "producer-seq": "0" },
    body: JSON.stringify([{ n: 1 }, { n: 2 }]),
  });
  assert.equal(a.status, 200);
  assert.equal(a.headers.get("stream-next-offset"), formatOffset(2));
  const text = { "content-type": "text/plain", "stream-ttl": "3600" };
  assert.equal(
    (await req(server, "keep/text", { method: "PUT", headers: text, body: "hello " })).status,
    201,
  );
  const closed = await req(server, "keep/text", {
    method: "POST",
    headers: { "content-type": "text/plain", "stream-closed": "true" },
    body: "world",
  });
  assert.equal(closed.status, 204);
}

async function verifyKept(server: TestServer): Promise<void> {
  const json = await req(server, "keep/json?offset=-1");
  assert.equal(json.status, 200);
  assert.deepEqual(JSON.parse(json.body), [{ n: 1 }, { n: 2 }]);
  assert.equal(json.headers.get("stream-next-offset"), formatOffset(2));
  // The producer's state survived too: a retry of seq 0 is a duplicate, seq 1 continues.
  const producer = (seq: string, body: string) =>
    req(server, "keep/json", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "producer-id": "p1",
        "producer-epoch": "0",
        "producer-seq": seq,
      },
      body,
    });
  assert.equal((await producer("0", '{"n":1}')).status, 204);
  const next = await producer("1", '{"n":3}');
  assert.equal(next.status, 200);
  assert.equal(next.headers.get("stream-next-offset"), formatOffset(3));
  const text = await req(server, "keep/text");
  assert.equal(text.body, "hello world");
  assert.equal(text.headers.get("stream-closed"), "true");
  const head = await req(server, "keep/text", { method: "HEAD" });
  assert.equal(head.headers.get("stream-ttl"), "3600");
  const late = await req(server, "keep/text", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "!",
  });
  assert.equal(late.status, 409);
}

Deno.test("DS storage: --broker=kv keeps streams across a restart", async () => {
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  try {
    const first = await startServer([...FLAGS, "--broker=kv", `--kv_path=${path}`], "info");
    try {
      await write(first);
    } finally {
      await first.stop();
    }
    const second = await startServer([...FLAGS, "--broker=kv", `--kv_path=${path}`], "info");
    try {
      await verifyKept(second);
    } finally {
      await second.stop();
    }
  } finally {
    for (const s of ["", "-shm", "-wal"]) await Deno.remove(path + s).catch(() => {});
  }
});

Deno.test({
  name: "DS storage: the Redis broker keeps streams across a restart; live reads; outage",
  ignore: !hasRedis(),
  async fn() {
    const redis = await startRedis();
    try {
      const flags = [...FLAGS, "--broker=redis", `--redis_url=${redis.url}`];
      const first = await startServer(flags, "info");
      try {
        await write(first);
      } finally {
        await first.stop();
      }
      const second = await startServer(flags, "info");
      try {
        await verifyKept(second);
        // A long-poll at the tail is woken by an append (delivered back through Redis pub/sub).
        const poll = req(second, `keep/json?offset=${formatOffset(3)}&live=long-poll`);
        await new Promise((r) => setTimeout(r, 100));
        const appended = await req(second, "keep/json", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"n":4}',
        });
        assert.equal(appended.status, 204);
        const got = await poll;
        assert.equal(got.status, 200);
        assert.deepEqual(JSON.parse(got.body), [{ n: 4 }]);
        assert.equal(got.headers.get("stream-next-offset"), formatOffset(4));

        // Redis down: writes fail with a clear status, the server keeps answering.
        await redis.stop();
        const down = await req(second, "keep/json", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"n":5}',
        });
        assert.equal(down.status, 503);
        assert.ok(
          second.logs.some((l) => String(l.msg).includes("ds request failed")),
          "the failure is logged",
        );
        const health = await fetch(`${second.url}/health`);
        assert.equal(await health.text(), "Success");
      } finally {
        await second.stop();
      }
    } finally {
      await redis.stop();
    }
  },
});

Deno.test("DS storage: the memory broker keeps streams only while the process runs", async () => {
  const first = await startServer([...FLAGS, "--broker=memory"], "info");
  try {
    await write(first);
    await verifyKept(first);
  } finally {
    await first.stop();
  }
  const second = await startServer([...FLAGS, "--broker=memory"], "info");
  try {
    assert.equal((await req(second, "keep/json")).status, 404);
  } finally {
    await second.stop();
  }
});

Deno.test({
  name: "DS on two nodes sharing Redis: an append on one reaches readers on the other",
  ignore: !hasRedis(),
  async fn() {
    const redis = await startRedis();
    const flags = [...FLAGS, "--broker=redis", `--redis_url=${redis.url}`];
    const a = await startServer(flags, "info");
    const b = await startServer(flags, "info");
    const ws = new WsClient(b.wsUrl, "actioncable-v1-ext-json");
    try {
      const json = { "content-type": "application/json" };
      assert.equal((await req(a, "shared", { method: "PUT", headers: json })).status, 201);
      await ws.opened;
      const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "shared" });
      ws.send({ command: "subscribe", identifier });
      await ws.waitFor((f) => f.type === "confirm_subscription");
      const poll = req(b, `shared?offset=${formatOffset(0)}&live=long-poll`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(
        (await req(a, "shared", { method: "POST", headers: json, body: '{"x":1}' })).status,
        204,
      );
      const got = await poll;
      assert.equal(got.status, 200);
      assert.deepEqual(JSON.parse(got.body), [{ x: 1 }]);
      const frame = await ws.waitFor((f) => f.identifier === identifier && "message" in f);
      assert.deepEqual(frame.message, { x: 1 });
      assert.equal(frame.offset, 1);
    } finally {
      await ws.close();
      await a.stop();
      await b.stop();
      await redis.stop();
    }
  },
});

Deno.test("DS memory store: a sweep drops expired streams nobody reads again", async () => {
  const { MemoryStreamStore } = await import("../src/ds/memory_store.ts");
  const { DsStreams } = await import("../src/ds/streams.ts");
  const { silentLogger } = await import("../src/logger/logger.ts");
  let now = 1_000_000;
  const store = new MemoryStreamStore();
  const streams = new DsStreams({
    store,
    deliver: () => Promise.resolve(),
    epoch: () => Promise.resolve("e"),
    changed: () => {},
    logger: silentLogger,
    now: () => now,
  });
  const body = new TextEncoder().encode("x");
  await streams.create("short", { ttlSeconds: 1, closed: false, body });
  await streams.create("kept", { closed: false, body });
  now += 2000;
  assert.equal(await streams.sweep(), 2);
  assert.deepEqual(await store.list(), ["kept"]);
});
