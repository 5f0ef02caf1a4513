import assert from "node:assert/strict";
import { encodeSseEvent } from "../src/transport/sse_encoder.ts";
import { resumeHistory, subscriptionFromQuery } from "../src/transport/sse_request.ts";
import { FakeRpc } from "./support/fake_rpc.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

interface SseEvent {
  event?: string;
  data: string;
  id?: string;
  retry?: string;
}

/** Reads an event stream as it arrives; waits for events with a bounded timeout. */
class SseReader {
  readonly events: SseEvent[] = [];
  readonly ended: Promise<void>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = "";
  #done = false;
  #waiters: Array<() => void> = [];

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
    this.ended = this.#pump();
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) break;
        this.#buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = this.#buffer.indexOf("\n\n")) >= 0) {
          this.events.push(parseEvent(this.#buffer.slice(0, cut)));
          this.#buffer = this.#buffer.slice(cut + 2);
        }
        this.#wake();
      }
    } catch {
      // cancelled
    } finally {
      this.#done = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Events other than pings. */
  get messages(): SseEvent[] {
    return this.events.filter((e) => e.event !== "ping");
  }

  async waitFor(pred: (e: SseEvent) => boolean, timeoutMs = 5000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.#done) {
        throw new Error(`SseReader.waitFor: not found; events: ${JSON.stringify(this.events)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.ended;
  }
}

function parseEvent(block: string): SseEvent {
  const ev: SseEvent = { data: "" };
  const data: string[] = [];
  for (const line of block.split("\n")) {
    const i = line.indexOf(": ");
    const field = line.slice(0, i);
    const value = line.slice(i + 2);
    if (field === "data") data.push(value);
    else if (field === "event") ev.event = value;
    else if (field === "id") ev.id = value;
    else if (field === "retry") ev.retry = value;
  }
  ev.data = data.join("\n");
  return ev;
}

/** Bounded wait for a condition the test cannot observe as an event. */

const noSessions = (server: TestServer) =>
  waitUntil(() => server.app.node.sessions.size === 0, "sessions to close");

const pubsub = (stream: string) => JSON.stringify({ channel: "$pubsub", stream_name: stream });

Deno.test("sse encoder: event, data, id, retry and line splitting", () => {
  const get = { unwrapData: true, raw: false };
  assert.equal(
    encodeSseEvent('{"type":"welcome","sid":"x1"}', get),
    'event: welcome\ndata: {"type":"welcome","sid":"x1"}\n\n',
  );
  assert.equal(
    encodeSseEvent('{"identifier":"i","message":{"n":12345678901234567890}}', get),
    'data: {"n":12345678901234567890}\n\n',
  );
  assert.equal(
    encodeSseEvent(
      '{"identifier":"i","message":"a\\nb","stream_id":"a/b","epoch":"ep","offset":7}',
      get,
    ),
    "data: a\ndata: b\nid: 7/ep/a/b\n\n",
  );
  const post = { unwrapData: false, raw: false };
  assert.equal(
    encodeSseEvent('{"identifier":"i","message":1}', post),
    'data: {"identifier":"i","message":1}\n\n',
  );
  assert.equal(
    encodeSseEvent('{"type":"disconnect","reason":"unauthorized","reconnect":false}', post),
    'event: disconnect\ndata: {"type":"disconnect","reason":"unauthorized","reconnect":false}\n' +
      "retry: 31536000000\n\n",
  );
  assert.equal(
    encodeSseEvent('{"type":"disconnect","reason":"server_restart","reconnect":true}', post),
    'event: disconnect\ndata: {"type":"disconnect","reason":"server_restart","reconnect":true}\n\n',
  );
  assert.equal(
    encodeSseEvent('{"type":"ping","message":1}', { unwrapData: true, raw: true }),
    null,
  );
  assert.equal(
    encodeSseEvent('{"identifier":"i","message":"x"}', { unwrapData: true, raw: true }),
    "data: x\n\n",
  );
});

Deno.test("sse request: query sources in order, Last-Event-ID and history_since", () => {
  const q = (s: string) => subscriptionFromQuery(new URLSearchParams(s));
  assert.equal(q("identifier=%7B%22channel%22%3A%22A%22%7D&stream=x"), '{"channel":"A"}');
  assert.equal(q("channel=Chat&stream=x"), '{"channel":"Chat"}');
  assert.equal(q("stream=chat"), pubsub("chat"));
  assert.equal(q("signed_stream=abc"), '{"channel":"$pubsub","signed_stream_name":"abc"}');
  assert.equal(
    q("turbo_signed_stream_name=t"),
    '{"channel":"Turbo::StreamsChannel","signed_stream_name":"t"}',
  );
  assert.equal(q("identifier=&raw=1"), null);
  assert.deepEqual(resumeHistory("3/ep/a/b", null), {
    streams: { "a/b": { epoch: "ep", offset: 3 } },
  });
  assert.deepEqual(resumeHistory(null, "1700000000"), { since: 1700000000 });
  assert.equal(resumeHistory("garbage", "soon"), undefined);
});

Deno.test("sse: GET stream gets welcome, confirm and broadcasts; session ends with the client", async () => {
  const server = await startServer(["--public", "--sse"]);
  try {
    const res = await fetch(`${server.url}/events?stream=chat`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(
      res.headers.get("cache-control"),
      "private, no-cache, no-store, must-revalidate, max-age=0",
    );
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.ok(res.headers.get("x-anycable-version"));
    const sse = new SseReader(res);
    const welcome = await sse.waitFor((e) => e.event === "welcome");
    assert.equal(JSON.parse(welcome.data).type, "welcome");
    const confirm = await sse.waitFor((e) => e.event === "confirm_subscription");
    assert.equal(JSON.parse(confirm.data).identifier, pubsub("chat"));
    assert.equal(server.app.node.sessions.size, 1);

    await server.broadcast({ stream: "chat", data: JSON.stringify({ text: "hi" }) });
    const msg = await sse.waitFor((e) => e.event === undefined);
    assert.deepEqual(msg, { data: '{"text":"hi"}' });
    // A string message is sent raw.
    await server.broadcast({ stream: "chat", data: "plain words" });
    await sse.waitFor((e) => e.data === "plain words");

    await sse.close();
    await noSessions(server);
  } finally {
    await server.stop();
  }
});

Deno.test("sse: ?raw=1 delivers only data; POST subscribes from JSONL and sends full JSON", async () => {
  const server = await startServer(["--public", "--sse"]);
  try {
    const raw = new SseReader(await fetch(`${server.url}/events?stream=chat&raw=1`));
    const post = await fetch(`${server.url}/events`, {
      method: "POST",
      body: [
        JSON.stringify({ command: "subscribe", identifier: pubsub("a") }),
        JSON.stringify({ identifier: pubsub("chat") }),
      ].join("\n"),
    });
    assert.equal(post.status, 200);
    const full = new SseReader(post);
    await full.waitFor((e) =>
      e.event === "confirm_subscription" && JSON.parse(e.data).identifier === pubsub("chat")
    );
    await server.broadcast({ stream: "chat", data: JSON.stringify({ text: "hi" }) });
    await server.broadcast({ stream: "a", data: JSON.stringify({ n: 1 }) });
    const got = await full.waitFor((e) => e.event === undefined && e.data.includes('"n"'));
    assert.deepEqual(JSON.parse(got.data), { identifier: pubsub("a"), message: { n: 1 } });
    await full.waitFor((e) => e.event === undefined && e.data.includes('"hi"'));
    const data = await raw.waitFor(() => true);
    assert.deepEqual(data, { data: '{"text":"hi"}' });
    assert.ok(raw.events.every((e) => e.event === undefined), JSON.stringify(raw.events));
    await Promise.all([raw.close(), full.close()]);
    await noSessions(server);
  } finally {
    await server.stop();
  }
});

Deno.test("sse: 400 without or with a refused subscription, 413, 405, OPTIONS, origins", async () => {
  const server = await startServer(["--public", "--sse", "--allowed_origins=app.example.com"]);
  const origin = { origin: "https://app.example.com" };
  try {
    const none = await fetch(`${server.url}/events?raw=1`, { headers: origin });
    assert.equal(none.status, 400);
    await none.body?.cancel();
    // --public without a secret refuses signed streams.
    const signed = await fetch(`${server.url}/events?signed_stream=forged--00`, {
      headers: origin,
    });
    assert.equal(signed.status, 400);
    await signed.body?.cancel();
    const bad = await fetch(`${server.url}/events`, { method: "POST", headers: origin, body: "{" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const big = await fetch(`${server.url}/events`, {
      method: "POST",
      headers: origin,
      body: "x".repeat(70_000),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const put = await fetch(`${server.url}/events`, { method: "PUT", headers: origin });
    assert.equal(put.status, 405);
    await put.body?.cancel();
    const foreign = await fetch(`${server.url}/events?stream=chat`, {
      headers: { origin: "https://evil.example.org" },
    });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();
    const pre = await fetch(`${server.url}/events`, {
      method: "OPTIONS",
      headers: { ...origin, "access-control-request-headers": "last-event-id, x-custom" },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
    assert.match(pre.headers.get("access-control-allow-methods")!, /GET, POST/);
    assert.match(pre.headers.get("access-control-allow-headers")!, /x-custom/);
    await pre.body?.cancel();
    const ok = new SseReader(await fetch(`${server.url}/events?stream=chat`, { headers: origin }));
    await ok.waitFor((e) => e.event === "confirm_subscription");
    await ok.close();
    await noSessions(server);
  } finally {
    await server.stop();
  }
});

Deno.test("sse: 401 when Connect is rejected, 400 when the backend rejects the subscription", async () => {
  const rpc = new FakeRpc({
    connect: (body) =>
      (body.env as { headers?: Record<string, string> }).headers?.cookie === "ok=1"
        ? {
          status: 1,
          identifiers: '{"user":1}',
          transmissions: [JSON.stringify({ type: "welcome" })],
        }
        : {
          status: 2,
          transmissions: [
            JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
          ],
        },
    command: (body) => ({
      status: 2,
      transmissions: [
        JSON.stringify({ identifier: body.identifier, type: "reject_subscription" }),
      ],
    }),
  });
  const server = await startServer([`--rpc_host=${rpc.url}`, "--sse"]);
  try {
    const denied = await fetch(`${server.url}/events?channel=ChatChannel`);
    assert.equal(denied.status, 401);
    assert.equal(await denied.text(), "");
    const connect = rpc.calls("connect")[0].body.env as Record<string, unknown>;
    assert.equal(connect.url, `${server.url}/events?channel=ChatChannel`);

    const rejected = await fetch(`${server.url}/events?channel=ChatChannel`, {
      headers: { cookie: "ok=1" },
    });
    assert.equal(rejected.status, 400);
    await rejected.body?.cancel();
    const sub = rpc.calls("command")[0].body;
    assert.equal(sub.command, "subscribe");
    assert.equal(sub.identifier, '{"channel":"ChatChannel"}');
    // The accepted-then-refused session had an RPC Connect: it gets its Disconnect.
    await rpc.waitFor((reqs) => reqs.some((r) => r.method === "disconnect"));
    await noSessions(server);
  } finally {
    await server.stop();
    await rpc.stop();
  }
});

Deno.test("sse: pings as events; shutdown sends server_restart and ends the stream", async () => {
  const server = await startServer(["--public", "--sse"]);
  let stopped = false;
  try {
    const sse = new SseReader(await fetch(`${server.url}/events?stream=chat&pi=1`));
    await sse.waitFor((e) => e.event === "confirm_subscription");
    const ping = await sse.waitFor((e) => e.event === "ping", 3000);
    assert.equal(JSON.parse(ping.data).type, "ping");
    const stopping = server.stop();
    stopped = true;
    const bye = await sse.waitFor((e) => e.event === "disconnect");
    assert.deepEqual(JSON.parse(bye.data), {
      type: "disconnect",
      reason: "server_restart",
      reconnect: true,
    });
    assert.equal(bye.retry, undefined);
    await sse.ended;
    await stopping;
  } finally {
    if (!stopped) await server.stop();
  }
});

Deno.test("sse: resume with Last-Event-ID and history_since (memory broker)", async () => {
  const server = await startServer(["--public", "--sse", "--broker=memory"]);
  try {
    const since = Math.floor(Date.now() / 1000) - 1;
    const first = new SseReader(await fetch(`${server.url}/events?stream=chat`));
    await first.waitFor((e) => e.event === "confirm_subscription");
    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 1 }) });
    const one = await first.waitFor((e) => e.data === '{"n":1}');
    assert.match(one.id!, /^1\/[^/]+\/chat$/);
    await first.close();
    await noSessions(server);

    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 2 }) });
    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 3 }) });
    const epoch = one.id!.split("/")[1];
    const resumed = new SseReader(
      await fetch(`${server.url}/events?stream=chat`, { headers: { "last-event-id": one.id! } }),
    );
    await resumed.waitFor((e) => e.event === "confirm_history");
    await server.broadcast({ stream: "chat", data: JSON.stringify({ n: 4 }) });
    await resumed.waitFor((e) => e.data === '{"n":4}');
    const data = resumed.messages.filter((e) => e.event === undefined);
    assert.deepEqual(data, [
      { data: '{"n":2}', id: `2/${epoch}/chat` },
      { data: '{"n":3}', id: `3/${epoch}/chat` },
      { data: '{"n":4}', id: `4/${epoch}/chat` },
    ]);

    const bySince = new SseReader(
      await fetch(`${server.url}/events?stream=chat&history_since=${since}`),
    );
    await bySince.waitFor((e) => e.event === "confirm_history");
    assert.deepEqual(
      bySince.messages.filter((e) => e.event === undefined).map((e) => e.data),
      ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}'],
    );
    await Promise.all([resumed.close(), bySince.close()]);
    await noSessions(server);
  } finally {
    await server.stop();
  }
});

const curlMissing = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output().then((o) => !o.success).catch(() => true);
if (curlMissing) console.warn("sse_test: curl is not installed, skipping the curl test");

Deno.test({
  name: "sse: curl -sN reads a broadcast",
  ignore: curlMissing,
  async fn() {
    const server = await startServer(["--public", "--sse"]);
    const child = new Deno.Command("curl", {
      args: ["-sN", `${server.url}/events?stream=chat`],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    const readUntil = async (needle: string) => {
      const deadline = Date.now() + 5000;
      while (!out.includes(needle)) {
        const t = setTimeout(() => reader.cancel(), deadline - Date.now());
        const { done, value } = await reader.read();
        clearTimeout(t);
        if (done) throw new Error(`curl output ended before ${needle}: ${out}`);
        out += value;
      }
    };
    try {
      await readUntil("event: confirm_subscription");
      await server.broadcast({ stream: "chat", data: JSON.stringify({ text: "curl" }) });
      await readUntil('data: {"text":"curl"}\n\n');
    } finally {
      child.kill();
      await reader.cancel().catch(() => {});
      await child.status;
      await noSessions(server).finally(() => server.stop());
    }
  },
});

Deno.test("one broadcast reaches a WebSocket, an SSE and a long-polling client", async () => {
  const server = await startServer([
    "--public",
    "--sse",
    "--poll",
    "--poll_flush_interval=20",
  ]);
  try {
    const ws = new WsClient(server.wsUrl);
    await ws.opened;
    ws.send({ command: "subscribe", identifier: pubsub("news") });
    await ws.waitFor((f) => f.type === "confirm_subscription");
    const sse = new SseReader(await fetch(`${server.url}/events?stream=news`));
    await sse.waitFor((e) => e.event === "confirm_subscription");
    const open = await fetch(`${server.url}/lp`, {
      method: "POST",
      body: JSON.stringify({ command: "subscribe", identifier: pubsub("news") }),
    });
    assert.match(await open.text(), /confirm_subscription/);
    const pollId = open.headers.get("x-anycable-poll-id")!;
    const poll = fetch(`${server.url}/lp`, {
      method: "POST",
      headers: { "x-anycable-poll-id": pollId },
    });
    await waitUntil(() => server.app.node.sessions.size === 3, "three sessions");
    await server.broadcast({ stream: "news", data: JSON.stringify({ headline: "all" }) });
    const wsMsg = await ws.waitFor((f) => f.message !== undefined);
    assert.deepEqual(wsMsg.message, { headline: "all" });
    await sse.waitFor((e) => e.data === '{"headline":"all"}');
    const lines = (await (await poll).text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, [{ identifier: pubsub("news"), message: { headline: "all" } }]);
    await Promise.all([ws.close(), sse.close()]);
  } finally {
    await server.stop();
  }
});
