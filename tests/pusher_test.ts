/**
 * Pusher mode with real clients: pusher-js 8 and Laravel Echo 2 over WebSocket, the `pusher`
 * server SDK 5 for auth signatures and the HTTP API, and raw sockets for bad input. One
 * Cableway (memory broker, so presence works) serves every step.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import Echo from "laravel-echo";
import {
  APP_ID,
  APP_KEY,
  APP_SECRET,
  connected,
  newPusherJs,
  PUSHER_FLAGS,
  type PusherClient,
  pusherClient,
  record,
  sdk,
  subscribeTo,
  waitEvent,
} from "./support/pusher.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { PusherSigner } from "../src/pusher/signatures.ts";
import { parseConfig } from "../src/config/config.ts";
import { freePort } from "./support/services.ts";

type Frame = Record<string, unknown>;

function rawPusher(server: TestServer, path = `/app/${APP_KEY}?protocol=7`): WsClient {
  return new WsClient(`ws://127.0.0.1:${server.app.port}${path}`, []);
}

/** A raw socket's socket_id (from pusher:connection_established). */
async function established(client: WsClient): Promise<string> {
  const f = await client.waitFor((f) => f.event === "pusher:connection_established", 10_000);
  const data = JSON.parse(f.data as string);
  assert.equal(typeof data.activity_timeout, "number");
  assert.match(data.socket_id, /^\d+\.\d+$/);
  return data.socket_id;
}

/** Sends a frame and returns the first frame after it matching `pred`. */
async function ask(client: WsClient, frame: unknown, pred: (f: Frame) => boolean): Promise<Frame> {
  const from = client.frames.length;
  client.send(frame);
  let found: Frame | undefined;
  await client.waitFor(() => (found = client.frames.slice(from).find(pred)) !== undefined, 10_000);
  return found!;
}

/** Signed API request without the SDK (to forge timestamps / bodies). */
function signedUrl(port: number, method: string, path: string, body: string, ts: number): string {
  const q = new URLSearchParams({
    auth_key: APP_KEY,
    auth_timestamp: String(ts),
    auth_version: "1.0",
  });
  if (body) q.set("body_md5", md5(body));
  const signer = new PusherSigner(APP_KEY, APP_SECRET);
  const sorted = [...q.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${k}=${v}`)
    .join("&");
  q.set("auth_signature", signer.sign(`${method}\n${path}\n${sorted}`));
  return `http://127.0.0.1:${port}${path}?${q}`;
}

function md5(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

Deno.test("pusher: pusher-js, Laravel Echo and the Pusher SDK against one node", async (t) => {
  const server = await startServer([
    "--norpc",
    "--public",
    "--broker=memory",
    "--max_message_size=20000",
    ...PUSHER_FLAGS,
  ], "info");
  const port = server.app.port;
  const api = sdk(port);
  const clients: PusherClient[] = [];
  const raws: WsClient[] = [];
  const client = (opts?: Parameters<typeof pusherClient>[1]) => {
    const c = pusherClient(port, opts);
    clients.push(c);
    return c;
  };
  const raw = (path?: string) => {
    const c = rawPusher(server, path);
    raws.push(c);
    return c;
  };
  try {
    await t.step(
      "public channel: SDK trigger, socket_id exclusion, Action Cable sees it",
      async () => {
        const a = client();
        const b = client();
        const sidA = await connected(a);
        await connected(b);
        const chA = await subscribeTo(a, "news");
        const chB = await subscribeTo(b, "news");
        assert.ok(chA.ok && chB.ok);
        const cable = new WsClient(server.wsUrl);
        await cable.waitFor((f) => f.type === "welcome");
        const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "news" });
        cable.send({ command: "subscribe", identifier });
        await cable.waitFor((f) => f.type === "confirm_subscription");

        const res = await api.trigger("news", "headline", { title: "one" });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {});
        assert.deepEqual(await waitEvent(chA.events, "headline"), { title: "one" });
        assert.deepEqual(await waitEvent(chB.events, "headline"), { title: "one" });
        const seen = await cable.waitFor((f) => f.identifier === identifier && !!f.message);
        assert.deepEqual(seen.message, {
          event: "headline",
          data: JSON.stringify({ title: "one" }),
        });

        // socket_id: everyone but the sender's socket gets it.
        await (await api.trigger("news", "headline", { title: "two" }, { socket_id: sidA })).text();
        await (await api.trigger("news", "headline", { title: "three" })).text();
        await waitEvent(chA.events, "headline", (d) => (d as Frame).title === "three");
        await waitEvent(chB.events, "headline", (d) => (d as Frame).title === "three");
        const titles = (ev: typeof chA.events) =>
          ev.items.filter((i) => i.event === "headline").map((i) => (i.data as Frame).title);
        assert.deepEqual(titles(chA.events), ["one", "three"]);
        assert.deepEqual(titles(chB.events), ["one", "two", "three"]);

        // An Action Cable broadcast shaped {event, data} reaches Pusher clients too.
        assert.equal(
          (await server.broadcast({
            stream: "news",
            data: JSON.stringify({ event: "from-cable", data: "plain" }),
          })).status,
          201,
        );
        assert.equal(await waitEvent(chA.events, "from-cable"), "plain");
        await cable.close();
      },
    );

    await t.step("private channel: good auth subscribes, forged auth is refused", async () => {
      const good = client();
      await connected(good);
      const ok = await subscribeTo(good, "private-orders");
      assert.ok(ok.ok);
      const forger = client({ signer: sdk(port, "not-the-secret") });
      await connected(forger);
      const bad = await subscribeTo(forger, "private-orders");
      assert.equal(bad.ok, false);
      const err = bad.events.items.find((i) => i.event === "pusher:subscription_error")!
        .data as Frame;
      assert.equal(err.type, "AuthError");
      assert.equal(err.status, 401);
      await (await api.trigger("private-orders", "shipped", { id: 7 })).text();
      assert.deepEqual(await waitEvent(ok.events, "shipped"), { id: 7 });
      assert.ok(!bad.events.items.some((i) => i.event === "shipped"));
      assert.ok(
        server.logs.some((l) =>
          l.msg === "pusher subscription refused" && l.error === "Invalid signature"
        ),
      );
    });

    await t.step(
      "Laravel Echo: presence members, joining/leaving once per user, whispers",
      async () => {
        const echoFor = (user_id: string, name: string) => {
          const c = client({ user: { user_id, user_info: { name } } });
          return new Echo({ broadcaster: "pusher", key: APP_KEY, client: c });
        };
        const bob = echoFor("2", "Bob");
        const members: Array<Array<Frame>> = [];
        const joined: Frame[] = [];
        const left: Frame[] = [];
        const whispers: Frame[] = [];
        const bobRoom = bob.join("room")
          .here((m: Frame[]) => members.push(m))
          .joining((m: Frame) => joined.push(m))
          .leaving((m: Frame) => left.push(m))
          .listenForWhisper("typing", (d: Frame) => whispers.push(d));
        const bobMarks = record(bobRoom.subscription);
        await waitUntil(() => members.length === 1, "Bob's member list");
        assert.deepEqual(members[0], [{ name: "Bob" }]);

        // Alice joins with two sockets: Bob sees one joining.
        const alice1 = echoFor("1", "Alice");
        const aliceHere: Array<Array<Frame>> = [];
        const alice1Whispers: Frame[] = [];
        alice1.join("room").here((m: Frame[]) => aliceHere.push(m)).listenForWhisper(
          "typing",
          (d: Frame) => alice1Whispers.push(d),
        );
        await waitUntil(() => aliceHere.length === 1, "Alice's member list");
        assert.deepEqual(
          aliceHere[0].map((m) => m.name).sort(),
          ["Alice", "Bob"],
        );
        await waitUntil(() => joined.length === 1, "Bob sees Alice join");
        assert.deepEqual(joined, [{ name: "Alice" }]);
        const alice2 = echoFor("1", "Alice");
        const alice2Here: unknown[] = [];
        alice2.join("room").here((m: unknown) => alice2Here.push(m));
        await waitUntil(() => alice2Here.length === 1, "Alice's second socket list");

        // The HTTP API sees two users.
        const users = await (await api.get({ path: "/channels/presence-room/users" })).json();
        assert.deepEqual(users.users.map((u: Frame) => u.id).sort(), ["1", "2"]);
        const info = await (await api.get({
          path: "/channels/presence-room",
          params: { info: "user_count,subscription_count" },
        })).json();
        assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
        const list = await (await api.get({
          path: "/channels",
          params: { filter_by_prefix: "presence-", info: "user_count" },
        })).json();
        assert.deepEqual(list, { channels: { "presence-room": { user_count: 2 } } });

        // Whisper from Alice's first socket: Bob gets it, the sender does not.
        alice1.join("room").whisper("typing", { who: "Alice" });
        await waitUntil(() => whispers.length === 1, "Bob gets the whisper");
        assert.deepEqual(whispers, [{ who: "Alice" }]);
        // A marker after the whisper, on the same stream: once Alice sees it, a whisper echo
        // would have arrived already.
        const aliceMarks = record(alice1.join("room").subscription);
        await (await api.trigger("presence-room", "marker", {})).text();
        await waitEvent(aliceMarks, "marker");
        assert.deepEqual(alice1Whispers, []);

        // Alice's first socket leaves: she is still present (second socket); then she leaves.
        alice1.disconnect();
        await (await api.trigger("presence-room", "marker2", {})).text();
        await waitEvent(bobMarks, "marker2");
        assert.deepEqual(left, []);
        alice2.disconnect();
        await waitUntil(() => left.length === 1, "Bob sees Alice leave");
        assert.deepEqual(left, [{ name: "Alice" }]);
        await (await api.trigger("presence-room", "marker3", {})).text();
        await waitEvent(bobMarks, "marker3");
        assert.equal(joined.length, 1);
        assert.equal(left.length, 1);
        bob.disconnect();
      },
    );

    await t.step(
      "Action Cable and Pusher on one stream: presence both ways, client events",
      async () => {
        const dave = client({ user: { user_id: "dave", user_info: { name: "Dave" } } });
        const daveRoom = await subscribeTo(dave, "presence-lobby");
        assert.ok(daveRoom.ok);
        const cable = new WsClient(server.wsUrl, "actioncable-v1-ext-json");
        await cable.waitFor((f) => f.type === "welcome");
        const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "presence-lobby" });
        cable.send({ command: "subscribe", identifier });
        await cable.waitFor((f) => f.type === "confirm_subscription");
        cable.send({
          command: "join",
          identifier,
          presence: { id: "carol", info: { name: "Carol" } },
        });
        // An Action Cable join is a Pusher member_added.
        assert.deepEqual(await waitEvent(daveRoom.events, "pusher:member_added"), {
          id: "carol",
          info: { name: "Carol" },
        });
        // A Pusher member joining is a presence message for the Action Cable client.
        const erin = client({ user: { user_id: "erin", user_info: { name: "Erin" } } });
        const erinRoom = await subscribeTo(erin, "presence-lobby");
        const ids: string[] = [];
        erinRoom.channel.members.each((m: { id: string }) => ids.push(m.id));
        assert.deepEqual(ids.sort(), ["carol", "dave", "erin"]);
        const join = await cable.waitFor((f) =>
          f.type === "presence" && (f.message as Frame).id === "erin"
        );
        assert.deepEqual(join.message, { type: "join", id: "erin", info: { name: "Erin" } });
        // A client event is a message {event, data, user_id} on the stream.
        erinRoom.channel.trigger("client-wave", { hi: true });
        const wave = await cable.waitFor((f) =>
          f.identifier === identifier && (f.message as Frame)?.event === "client-wave"
        );
        assert.deepEqual(wave.message, {
          event: "client-wave",
          data: { hi: true },
          user_id: "erin",
        });
        assert.deepEqual(await waitEvent(daveRoom.events, "client-wave"), { hi: true });
        erin.disconnect();
        const leave = await cable.waitFor((f) =>
          f.type === "presence" && (f.message as Frame).type === "leave"
        );
        assert.deepEqual(leave.message, { type: "leave", id: "erin" });
        // An Action Cable leave is a Pusher member_removed.
        cable.send({ command: "leave", identifier });
        const gone = await waitEvent(
          daveRoom.events,
          "pusher:member_removed",
          (d) => (d as Frame).id === "carol",
        );
        assert.deepEqual(gone, { id: "carol", info: { name: "Carol" } });
        // A Pusher unsubscribe from a presence channel is a leave.
        dave.unsubscribe("presence-lobby");
        const daveLeft = await cable.waitFor((f) =>
          f.type === "presence" && (f.message as Frame).id === "dave" &&
          (f.message as Frame).type === "leave"
        );
        assert.ok(daveLeft);
        await cable.close();
      },
    );

    await t.step("client events: private ok, public refused with pusher:error", async () => {
      const a = raw();
      const b = raw();
      const sidA = await established(a);
      const sidB = await established(b);
      const signer = new PusherSigner(APP_KEY, APP_SECRET);
      const sub = (c: WsClient, sid: string, channel: string) =>
        ask(c, {
          event: "pusher:subscribe",
          data: { channel, auth: `${APP_KEY}:${signer.sign(`${sid}:${channel}`)}` },
        }, (f) => f.channel === channel && String(f.event).includes("subscription"));
      assert.equal(
        (await sub(a, sidA, "private-dm")).event,
        "pusher_internal:subscription_succeeded",
      );
      assert.equal(
        (await sub(b, sidB, "private-dm")).event,
        "pusher_internal:subscription_succeeded",
      );
      a.send({ event: "client-ping", channel: "private-dm", data: { n: 1 } });
      const got = await b.waitFor((f) => f.event === "client-ping");
      assert.deepEqual(JSON.parse(got.data as string), { n: 1 });
      assert.equal(got.channel, "private-dm");

      await sub(a, sidA, "lobby");
      const err = await ask(
        a,
        { event: "client-hi", channel: "lobby", data: {} },
        (f) => f.event === "pusher:error",
      );
      assert.deepEqual(err.data, {
        code: null,
        message: "Client event rejected - only supported on private and presence channels",
      });
      const notSub = await ask(
        a,
        { event: "client-hi", channel: "private-other", data: {} },
        (f) => f.event === "pusher:error",
      );
      assert.match((notSub.data as Frame).message as string, /not subscribed/);
      // Too big a client event payload (over 10 KB) is refused, the socket stays.
      const big = await ask(
        a,
        { event: "client-big", channel: "private-dm", data: { x: "y".repeat(11_000) } },
        (f) => f.event === "pusher:error",
      );
      assert.match((big.data as Frame).message as string, /payload larger than 10240/);
      // The sender never got its own client event.
      assert.ok(!a.frames.some((f) => f.event === "client-ping"));
      // Unsubscribing: the channel stops counting the socket (frames are handled in order).
      b.send({ event: "pusher:unsubscribe", data: { channel: "private-dm" } });
      await ask(b, { event: "pusher:ping" }, (f) => f.event === "pusher:pong");
      const info = await (await api.get({
        path: "/channels/private-dm",
        params: { info: "subscription_count" },
      })).json();
      assert.deepEqual(info, { occupied: true, subscription_count: 1 });
    });

    await t.step("batch events and channel info through the SDK", async () => {
      const c = client();
      await connected(c);
      const one = await subscribeTo(c, "batch-1");
      const two = await subscribeTo(c, "private-batch-2");
      const res = await api.triggerBatch([
        { channel: "batch-1", name: "e1", data: { n: 1 } },
        { channel: "private-batch-2", name: "e2", data: "text" },
        { channel: "batch-1", name: "e3", data: { n: 3 } },
      ]);
      assert.equal(res.status, 200);
      await res.text();
      assert.deepEqual(await waitEvent(one.events, "e1"), { n: 1 });
      assert.equal(await waitEvent(two.events, "e2"), "text");
      await waitEvent(one.events, "e3");
      const names = one.events.items.map((i) => i.event).filter((e) => !e.startsWith("pusher"));
      assert.deepEqual(names, ["e1", "e3"]);

      const info = await (await api.get({
        path: "/channels/batch-1",
        params: { info: "subscription_count" },
      })).json();
      assert.deepEqual(info, { occupied: true, subscription_count: 1 });
      const empty = await (await api.get({ path: "/channels/nobody-here" })).json();
      assert.deepEqual(empty, { occupied: false });
      const all =
        await (await api.get({ path: "/channels", params: { filter_by_prefix: "batch" } }))
          .json();
      assert.deepEqual(all, { channels: { "batch-1": {} } });
      // users of a non-presence channel: 400
      await assert.rejects(
        api.get({ path: "/channels/batch-1/users" }),
        (e: Frame) => e.status === 400,
      );
      // more than 10 events in a batch: 400
      const eleven = Array.from(
        { length: 11 },
        (_, i) => ({ channel: "batch-1", name: `n${i}`, data: "" }),
      );
      await assert.rejects(api.triggerBatch(eleven), (e: Frame) => e.status === 400);
    });

    await t.step("bad signatures are 401", async () => {
      const forger = sdk(port, "wrong-secret");
      await assert.rejects(forger.trigger("news", "x", {}), (e: Frame) => e.status === 401);
      await assert.rejects(forger.get({ path: "/channels" }), (e: Frame) => e.status === 401);
      const body = JSON.stringify({ name: "x", channel: "news", data: "{}" });
      const path = `/apps/${APP_ID}/events`;
      const now = Math.floor(Date.now() / 1000);
      const fresh = await fetch(signedUrl(port, "POST", path, body, now), { method: "POST", body });
      assert.equal(fresh.status, 200, await fresh.text());
      const stale = await fetch(signedUrl(port, "POST", path, body, now - 700), {
        method: "POST",
        body,
      });
      assert.equal(stale.status, 401);
      assert.match(await stale.text(), /auth_timestamp/);
      // Same signature, different body: body_md5 no longer matches.
      const tampered = await fetch(signedUrl(port, "POST", path, body, now), {
        method: "POST",
        body: body.replace("news", "evil"),
      });
      assert.equal(tampered.status, 401);
      await tampered.text();
      const unsigned = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body });
      assert.equal(unsigned.status, 401);
      await unsigned.text();
      assert.ok(server.logs.some((l) => l.msg === "pusher api request refused"));
    });

    await t.step(
      "HTTP API: bad bodies and Pusher's limits are 4xx, the node keeps serving",
      async () => {
        const now = () => Math.floor(Date.now() / 1000);
        const post = async (route: string, body: string) => {
          const path = `/apps/${APP_ID}/${route}`;
          const res = await fetch(signedUrl(port, "POST", path, body, now()), {
            method: "POST",
            body,
          });
          return { status: res.status, text: await res.text() };
        };
        const get = async (route: string) => {
          const path = `/apps/${APP_ID}/${route}`;
          const res = await fetch(signedUrl(port, "GET", path, "", now()));
          return { status: res.status, text: await res.text() };
        };
        assert.equal((await post("events", "{oops")).status, 400);
        assert.equal((await post("events", "null")).status, 400);
        assert.equal(
          (await post("events", JSON.stringify({ channel: "a", data: "" }))).status,
          400,
        );
        assert.equal(
          (await post("events", JSON.stringify({ name: "e", channel: "bad name", data: "" })))
            .status,
          400,
        );
        const big = await post(
          "events",
          JSON.stringify({ name: "e", channel: "a", data: "x".repeat(10_241) }),
        );
        assert.equal(big.status, 413);
        const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
        assert.equal(
          (await post("events", JSON.stringify({ name: "e", channels: many, data: "" }))).status,
          400,
        );
        assert.equal(
          (await post(
            "events",
            JSON.stringify({ name: "e", channel: "a", data: "", socket_id: "x" }),
          ))
            .status,
          400,
        );
        assert.equal((await post("batch_events", JSON.stringify({ batch: [] }))).status, 400);
        assert.equal((await post("batch_events", "[]")).status, 400);
        assert.equal((await get("events")).status, 405);
        assert.equal((await get("nothing/here")).status, 404);
        assert.equal((await get("channels/%E0%A4%A")).status, 400);
        assert.ok(server.logs.some((l) => l.msg === "pusher api request rejected"));
        // Still serving.
        const ok = await post("events", JSON.stringify({ name: "e", channel: "a", data: "" }));
        assert.equal(ok.status, 200);
        assert.equal(ok.text, "{}");
      },
    );

    await t.step("raw protocol: ping, malformed frames, unknown events, oversized", async () => {
      const c = raw();
      await established(c);
      const pong = await ask(
        c,
        { event: "pusher:ping", data: {} },
        (f) => f.event === "pusher:pong",
      );
      assert.ok(pong);
      const bad = await ask(c, "{not json", (f) => f.event === "pusher:error");
      assert.deepEqual(bad.data, { code: null, message: "Invalid JSON" });
      const noEvent = await ask(c, { data: 1 }, (f) => f.event === "pusher:error");
      assert.equal((noEvent.data as Frame).code, null);
      const unknown = await ask(
        c,
        { event: "pusher:teleport", data: {} },
        (f) => f.event === "pusher:error",
      );
      assert.deepEqual(unknown.data, { code: null, message: "Unsupported event: pusher:teleport" });
      const badChannel = await ask(
        c,
        { event: "pusher:subscribe", data: { channel: "no spaces allowed" } },
        (f) => f.event === "pusher:subscription_error",
      );
      assert.equal((badChannel.data as Frame).status, 400);
      // Still serving after all that.
      await ask(c, { event: "pusher:ping", data: {} }, (f) => f.event === "pusher:pong");
      // Larger than --max_message_size: error, then close 1009.
      c.send({ event: "client-x", channel: "private-dm", data: "z".repeat(30_000) });
      const closed = await c.closed;
      assert.equal(closed.code, 1009);
      assert.ok(
        c.frames.some((f) =>
          f.event === "pusher:error" && /too big/.test((f.data as Frame).message as string)
        ),
      );
      assert.ok(server.logs.some((l) => l.msg === "pusher message too big"));
    });

    await t.step("wrong key, missing or unsupported protocol: refused like Pusher", async () => {
      const cases: Array<[string, number]> = [
        ["/app/not-my-key?protocol=7", 4001],
        [`/app/${APP_KEY}`, 4008],
        [`/app/${APP_KEY}?protocol=99`, 4007],
        [`/app/${APP_KEY}?protocol=x`, 4006],
      ];
      for (const [path, code] of cases) {
        const c = raw(path);
        const closed = await c.closed;
        assert.equal(closed.code, code, path);
        assert.equal((c.frames[0]?.data as Frame)?.code, code, path);
      }
      // pusher-js with a wrong key gives up (4001 is "do not reconnect").
      const wrong = newPusherJs("nope", port);
      clients.push(wrong);
      const codes: unknown[] = [];
      wrong.connection.bind(
        "error",
        (e: { error?: { data?: { code?: number } } }) => codes.push(e.error?.data?.code),
      );
      await waitUntil(
        () =>
          codes.includes(4001) &&
          wrong.connection.state === "disconnected",
        "4001 at pusher-js",
      );
    });

    await t.step("user sign-in: authenticateUser, then sendToUser reaches the user", async () => {
      const c = client({ signinUser: { id: "u-42", name: "Zed" } });
      await connected(c);
      const got: unknown[] = [];
      c.user.bind("notice", (d: unknown) => got.push(d));
      c.signin();
      // pusher-js subscribes to the user's channel once signed in.
      await waitUntil(
        () => c.user.serverToUserChannel?.subscribed === true,
        "the user channel subscription",
      );
      await (await api.sendToUser("u-42", "notice", { hello: 1 })).text();
      await waitUntil(() => got.length === 1, "the user event");
      assert.deepEqual(got, [{ hello: 1 }]);
      // terminate_connections closes the user's sockets with 4009: pusher-js stays away.
      const codes: unknown[] = [];
      c.connection.bind(
        "error",
        (e: { error?: { data?: { code?: number } } }) => codes.push(e.error?.data?.code),
      );
      await (await api.terminateUserConnections("u-42")).text();
      await waitUntil(
        () => codes.includes(4009) && c.connection.state === "disconnected",
        "the user's connection terminated",
      );
      // A forged sign-in is closed with 4009.
      const f = raw();
      await established(f);
      f.send({ event: "pusher:signin", data: { auth: `${APP_KEY}:00`, user_data: '{"id":"x"}' } });
      assert.equal((await f.closed).code, 4009);
    });

    await t.step("metrics count Pusher sockets and their messages", async () => {
      const metric = (name: string) => {
        const m = server.app.metrics.prometheus().match(new RegExp(`^\\S*${name} (\\d+)$`, "m"));
        assert.ok(m, `metric ${name}`);
        return Number(m[1]);
      };
      const clientsBefore = metric("clients_num");
      const msgsBefore = metric("client_msg_total");
      const failedBefore = metric("failed_client_msg_total");
      const c = raw();
      await established(c);
      assert.equal(metric("clients_num"), clientsBefore + 1);
      await ask(c, { event: "pusher:ping" }, (f) => f.event === "pusher:pong");
      await ask(c, { event: "pusher:nope" }, (f) => f.event === "pusher:error");
      assert.equal(metric("client_msg_total"), msgsBefore + 2);
      assert.equal(metric("failed_client_msg_total"), failedBefore + 1);
      await c.close();
      await waitUntil(() => metric("clients_num") === clientsBefore, "the socket to be gone");
    });
  } finally {
    for (const c of clients) c.disconnect();
    await Promise.all(raws.map((r) => r.close()));
    await server.stop();
  }
});

Deno.test("pusher: no presence without a broker; graceful shutdown sends pusher:error 4200", async () => {
  const server = await startServer(["--norpc", "--shutdown_timeout=1", ...PUSHER_FLAGS], "info");
  const c = rawPusher(server);
  try {
    const sid = await established(c);
    // Without a broker there is no presence: the subscription is refused, saying why.
    const channel = "presence-room";
    const channelData = JSON.stringify({ user_id: "1" });
    const sig = new PusherSigner(APP_KEY, APP_SECRET).sign(`${sid}:${channel}:${channelData}`);
    const refused = await ask(c, {
      event: "pusher:subscribe",
      data: { channel, auth: `${APP_KEY}:${sig}`, channel_data: channelData },
    }, (f) => f.event === "pusher:subscription_error");
    assert.deepEqual(refused.data, {
      type: "PresenceError",
      error: "Presence channels need a broker (--broker)",
      status: 500,
    });
    const stopping = server.stop();
    const closed = await c.closed;
    await stopping;
    assert.equal(closed.code, 4200);
    const err = c.frames.find((f) => f.event === "pusher:error");
    assert.deepEqual(err?.data, { code: 4200, message: "server_restart" });
  } finally {
    await c.close();
    await server.stop();
  }
});

Deno.test("pusher: off without an app id and key; the secret falls back to --secret", async () => {
  // The options come from ANYCABLE_PUSHER_* too; on without any secret is a config error.
  const env: Record<string, string> = {
    ANYCABLE_PUSHER_APP_ID: "env-id",
    ANYCABLE_PUSHER_APP_KEY: "env-key",
    ANYCABLE_PUSHER_API_PORT: "9999",
  };
  const { config } = parseConfig([], { get: (k) => env[k] });
  assert.deepEqual(
    [config.pusher_app_id, config.pusher_app_key, config.pusher_api_port],
    ["env-id", "env-key", 9999],
  );
  await assert.rejects(
    startServer(["--norpc", "--pusher_app_id=a", "--pusher_app_key=b"], "info"),
    /Pusher mode needs --pusher_secret \(or --secret\)/,
  );
  const off = await startServer(["--norpc", `--pusher_app_key=${APP_KEY}`], "info");
  try {
    const res = await fetch(`http://127.0.0.1:${off.app.port}/apps/${APP_ID}/events`);
    assert.equal(res.status, 404);
    await res.text();
    assert.equal(off.app.pusherApiPort, undefined);
  } finally {
    await off.stop();
  }
  const on = await startServer([
    "--norpc",
    `--secret=${APP_SECRET}`,
    `--pusher_app_id=${APP_ID}`,
    `--pusher_app_key=${APP_KEY}`,
    `--pusher_api_port=${freePort()}`,
  ], "info");
  try {
    const apiPort = on.app.pusherApiPort!;
    assert.notEqual(apiPort, on.app.port);
    const res = await sdk(apiPort).trigger("x", "y", {});
    assert.equal(res.status, 200);
    await res.text();
    // The API is not on the main port then.
    await assert.rejects(sdk(on.app.port).trigger("x", "y", {}), (e: Frame) => e.status === 404);
    const line = on.logs.find((l) => l.msg === "Pusher is on")!;
    assert.equal(line.ws, `ws://127.0.0.1:${on.app.port}/app/${APP_KEY}`);
    assert.equal(line.api, `http://127.0.0.1:${apiPort}/apps/${APP_ID}/`);
  } finally {
    await on.stop();
  }
});

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("pusher: presence of a live socket outlasts --presence_ttl (kept alive by the node)", async () => {
  const server = await startServer(
    ["--norpc", "--broker=memory", "--presence_ttl=2", ...PUSHER_FLAGS],
    "info",
  );
  const c = pusherClient(server.app.port, { user: { user_id: "7", user_info: {} } });
  try {
    await connected(c);
    assert.ok((await subscribeTo(c, "presence-long")).ok);
    const users = async () =>
      (await (await sdk(server.app.port).get({ path: "/channels/presence-long/users" })).json())
        .users;
    assert.deepEqual(await users(), [{ id: "7" }]);
    // More than twice the TTL: an entry nobody refreshes is dropped within about one TTL.
    await new Promise((r) => setTimeout(r, 4500));
    assert.deepEqual(await users(), [{ id: "7" }]);
  } finally {
    c.disconnect();
    await server.stop();
  }
});
