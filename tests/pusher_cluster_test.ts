/**
 * Pusher mode on two nodes sharing a real Redis, then a real NATS with JetStream (broker +
 * pub/sub): pusher-js clients spread
 * over the nodes, the Pusher SDK talking to one of them. Events, client events and presence
 * cross nodes because they are ordinary stream publications and broker presence.
 */
import assert from "node:assert/strict";
import {
  connected,
  PUSHER_FLAGS,
  type PusherClient,
  pusherClient,
  sdk,
  subscribeTo,
  waitEvent,
} from "./support/pusher.ts";
import { startServer, type TestServer } from "./support/server.ts";
import { hasNats, hasRedis, startNats, startRedis } from "./support/services.ts";
import { waitUntil } from "./support/wait.ts";

const REDIS = hasRedis();
const NATS = hasNats();

Deno.test({
  name: "pusher cluster: two nodes over Redis share events, client events and presence",
  ignore: !REDIS,
  async fn() {
    const redis = await startRedis();
    try {
      await twoNodes(["--broker=redis", `--redis_url=${redis.url}`]);
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name: "pusher cluster: two nodes over NATS (JetStream broker) share events and presence",
  ignore: !NATS,
  async fn() {
    const nats = await startNats({ jetstream: true });
    try {
      await twoNodes(["--broker=nats", `--nats_servers=${nats.url}`]);
    } finally {
      await nats.stop();
    }
  },
});

async function twoNodes(flags: string[]): Promise<void> {
  const nodes: TestServer[] = [];
  const clients: PusherClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      nodes.push(await startServer(["--norpc", ...flags, ...PUSHER_FLAGS], "info"));
    }
    const [a, b] = nodes.map((n) => n.app.port);
    const client = (
      port: number,
      user?: { user_id: string; user_info?: Record<string, unknown> },
    ) => {
      const c = pusherClient(port, { user });
      clients.push(c);
      return c;
    };

    // An SDK event on node A reaches a subscriber on node B.
    const onB = client(b);
    await connected(onB);
    const news = await subscribeTo(onB, "news");
    assert.ok(news.ok);
    const api = sdk(a);
    // The new subscriber's Redis subscription may lag: retry until one event lands.
    for (let i = 0; i < 50 && !news.events.items.some((e) => e.event === "probe"); i++) {
      await (await api.trigger("news", "probe", {})).text();
      await news.events.waitFor((e) => e.some((x) => x.event === "probe"), 200).catch(() => {});
    }
    await (await api.trigger("news", "headline", { n: 1 })).text();
    assert.deepEqual(await waitEvent(news.events, "headline"), { n: 1 });

    // Presence: Bob on B, Alice on A and on B; Bob sees one member_added for Alice.
    const bob = client(b, { user_id: "bob", user_info: { name: "Bob" } });
    const bobRoom = await subscribeTo(bob, "presence-room");
    assert.ok(bobRoom.ok);
    const aliceA = client(a, { user_id: "alice", user_info: { name: "Alice" } });
    // Wait until node A delivers presence-room publications to B (first subscriber on A).
    const aliceRoomA = await subscribeTo(aliceA, "presence-room");
    assert.ok(aliceRoomA.ok);
    await waitEvent(
      bobRoom.events,
      "pusher:member_added",
      (d) => (d as { id: string }).id === "alice",
    );
    const aliceB = client(b, { user_id: "alice", user_info: { name: "Alice" } });
    const aliceRoomB = await subscribeTo(aliceB, "presence-room");
    const members = aliceRoomB.channel.members;
    const ids: string[] = [];
    members.each((m: { id: string }) => ids.push(m.id));
    assert.equal(members.count, 2);
    assert.deepEqual(ids.sort(), ["alice", "bob"]);
    // The HTTP API on A sees both users (the broker's presence).
    const users = await (await api.get({ path: "/channels/presence-room/users" })).json();
    assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ["alice", "bob"]);

    // A client event from Alice on A reaches Bob on B.
    aliceRoomA.channel.trigger("client-typing", { on: true });
    assert.deepEqual(await waitEvent(bobRoom.events, "client-typing"), { on: true });

    // Alice leaves from A: still present through B. Then from B: Bob sees her leave, once.
    aliceA.disconnect();
    await (await api.trigger("presence-room", "mark", {})).text();
    await waitEvent(bobRoom.events, "mark");
    aliceB.disconnect();
    await waitEvent(bobRoom.events, "pusher:member_removed");
    await (await api.trigger("presence-room", "mark2", {})).text();
    await waitEvent(bobRoom.events, "mark2");
    const count = (name: string) => bobRoom.events.items.filter((i) => i.event === name).length;
    assert.equal(count("pusher:member_added"), 1);
    assert.equal(count("pusher:member_removed"), 1);

    // terminate_connections on A closes the user's socket on B (a remote command).
    const zed = pusherClient(b, { signinUser: { id: "zed" } });
    clients.push(zed);
    await connected(zed);
    zed.signin();
    await waitUntil(
      () => zed.user.serverToUserChannel?.subscribed === true,
      "zed signed in",
      10_000,
    );
    await (await api.terminateUserConnections("zed")).text();
    await waitUntil(() => zed.connection.state === "disconnected", "zed disconnected", 10_000);
    assert.equal(onB.connection.state, "connected");
  } finally {
    for (const c of clients) c.disconnect();
    for (const n of nodes) await n.stop();
  }
}
