import assert from "node:assert/strict";
import { RawWs } from "./support/raw_ws.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

const ID = JSON.stringify({ channel: "$pubsub", stream_name: "feed" });
const PAD = "x".repeat(256 * 1024);

/** A client that subscribes, then stops reading (its socket stays open). */
async function stalledReader(server: TestServer): Promise<RawWs> {
  const raw = await RawWs.connect(Number(new URL(server.url).port));
  assert.ok(await raw.until((t) => t.includes('"welcome"')));
  await raw.sendText(JSON.stringify({ command: "subscribe", identifier: ID }));
  assert.ok(await raw.until((t) => t.includes("confirm_subscription")));
  return raw;
}

async function fastReader(server: TestServer): Promise<WsClient> {
  const c = new WsClient(server.wsUrl);
  await c.waitFor((f) => f.type === "welcome");
  c.send({ command: "subscribe", identifier: ID });
  await c.waitFor((f) => f.type === "confirm_subscription");
  return c;
}

/** Broadcasts 256 KB messages, one every `gapMs`, until `done` holds; returns how many. */
async function flood(server: TestServer, done: () => boolean, gapMs: number): Promise<number> {
  let n = 0;
  for (; n < 200 && !done(); n++) {
    const res = await server.broadcast({ stream: "feed", data: JSON.stringify({ n, pad: PAD }) });
    assert.equal(res.status, 201);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  assert.ok(done(), `the stalled reader was not cut off after ${n} broadcasts`);
  return n;
}

/** The stalled reader reads at last: everything queued, then too_slow, then the end. */
async function drainToTooSlow(raw: RawWs): Promise<void> {
  const last = await raw.until((t) => t.includes('"disconnect"'));
  assert.deepEqual(JSON.parse(last!), { type: "disconnect", reason: "too_slow", reconnect: true });
  for (;;) {
    const f = await raw.next();
    if (f === null || typeof f !== "string") break;
    assert.fail(`a frame after the disconnect message: ${f.slice(0, 80)}`);
  }
}

Deno.test("slow client: a reader that stops reading is cut off at ws_max_pending_size", async () => {
  const server = await startServer(["--public", "--ws_write_timeout=0"], "warn");
  const raw = await stalledReader(server);
  const fast = await fastReader(server);
  try {
    const cut = () => server.logs.some((l) => l.msg === "client is too slow, disconnecting");
    const n = await flood(server, cut, 5);
    // The other subscriber got every broadcast and is still connected.
    await fast.waitForCount(2 + n, 10_000);
    assert.ok(!fast.messages.some((m) => m.type === "disconnect"));
    await drainToTooSlow(raw);
    assert.equal(server.app.node.sessions.size, 1);
  } finally {
    raw.close();
    await fast.close();
    await server.stop();
  }
});

Deno.test("slow client: the write timeout cuts a stalled reader before its queue is full", async () => {
  const server = await startServer(
    ["--public", "--ws_max_pending_size=1000000000", "--ws_write_timeout=1"],
    "warn",
  );
  const raw = await stalledReader(server);
  const fast = await fastReader(server);
  try {
    const cut = () =>
      server.logs.some((l) => l.msg === "client takes nothing (write timeout), disconnecting");
    const n = await flood(server, cut, 50);
    await fast.waitForCount(2 + n, 10_000);
    assert.ok(!fast.messages.some((m) => m.type === "disconnect"), "the fast reader was cut");
    // Far below the 1 GB queue cap: the timeout, not the cap, cut it.
    const pending = server.logs.find((l) => l.msg?.toString().includes("write timeout"))!.pending;
    assert.ok(typeof pending === "number" && pending < 100_000_000, `pending ${pending}`);
    await drainToTooSlow(raw);
    await waitUntil(() => server.app.node.sessions.size === 1);
  } finally {
    raw.close();
    await fast.close();
    await server.stop();
  }
});
