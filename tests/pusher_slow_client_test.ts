/**
 * A Pusher socket that stops reading is cut off like any other client (--ws_write_timeout):
 * it gets `pusher:error` 4200 "too_slow" (reconnect) when it reads again, then the close;
 * another Pusher subscriber of the same channel keeps getting everything.
 */
import assert from "node:assert/strict";
import { APP_KEY, PUSHER_FLAGS } from "./support/pusher.ts";
import { RawWs } from "./support/raw_ws.ts";
import { startServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";
import { WsClient } from "./support/ws_client.ts";

const PAD = "x".repeat(256 * 1024);
const PATH = `/app/${APP_KEY}?protocol=7`;

Deno.test("pusher slow client: the write timeout cuts a stalled Pusher reader", async () => {
  const server = await startServer([
    "--norpc",
    "--ws_max_pending_size=1000000000",
    "--ws_write_timeout=1",
    ...PUSHER_FLAGS,
  ], "warn");
  const port = server.app.port;
  const raw = await RawWs.connect(port, PATH, "");
  const fast = new WsClient(`ws://127.0.0.1:${port}${PATH}`, []);
  try {
    assert.ok(await raw.until((t) => t.includes("pusher:connection_established")));
    await raw.sendText(JSON.stringify({ event: "pusher:subscribe", data: { channel: "feed" } }));
    assert.ok(await raw.until((t) => t.includes("subscription_succeeded")));
    await fast.waitFor((f) => f.event === "pusher:connection_established");
    fast.send({ event: "pusher:subscribe", data: { channel: "feed" } });
    await fast.waitFor((f) => f.event === "pusher_internal:subscription_succeeded");

    // Big events through the HTTP broadcast endpoint (the Pusher API caps data at 10 KB).
    const cut = () =>
      server.logs.some((l) => l.msg === "client takes nothing (write timeout), disconnecting");
    let n = 0;
    for (; n < 200 && !cut(); n++) {
      const res = await server.broadcast({
        stream: "feed",
        data: JSON.stringify({ event: "big", data: { n, pad: PAD } }),
      });
      assert.equal(res.status, 201);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(cut(), `the stalled reader was not cut off after ${n} events`);
    await fast.waitFor(
      () => fast.frames.filter((f) => f.event === "big").length === n,
      10_000,
    );
    assert.ok(!fast.frames.some((f) => f.event === "pusher:error"));
    const last = await raw.until((t) => t.includes('"pusher:error"'));
    assert.deepEqual(JSON.parse(last!), {
      event: "pusher:error",
      data: { code: 4200, message: "too_slow" },
    });
    await waitUntil(() => server.app.node.sessions.size === 1, "the slow socket to be gone");
  } finally {
    raw.close();
    await fast.close();
    await server.stop();
  }
});
