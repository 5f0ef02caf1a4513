/**
 * Durable Streams with the official client (`@durable-streams/client`): the read side over a
 * broadcast stream's history (catch-up, resume, long-poll, SSE, signed access), and a stream
 * written over Durable Streams read at once by Action Cable clients and a Durable Streams
 * client, with the same offsets.
 */
import assert from "node:assert/strict";
import { DurableStream, stream } from "@durable-streams/client";
import { createCable } from "@anycable/core";
import { signStream } from "../src/identity/signed_stream.ts";
import { deriveKey } from "../src/util/secrets.ts";
import { issueToken } from "../src/identity/jwt.ts";
import { formatOffset } from "../src/ds/offset.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { waitUntil } from "./support/wait.ts";

const EXT = "actioncable-v1-ext-json";

Deno.test("DS read side: a broadcast stream's history by catch-up, resume, long-poll and SSE", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--broker=memory",
    "--ds",
    "--ds_poll_interval=5",
    "--secret=s3cret",
    "--metrics_http=/metrics",
  ], "info");
  const name = "chat/1";
  const signed = await signStream(name, "s3cret");
  const key = await deriveKey("s3cret", "broadcast-cable");
  const url = `${server.url}/ds/${encodeURIComponent(name)}`;
  const ctl = new AbortController();
  try {
    // Unknown stream: 404; no signature (public streams are off): 401; wrong one: 401.
    assert.equal((await drain(fetch(`${url}?signed=${signed}`))).status, 404);
    for (let i = 1; i <= 3; i++) {
      assert.equal(
        (await server.broadcast({ stream: name, data: JSON.stringify({ i }) }, key)).status,
        201,
      );
    }
    assert.equal((await drain(fetch(url))).status, 401);
    const other = await signStream("chat/2", "s3cret");
    assert.equal((await drain(fetch(`${url}?signed=${other}`))).status, 401);

    const res = await stream<{ i: number }>({ url, offset: "-1", live: false, params: { signed } });
    assert.deepEqual(await res.json(), [{ i: 1 }, { i: 2 }, { i: 3 }]);
    assert.equal(res.offset, formatOffset(3));

    // Resume from Stream-Next-Offset: nothing new yet, so a long-poll waits for broadcast 4.
    const polled = stream<{ i: number }>({
      url,
      offset: res.offset,
      live: "long-poll",
      headers: { "X-Signed": signed },
      signal: ctl.signal,
    });
    const got: number[] = [];
    const offsets: string[] = [];
    const poll = await polled;
    poll.subscribeJson((batch) => {
      for (const item of batch.items) got.push(item.i);
      offsets.push(batch.offset);
    });
    await new Promise((r) => setTimeout(r, 100));
    await server.broadcast({ stream: name, data: JSON.stringify({ i: 4 }) }, key);
    await waitUntil(() => got.includes(4), "long-poll delivery", 10_000);
    assert.equal(offsets.at(-1), formatOffset(4));
    poll.cancel();

    // SSE from the start, then live.
    const sse = await stream<{ i: number }>({
      url,
      offset: "-1",
      live: "sse",
      json: true,
      params: { signed },
      signal: ctl.signal,
    });
    const seen: number[] = [];
    sse.subscribeJson((batch) => {
      for (const item of batch.items) seen.push(item.i);
    });
    await waitUntil(() => seen.length === 4, "SSE catch-up", 10_000);
    await server.broadcast({ stream: name, data: JSON.stringify({ i: 5 }) }, key);
    await waitUntil(() => seen.length === 5, "SSE live delivery", 10_000);
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /anycable_go_ds_sse_clients_num(\{[^}]*\})? 1\b/);
    assert.match(metrics, /anycable_go_ds_poll_requests_total(\{[^}]*\})? [1-9]/);
    sse.cancel();

    // The read side is read-only for broadcast streams without a write key.
    const put = await fetch(url, {
      method: "PUT",
      headers: { "content-type": "application/json" },
    });
    await put.body?.cancel();
    assert.equal(put.status, 401);
  } finally {
    ctl.abort();
    await server.stop();
  }
});

Deno.test("DS: an Action Cable client and a Durable Streams client read one stream at once", async () => {
  const server = await startServer([
    "--norpc",
    "--noauth",
    "--public_streams",
    "--broker=memory",
    "--ds",
    "--ds_write_key=wk",
    "--api_secret=api",
    "--sse",
  ], "info");
  const name = "room/9";
  const url = `${server.url}/ds/${encodeURIComponent(name)}`;
  const auth = { Authorization: "Bearer wk" };
  const identifier = JSON.stringify({ channel: "$pubsub", stream_name: name });
  const ws = new WsClient(server.wsUrl, EXT);
  const cable = createCable(server.wsUrl, {
    protocol: EXT,
    websocketImplementation: WebSocket,
    logLevel: "error",
  });
  const ctl = new AbortController();
  try {
    const handle = await DurableStream.create({
      url,
      contentType: "application/json",
      headers: auth,
    });
    await ws.opened;
    ws.send({ command: "subscribe", identifier });
    await ws.waitFor((f) => f.type === "confirm_subscription");
    const channel = cable.streamFrom(name);
    const acMessages: unknown[] = [];
    channel.on("message", (m: unknown) => acMessages.push(m));
    await channel.ensureSubscribed();

    // An Action Cable SSE subscriber (GET /events?stream=) too.
    const events = await fetch(`${server.url}/events?stream=${encodeURIComponent(name)}`, {
      signal: ctl.signal,
    });
    assert.equal(events.status, 200);
    const eventsReader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let sseText = "";
    const sseDone = (async () => {
      while (!sseText.includes('"via":"api"')) {
        const { done, value } = await eventsReader.read();
        if (done) break;
        sseText += value;
      }
    })();

    const ds = await stream<{ n: number; via: string }>({
      url,
      offset: "-1",
      live: "sse",
      signal: ctl.signal,
    });
    const dsItems: Array<{ n: number; via: string }> = [];
    const dsOffsets: string[] = [];
    ds.subscribeJson((batch) => {
      dsItems.push(...batch.items);
      dsOffsets.push(batch.offset);
    });

    // A Durable Streams append (one value, then a batch of two) ...
    await handle.append(JSON.stringify({ n: 1, via: "ds" }));
    const batch = await fetch(url, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify([{ n: 2, via: "ds" }, { n: 3, via: "ds" }]),
    });
    await batch.body?.cancel();
    assert.equal(batch.status, 204);
    assert.equal(batch.headers.get("stream-next-offset"), formatOffset(3));
    // ... and a publication through the REST API, to the same stream.
    const pub = await fetch(`${server.url}/api/publish`, {
      method: "POST",
      headers: { Authorization: "Bearer api" },
      body: JSON.stringify({ stream: name, data: JSON.stringify({ n: 4, via: "api" }) }),
    });
    await pub.body?.cancel();
    assert.equal(pub.status, 201);

    await waitUntil(() => dsItems.length === 4, "DS client got 4 items", 10_000);
    const frames = await ws.waitForCount(5, 10_000); // confirm + 4 messages
    const acFrames = frames.filter((f) => f.identifier === identifier && "message" in f);
    assert.deepEqual(acFrames.map((f) => f.message), dsItems);
    assert.deepEqual(acFrames.map((f) => f.offset), [1, 2, 3, 4]);
    assert.equal(dsOffsets.at(-1), formatOffset(4));
    await waitUntil(() => acMessages.length === 4, "@anycable/core got 4 messages");
    assert.deepEqual(acMessages, dsItems);
    await Promise.race([sseDone, new Promise((r) => setTimeout(r, 10_000))]);
    for (const item of dsItems) assert.ok(sseText.includes(JSON.stringify(item)), sseText);
    await eventsReader.cancel();

    // A reader resuming from an Action Cable offset gets exactly what follows it.
    const after2 = await stream({ url, offset: formatOffset(2), live: false });
    assert.deepEqual(await after2.json(), [{ n: 3, via: "ds" }, { n: 4, via: "api" }]);

    // Writes need the key.
    const bad = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "1",
    });
    await bad.body?.cancel();
    assert.equal(bad.status, 401);
    ds.cancel();
  } finally {
    ctl.abort();
    cable.disconnect();
    await ws.close();
    await server.stop();
  }
});

async function drain(res: Promise<Response>): Promise<Response> {
  const r = await res;
  await r.body?.cancel();
  return r;
}

Deno.test("DS reads authenticate the client like a WebSocket (JWT) unless --ds_skip_auth", async () => {
  const flags = ["--norpc", "--broker=memory", "--ds", "--secret=s3cret", "--public_streams"];
  const strict = await startServer(flags, "info");
  const loose = await startServer([...flags, "--ds_skip_auth"], "info");
  const key = await deriveKey("s3cret", "broadcast-cable");
  const token = await issueToken({ user: "u1" }, "s3cret", 60);
  try {
    for (const s of [strict, loose]) {
      assert.equal((await s.broadcast({ stream: "news", data: '"hi"' }, key)).status, 201);
    }
    assert.equal((await drain(fetch(`${strict.url}/ds/news`))).status, 401);
    const bad = await drain(fetch(`${strict.url}/ds/news`, { headers: { "X-JID": "nope" } }));
    assert.equal(bad.status, 401);
    const viaHeader = await fetch(`${strict.url}/ds/news`, { headers: { "X-JID": token } });
    assert.equal(viaHeader.status, 200);
    assert.deepEqual(await viaHeader.json(), ["hi"]);
    const viaQuery = await stream({ url: `${strict.url}/ds/news?jid=${token}`, live: false });
    assert.deepEqual(await viaQuery.json(), ["hi"]);
    // Skipping client authentication still authorizes the stream (public streams here).
    const skipped = await fetch(`${loose.url}/ds/news`);
    assert.equal(skipped.status, 200);
    assert.deepEqual(await skipped.json(), ["hi"]);
    assert.ok(strict.logs.some((l) => String(l.msg).includes("ds read refused")));
  } finally {
    await strict.stop();
    await loose.stop();
  }
});
