/**
 * The restore window, driven with the real @anycable/core client through a cutting proxy:
 * a restored session gets nothing live before its history request is answered, so the
 * client ends with every message exactly once and in order.
 */
import assert from "node:assert/strict";
import { backoffWithJitter, createCable } from "@anycable/core";
import { CutProxy } from "./support/cut_proxy.ts";
import { DeliveryLedger } from "./support/delivery_ledger.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";
import { WsClient } from "./support/ws_client.ts";

const EXT = "actioncable-v1-ext-json";
const CHAT = JSON.stringify({ channel: "$pubsub", stream_name: "chat" });

function restores(server: TestServer): number {
  return server.logs.filter((l) => l.msg === "session restored").length;
}

async function publish(server: TestServer, ledger: DeliveryLedger, n: number): Promise<void> {
  const res = await server.broadcast({ stream: "chat", data: JSON.stringify({ n }) });
  assert.equal(res.status, 201);
  ledger.published(n);
}

Deno.test("restore window: live messages wait for the history replay (memory broker)", async () => {
  const server = await startServer(["--norpc", "--public", "--broker=memory"], "info");
  const proxy = new CutProxy(server.app.port);
  const ledger = new DeliveryLedger();
  const got: number[] = [];
  const cable = createCable(proxy.wsUrl(), {
    protocol: EXT,
    websocketImplementation: WebSocket,
    reconnectStrategy: backoffWithJitter(50, { maxInterval: 300 }),
    logLevel: "error",
  });
  try {
    const channel = cable.streamFrom("chat");
    channel.on("message", (m) => {
      const n = (m as { n: number }).n;
      got.push(n);
      ledger.received("client", n);
    });
    await channel.ensureSubscribed();
    const has = (n: number) => () => got.includes(n);
    for (let n = 1; n <= 5; n++) await publish(server, ledger, n);
    await waitUntil(has(5), "1..5 live");

    // Cut; 6..10 are published while the client is away.
    proxy.cutAll();
    for (let n = 6; n <= 10; n++) await publish(server, ledger, n);
    // The client comes back and is restored, but its history request is stuck in the
    // proxy; 11 is published in that window.
    proxy.stallUpstream(true);
    await waitUntil(() => restores(server) === 1, "first restore", 20000);
    await publish(server, ledger, 11);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got, [1, 2, 3, 4, 5], "nothing live before the history is served");
    proxy.stallUpstream(false);
    await waitUntil(has(11), "6..11 after the replay");
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

    // Again, but the link drops before the history request gets through: the client must
    // not have advanced past what it missed.
    await publish(server, ledger, 12);
    await waitUntil(has(12), "12 live");
    proxy.cutAll();
    for (let n = 13; n <= 15; n++) await publish(server, ledger, n);
    proxy.stallUpstream(true);
    await waitUntil(() => restores(server) === 2, "second restore", 20000);
    await publish(server, ledger, 16);
    await new Promise((r) => setTimeout(r, 300));
    proxy.cutAll();
    proxy.stallUpstream(false);
    for (let n = 17; n <= 18; n++) await publish(server, ledger, n);
    await waitUntil(() => restores(server) === 3, "third restore", 20000);
    await waitUntil(has(18), "13..18 after the third restore", 20000);
    for (let n = 19; n <= 20; n++) await publish(server, ledger, n);
    await waitUntil(has(20), "19..20 live");

    const counts = ledger.counts();
    console.log(`restore window: ${JSON.stringify({ ...counts, cuts: proxy.cuts })}`);
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i + 1), ledger.describe());
    assert.deepEqual([counts.missing, counts.duplicated, counts.reordered], [0, 0, 0]);
  } finally {
    cable.disconnect();
    proxy.close();
    await server.stop();
  }
});

Deno.test("restore hold: a client that never asks for history gets held messages after the timeout", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
    "--restore_hold_timeout=700",
  ], "info");
  try {
    const first = new WsClient(server.wsUrl, EXT);
    const welcome = await first.waitFor((f) => f.type === "welcome");
    first.send({ command: "subscribe", identifier: CHAT });
    await first.waitFor((f) => f.type === "confirm_subscription");
    await server.broadcast({ stream: "chat", data: '{"n":1}' });
    await first.waitFor((f) => (f.message as { n?: number })?.n === 1);
    await first.close();
    await waitUntil(() => server.app.node.sessions.size === 0, "first session gone");

    const second = new WsClient(`${server.wsUrl}?sid=${welcome.sid}`, EXT);
    const w2 = await second.waitFor((f) => f.type === "welcome");
    assert.equal(w2.restored, true);
    const restoredAt = Date.now();
    await server.broadcast({ stream: "chat", data: '{"n":2}' });
    const live = await second.waitFor((f) => (f.message as { n?: number })?.n === 2, 10000);
    const waited = Date.now() - restoredAt;
    assert.ok(waited >= 600, `held for ${waited} ms`);
    assert.equal(live.offset, 2);
    // A late history request does not repeat what the timeout already released.
    second.send({
      command: "history",
      identifier: CHAT,
      history: { streams: { chat: { epoch: live.epoch, offset: 1 } } },
    });
    await second.waitFor((f) => f.type === "confirm_history");
    const offsets = second.frames.filter((f) => f.offset !== undefined).map((f) => f.offset);
    assert.deepEqual(offsets, [2]);
    await second.close();
  } finally {
    await server.stop();
  }
});

Deno.test("restore hold: past --hold_buffer_size the client is disconnected with a reason", async () => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
    "--restore_hold_timeout=30000",
    "--hold_buffer_size=1000",
  ], "info");
  try {
    const first = new WsClient(server.wsUrl, EXT);
    const welcome = await first.waitFor((f) => f.type === "welcome");
    first.send({ command: "subscribe", identifier: CHAT });
    await first.waitFor((f) => f.type === "confirm_subscription");
    await first.close();
    await waitUntil(() => server.app.node.sessions.size === 0, "first session gone");

    const second = new WsClient(`${server.wsUrl}?sid=${welcome.sid}`, EXT);
    await second.waitFor((f) => f.type === "welcome" && f.restored === true);
    const data = JSON.stringify({ text: "x".repeat(200) });
    for (let i = 0; i < 10; i++) await server.broadcast({ stream: "chat", data });
    const bye = await second.waitFor((f) => f.type === "disconnect");
    assert.deepEqual(bye, { type: "disconnect", reason: "hold_overflow", reconnect: true });
    assert.equal(second.frames.some((f) => f.message !== undefined && !f.type), false);
    assert.ok(server.logs.some((l) => String(l.msg).includes("hold limit")));
    await second.close();
  } finally {
    await server.stop();
  }
});
