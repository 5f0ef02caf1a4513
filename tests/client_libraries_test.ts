/**
 * The real npm clients against a real server: @rails/actioncable (plain protocol) and
 * @anycable/core (extended protocol).
 */
import assert from "node:assert/strict";
import { createCable } from "@anycable/core";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer } from "./support/server.ts";
import { waitUntil } from "./support/wait.ts";

// @rails/actioncable looks for a browser document (visibility changes) and a global logger.
const g = globalThis as Record<string, unknown>;
g.document ??= {
  visibilityState: "visible",
  addEventListener() {},
  removeEventListener() {},
};
const { createConsumer, logger: acLogger, adapters } = await import("@rails/actioncable");
acLogger.enabled = Deno.env.get("AC_DEBUG") === "1";
// Rails finds the socket state with `for (state in WebSocket)`: browsers make the
// CONNECTING/OPEN/... constants enumerable, Deno does not.
class BrowserLikeWebSocket extends WebSocket {}
for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"] as const) {
  Object.defineProperty(BrowserLikeWebSocket, k, { value: WebSocket[k], enumerable: true });
}
adapters.WebSocket = BrowserLikeWebSocket;

function deferred<T>() {
  return Promise.withResolvers<T>();
}

function chatBackend(): FakeRpc {
  return new FakeRpc({
    connect: (body, headers) => {
      const url = new URL((body.env as { url: string }).url);
      if (url.searchParams.get("token") !== "secret") {
        return {
          status: 2,
          transmissions: [
            JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
          ],
        };
      }
      return {
        status: 1,
        identifiers: JSON.stringify({ user: "alice" }),
        transmissions: [
          JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") }),
        ],
      };
    },
    command: (body) => {
      const identifier = body.identifier as string;
      const channel = JSON.parse(identifier);
      if (body.command === "subscribe") {
        if (channel.room === "secret") {
          return {
            status: 2,
            transmissions: [JSON.stringify({ identifier, type: "reject_subscription" })],
          };
        }
        return {
          status: 1,
          streams: [`room_${channel.room}`],
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        };
      }
      if (body.command === "message") {
        const data = JSON.parse(body.data as string);
        if (data.action === "leave_streams") return { status: 1, stop_streams: true };
        return {
          status: 1,
          transmissions: [JSON.stringify({ identifier, message: { said: data.text } })],
        };
      }
      return { status: 1 };
    },
  });
}

Deno.test("@rails/actioncable: connect, subscribe, perform, broadcast, stop streams, reject", async () => {
  const rpc = chatBackend();
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  const consumer = createConsumer(`${server.wsUrl}?token=secret`);
  try {
    const received: unknown[] = [];
    const connected = deferred<void>();
    const sub = consumer.subscriptions.create({ channel: "ChatChannel", room: "42" }, {
      connected: () => connected.resolve(),
      received: (data: unknown) => received.push(data),
    });
    await connected.promise;
    sub.perform("speak", { text: "hi" });
    await waitUntil(() => received.length === 1);
    assert.deepEqual(received[0], { said: "hi" });
    await server.broadcast({ stream: "room_42", data: JSON.stringify({ from: "server" }) });
    await waitUntil(() => received.length === 2);
    assert.deepEqual(received[1], { from: "server" });

    const rejected = deferred<void>();
    consumer.subscriptions.create({ channel: "ChatChannel", room: "secret" }, {
      rejected: () => rejected.resolve(),
    });
    await rejected.promise;

    sub.perform("leave_streams", {});
    await rpc.waitFor((r) => r.some((x) => String(x.body.data).includes("leave_streams")));
    // A marker through a fresh subscription proves the stop_streams result was applied first.
    const marker = deferred<void>();
    consumer.subscriptions.create({ channel: "ChatChannel", room: "m" }, {
      connected: () => marker.resolve(),
    });
    await marker.promise;
    await server.broadcast({ stream: "room_42", data: JSON.stringify({ from: "late" }) });
    await server.broadcast({ stream: "room_m", data: "{}" });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 2);

    sub.unsubscribe();
    await rpc.waitFor((r) => r.some((x) => x.body.command === "unsubscribe"));
  } finally {
    consumer.disconnect();
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("@rails/actioncable: rejected connection does not reconnect", async () => {
  const rpc = chatBackend();
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  const consumer = createConsumer(`${server.wsUrl}?token=wrong`);
  try {
    const disconnected = deferred<{ willAttemptReconnect: boolean }>();
    consumer.subscriptions.create({ channel: "ChatChannel", room: "1" }, {
      disconnected: (info: { willAttemptReconnect: boolean }) => disconnected.resolve(info),
    });
    consumer.connect();
    const info = await disconnected.promise;
    assert.equal(info.willAttemptReconnect, false);
    assert.equal(rpc.calls("connect").length, 1);
  } finally {
    consumer.disconnect();
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("@anycable/core: ext protocol, channel messages, server restart notice", async () => {
  const rpc = chatBackend();
  const server = await startServer([`--rpc_host=${rpc.url}`]);
  const cable = createCable(`${server.wsUrl}?token=secret`, {
    protocol: "actioncable-v1-ext-json",
    websocketImplementation: WebSocket,
    logLevel: "error",
  });
  try {
    const channel = cable.subscribeTo("ChatChannel", { room: "7" });
    await channel.ensureSubscribed();
    const messages: unknown[] = [];
    channel.on("message", (m: unknown) => messages.push(m));
    await channel.perform("speak", { text: "yo" });
    await waitUntil(() => messages.length === 1);
    await server.broadcast({ stream: "room_7", data: JSON.stringify({ n: 1 }) });
    await waitUntil(() => messages.length === 2);
    assert.deepEqual(messages, [{ said: "yo" }, { n: 1 }]);

    const gone = deferred<{ reason?: string }>();
    cable.on("disconnect", (ev: { reason?: string }) => gone.resolve(ev));
    const stopping = server.stop();
    const ev = await gone.promise;
    assert.equal(ev.reason, "server_restart");
    await stopping;
  } finally {
    cable.disconnect();
    await server.stop();
    await rpc.stop();
  }
});
