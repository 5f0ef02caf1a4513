/**
 * Three Cableway processes sharing a real Redis (then a real NATS with JetStream), clients
 * spread over them (docs/cluster.md):
 * - every subscriber gets every publication exactly once, whichever node or adapter it came
 *   through; broker-registered ones carry the same epoch and consecutive offsets on every node;
 * - a session restores on a different node and catches up from the shared history;
 * - presence is shared: a join on one node is seen on the others, and a user with sessions on
 *   two nodes counts once.
 */
import assert from "node:assert/strict";
import { silentLogger } from "../src/logger/logger.ts";
import { NatsLink } from "../src/util/nats_connection.ts";
import { RedisConnection } from "../src/util/redis_connection.ts";
import {
  CHAT,
  EXT,
  type Frame,
  httpPublish,
  startNodes,
  stopNodes,
  subscribe,
} from "./support/cluster.ts";
import type { ServerProcess } from "./support/process.ts";
import { hasNats, hasRedis, startNats, startRedis } from "./support/services.ts";
import { WsClient } from "./support/ws_client.ts";

const REDIS = hasRedis();
const NATS = hasNats();

// ---------------------------------------------------------------------------------------------
// Nodes and clients

/** The "Cableway is listening" line (names the broker and the pub/sub in use). */
function listening(node: ServerProcess): Frame {
  return node.lines.find((l) => l.msg === "Cableway is listening")!;
}

async function connect(port: number, query = ""): Promise<{ client: WsClient; welcome: Frame }> {
  const client = new WsClient(`ws://127.0.0.1:${port}/cable${query}`, EXT);
  const welcome = await client.waitFor((f) => f.type === "welcome");
  return { client, welcome };
}

/** Waits (bounded) until `cond` holds for the client's frames. */
async function until(
  client: WsClient,
  cond: (frames: Frame[]) => boolean,
  timeoutMs = 5000,
): Promise<void> {
  // waitFor re-evaluates on every new frame; the welcome frame is always there to test against.
  await client.waitFor(() => cond(client.frames), timeoutMs);
}

/** Sends a command and returns the first frame after it that matches `pred`. */
async function request(client: WsClient, cmd: Frame, pred: (f: Frame) => boolean): Promise<Frame> {
  const from = client.frames.length;
  client.send(cmd);
  await until(client, (frames) => frames.slice(from).some(pred));
  return client.frames.slice(from).find(pred)!;
}

/** Data frames of a subscription (no `type`), in arrival order. */
function data(client: WsClient, identifier = CHAT): Frame[] {
  return client.frames.filter((f) =>
    f.identifier === identifier && f.type === undefined && "message" in f
  );
}

function idOf(f: Frame): string {
  return String((f.message as { id?: unknown }).id);
}

function ids(client: WsClient): string[] {
  return data(client).map(idOf);
}

// ---------------------------------------------------------------------------------------------
// Publishing

function publication(id: string, meta?: Record<string, unknown>): string {
  return JSON.stringify({
    stream: "chat",
    data: JSON.stringify({ id }),
    ...(meta ? { meta } : {}),
  });
}

/**
 * A node subscribes to a stream's pub/sub channel asynchronously after the confirm; transient
 * probes go out until every client has heard one, so later publications cannot race that.
 */
async function warmUp(port: number, clients: WsClient[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  const warm = (c: WsClient) => ids(c).some((id) => id.startsWith("warm-"));
  for (let i = 0; !clients.every(warm); i++) {
    if (Date.now() > deadline) throw new Error("subscriptions did not reach the pub/sub");
    assert.equal(await httpPublish(port, publication(`warm-${i}`, { transient: true })), 201);
    await Promise.allSettled(clients.map((c) => until(c, () => warm(c), 300)));
  }
}

interface Paths {
  /** Fan-out intake (legacy Redis PUBLISH, NATS publish): every node, no broker. */
  fanout(body: string): Promise<void>;
  /** Single-consumer intake besides HTTP (redisx XADD): one node, through the broker. */
  queued?(body: string): Promise<void>;
}

const isRegistered = (id: string) => id.startsWith("http-") || id.startsWith("queued-");

/**
 * Publishes through HTTP on every node and through the other adapters; checks exactly-once
 * delivery everywhere and one shared numbering of the registered messages. Returns the epoch.
 */
async function checkDelivery(
  nodes: ServerProcess[],
  clients: WsClient[],
  paths: Paths,
): Promise<string> {
  const sent: string[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [i, node] of nodes.entries()) {
      const id = `http-${round}-node${i}`;
      assert.equal(await httpPublish(node.port, publication(id)), 201);
      sent.push(id);
    }
    await paths.fanout(publication(`fanout-${round}`));
    sent.push(`fanout-${round}`);
    if (paths.queued) {
      await paths.queued(publication(`queued-${round}`));
      sent.push(`queued-${round}`);
    }
  }
  const got = (c: WsClient, wanted: string[]) => {
    const have = new Set(ids(c));
    return wanted.every((id) => have.has(id));
  };
  await Promise.all(clients.map((c) => until(c, () => got(c, sent))));
  // Fences through every path: a duplicate still in flight would most likely arrive first.
  const fences = ["http-fence", "fanout-fence"];
  assert.equal(await httpPublish(nodes[1].port, publication("http-fence")), 201);
  await paths.fanout(publication("fanout-fence"));
  if (paths.queued) {
    await paths.queued(publication("queued-fence"));
    fences.push("queued-fence");
  }
  await Promise.all(clients.map((c) => until(c, () => got(c, fences))));

  const expected = [...sent, ...fences].sort();
  const registered = expected.filter(isRegistered);
  const epochs = new Set<unknown>();
  let reference: Map<string, number> | undefined;
  for (const c of clients) {
    const frames = data(c).filter((f) => !idOf(f).startsWith("warm-"));
    assert.deepEqual(frames.map(idOf).sort(), expected, "each message exactly once");
    const offsets = new Map<string, number>();
    for (const f of frames) {
      if (isRegistered(idOf(f))) {
        assert.equal(f.stream_id, "chat");
        assert.equal(typeof f.offset, "number");
        epochs.add(f.epoch);
        offsets.set(idOf(f), f.offset as number);
      } else {
        assert.equal(f.offset, undefined, `fan-out ${idOf(f)} bypasses the broker`);
        assert.equal(f.epoch, undefined);
      }
    }
    const sorted = [...offsets.values()].sort((a, b) => a - b);
    assert.equal(sorted.length, registered.length);
    sorted.forEach((o, i) => assert.equal(o, sorted[0] + i, "consecutive offsets"));
    if (reference) assert.deepEqual(offsets, reference, "same offsets on every node");
    reference = offsets;
  }
  assert.equal(epochs.size, 1, "one epoch across the cluster");
  const [epoch] = epochs;
  assert.equal(typeof epoch, "string");
  return epoch as string;
}

/**
 * clients[0] (node 0) leaves; messages go out via node 2; it comes back on node 1 with its
 * old sid and catches up from history with the same epoch and offsets.
 */
async function checkRestoreElsewhere(
  nodes: ServerProcess[],
  clients: WsClient[],
  sid: string,
  epoch: string,
): Promise<WsClient> {
  const leaving = clients[0];
  const observer = clients[3]; // node 1
  const lastSeen = Math.max(...data(leaving).map((f) => (f.offset as number | undefined) ?? 0));
  await leaving.close();

  const missed = ["http-missed-1", "http-missed-2", "http-missed-3"];
  for (const id of missed) assert.equal(await httpPublish(nodes[2].port, publication(id)), 201);
  await until(observer, () => missed.every((id) => ids(observer).includes(id)));
  const offsetOf = (c: WsClient, id: string) => data(c).find((f) => idOf(f) === id)?.offset;
  assert.deepEqual(missed.map((id) => offsetOf(observer, id)), [1, 2, 3].map((k) => lastSeen + k));

  const { client: back, welcome } = await connect(nodes[1].port, `?sid=${sid}`);
  assert.equal(welcome.restored, true);
  assert.deepEqual(welcome.restored_ids, [CHAT]);
  assert.notEqual(welcome.sid, sid);
  await request(
    back,
    {
      command: "history",
      identifier: CHAT,
      history: { streams: { chat: { epoch, offset: lastSeen } } },
    },
    (f) => f.type === "confirm_history" || f.type === "reject_history",
  );
  assert.ok(back.frames.some((f) => f.type === "confirm_history"));
  assert.deepEqual(
    data(back).map((f) => [idOf(f), f.epoch, f.offset]),
    missed.map((id, k) => [id, epoch, lastSeen + k + 1]),
  );
  // The restored subscription is live on its new node.
  assert.equal(await httpPublish(nodes[0].port, publication("http-live-after-restore")), 201);
  await until(back, () => ids(back).includes("http-live-after-restore"));
  assert.equal(offsetOf(back, "http-live-after-restore"), lastSeen + 4);
  return back;
}

function presenceEvents(c: WsClient, type: "join" | "leave", id: string): Frame[] {
  return c.frames.filter((f) => {
    const m = f.message as { type?: string; id?: string } | undefined;
    return f.type === "presence" && f.identifier === CHAT && m?.type === type && m.id === id;
  });
}

async function presenceInfo(c: WsClient): Promise<{ total: number; ids: string[] }> {
  const reply = await request(
    c,
    { command: "presence", identifier: CHAT, data: { return_records: true } },
    (f) =>
      f.type === "presence" && (f.message as { type?: string }).type !== "join" &&
      (f.message as { type?: string }).type !== "leave",
  );
  const m = reply.message as { type: string; total: number; records?: { id: string }[] };
  assert.equal(m.type, "info");
  return { total: m.total, ids: (m.records ?? []).map((r) => r.id).sort() };
}

/** alice on nodes 0 and 2, bob on node 2, an observer on node 1. */
async function checkPresence(clients: WsClient[]): Promise<void> {
  const [alice1, observer, alice2, bob] = [clients[1], clients[3], clients[4], clients[5]];
  const join = (c: WsClient, id: string) =>
    c.send({ command: "join", identifier: CHAT, presence: { id, info: { name: id } } });

  join(alice1, "alice");
  const joined = await observer.waitFor((f) =>
    presenceEvents(observer, "join", "alice").includes(f)
  );
  assert.deepEqual(joined.message, { type: "join", id: "alice", info: { name: "alice" } });
  join(alice2, "alice"); // a second session of the same user, on another node
  assert.equal((await presenceInfo(alice2)).total, 1, "alice counts once"); // also a barrier
  join(bob, "bob");
  await observer.waitFor((f) => presenceEvents(observer, "join", "bob").includes(f));
  assert.deepEqual(await presenceInfo(observer), { total: 2, ids: ["alice", "bob"] });
  assert.equal(presenceEvents(observer, "join", "alice").length, 1, "one join for alice");

  alice1.send({ command: "leave", identifier: CHAT });
  assert.equal((await presenceInfo(alice1)).total, 2, "alice still present on node 2");
  alice2.send({ command: "leave", identifier: CHAT });
  await observer.waitFor((f) => presenceEvents(observer, "leave", "alice").includes(f));
  assert.deepEqual(await presenceInfo(bob), { total: 1, ids: ["bob"] });
  assert.equal(presenceEvents(observer, "leave", "alice").length, 1, "one leave for alice");
}

/** Everything above on a started cluster; two clients per node. */
async function runScenario(nodes: ServerProcess[], paths: Paths): Promise<void> {
  const clients: WsClient[] = [];
  try {
    const sessions = await Promise.all(
      nodes.flatMap((n) => [connect(n.port), connect(n.port)]),
    );
    clients.push(...sessions.map((s) => s.client));
    await Promise.all(clients.map((c) => subscribe(c)));
    // Commands run in order per connection: this reply means the subscription was cached.
    await presenceInfo(clients[0]);
    await warmUp(nodes[0].port, clients);
    const epoch = await checkDelivery(nodes, clients, paths);
    clients.push(
      await checkRestoreElsewhere(nodes, clients, sessions[0].welcome.sid as string, epoch),
    );
    await checkPresence(clients);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

// ---------------------------------------------------------------------------------------------

Deno.test({
  name: "redis cluster: 3 nodes, http/redis/redisx intake, shared history, restore, presence",
  ignore: !REDIS,
  async fn() {
    const redis = await startRedis();
    let nodes: ServerProcess[] = [];
    let client: RedisConnection | undefined;
    try {
      // The broker preset with Redis given: redis broker + redis pub/sub; the legacy fan-out
      // adapter is added on top of the preset's http,redisx.
      nodes = await startNodes(3, [
        "--presets=broker",
        `--redis_url=${redis.url}`,
        "--broadcast_adapter=http,redis,redisx",
      ]);
      for (const node of nodes) {
        assert.equal(listening(node).broker, "redis");
        assert.equal(listening(node).pubsub, "redis");
      }
      const c = client = await RedisConnection.open({ url: redis.url, logger: silentLogger });
      await runScenario(nodes, {
        fanout: async (body) => {
          assert.equal(await c.command(["PUBLISH", "__anycable__", body]), 3, "3 nodes listen");
        },
        queued: async (body) => {
          await c.command(["XADD", "__anycable__", "*", "payload", body]);
        },
      });
    } finally {
      await client?.close();
      await stopNodes(nodes);
      await redis.stop();
    }
  },
});

Deno.test({
  name: "nats cluster: 3 nodes, http/nats intake, shared history (JetStream), restore, presence",
  ignore: !NATS,
  async fn() {
    const nats = await startNats({ jetstream: true });
    let nodes: ServerProcess[] = [];
    let link: NatsLink | undefined;
    try {
      // The broker preset with NATS given: nats broker, nats pub/sub, http,nats.
      nodes = await startNodes(3, ["--presets=broker", `--nats_servers=${nats.url}`]);
      for (const node of nodes) {
        assert.equal(listening(node).broker, "nats");
        assert.equal(listening(node).pubsub, "nats");
      }
      const l = link = await NatsLink.open({ servers: nats.url, logger: silentLogger });
      const encoder = new TextEncoder();
      await runScenario(nodes, {
        fanout: async (body) => {
          l.nc.publish("__anycable__", encoder.encode(body));
          await l.nc.flush();
        },
      });
    } finally {
      await link?.close();
      await stopNodes(nodes);
      await nats.stop();
    }
  },
});
