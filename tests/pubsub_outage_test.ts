/**
 * Publications acknowledged during broker / pub/sub outages (docs/cluster.md, "What is
 * guaranteed in each outage"): two nodes with `--presets=broker`, ext-protocol clients on
 * both, one HTTP publication every ~20 ms alternating between the nodes, while the service
 * fails under them. Every publication answered 201 must reach every client exactly once and
 * in order; the counts are printed.
 */
import assert from "node:assert/strict";
import { silentLogger } from "../src/logger/logger.ts";
import { RedisConnection } from "../src/util/redis_connection.ts";
import { CHAT, EXT, httpPublish, startNodes, stopNodes, subscribe } from "./support/cluster.ts";
import type { ServerProcess } from "./support/process.ts";
import {
  hasNats,
  hasRedis,
  type ServiceHandle,
  startNats,
  startRedis,
} from "./support/services.ts";
import { BlackholeProxy } from "./support/blackhole_proxy.ts";
import { WsClient } from "./support/ws_client.ts";

const REDIS = hasRedis();
const NATS = hasNats();
const PUBLISH_EVERY_MS = 20;
const CLIENTS_PER_NODE = 2;

interface Ledger {
  /** ids answered 201, in publication order (publishing is sequential). */
  acked: number[];
  /** ids answered something else. */
  refused: number[];
  statuses: Map<number, number>;
  /** The slowest publication request, ms. */
  slowestMs: number;
  /** When each 201 arrived (Date.now()). */
  ackedAt: Map<number, number>;
  /** When the service was being killed (kill sent, process gone), in an outage phase. */
  killWindow?: [number, number];
}

type Publish = (id: number, body: string) => Promise<number>;

/** HTTP to alternating nodes; the status. */
const viaHttp = (ports: number[]): Publish => (id, body) =>
  httpPublish(ports[id % ports.length], body);

/** Publishes `{id}` every ~20 ms until `stop` resolves; `ports` or a publish function. */
async function publishUntil(
  to: number[] | Publish,
  stop: Promise<unknown>,
  ledger: Ledger,
  firstId: number,
): Promise<number> {
  const publish = Array.isArray(to) ? viaHttp(to) : to;
  let stopped = false;
  stop.then(() => stopped = true);
  let id = firstId;
  while (!stopped) {
    const started = Date.now();
    const body = JSON.stringify({ stream: "chat", data: JSON.stringify({ id }) });
    const status = await publish(id, body).catch(() => 0);
    ledger.slowestMs = Math.max(ledger.slowestMs, Date.now() - started);
    ledger.statuses.set(status, (ledger.statuses.get(status) ?? 0) + 1);
    (status === 201 ? ledger.acked : ledger.refused).push(id);
    if (status === 201) ledger.ackedAt.set(id, Date.now());
    id++;
    const wait = PUBLISH_EVERY_MS - (Date.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return id;
}

/** Offsets of the client's data frames go up within an epoch; returns the backward steps. */
function offsetRegressions(client: WsClient): number {
  let epoch: unknown;
  let last = 0;
  let back = 0;
  for (const f of client.frames) {
    if (f.identifier !== CHAT || f.type !== undefined || typeof f.offset !== "number") continue;
    if (f.epoch !== epoch) {
      epoch = f.epoch;
      last = f.offset;
      continue;
    }
    if (f.offset <= last) back++;
    last = Math.max(last, f.offset);
  }
  return back;
}

/** Kills one node's SUBSCRIBE connection `n` times (alternating), 250 ms apart. */
async function cutSubscribers(admin: RedisConnection, n: number): Promise<number> {
  let killed = 0;
  for (let i = 0; i < n; i++) {
    const list = String(await admin.command(["CLIENT", "LIST", "TYPE", "pubsub"]));
    const subIds = [...list.matchAll(/\bid=(\d+)/g)].map((m) => m[1]).sort();
    if (subIds.length > 0) {
      killed += Number(await admin.command(["CLIENT", "KILL", "ID", subIds[i % subIds.length]]));
    }
    await delay(250);
  }
  return killed;
}

function ids(client: WsClient): number[] {
  const out: number[] = [];
  for (const f of client.frames) {
    if (f.identifier !== CHAT || f.type !== undefined) continue;
    const id = (f.message as { id?: unknown } | undefined)?.id;
    if (typeof id === "number") out.push(id);
  }
  return out;
}

interface Counts {
  delivered: number;
  missing: number;
  duplicated: number;
  reordered: number;
  /** Delivered although the publisher was told it failed (stored, then refused). */
  unacked: number;
}

function count(received: number[], ledger: Ledger): Counts {
  const acked = new Set(ledger.acked);
  const mine = new Set([...ledger.acked, ...ledger.refused]);
  const seen = new Set<number>();
  const c: Counts = { delivered: 0, missing: 0, duplicated: 0, reordered: 0, unacked: 0 };
  let last = -1;
  for (const id of received) {
    if (!mine.has(id)) continue; // another scenario's publication
    if (seen.has(id)) {
      c.duplicated++;
      continue;
    }
    seen.add(id);
    if (!acked.has(id)) {
      c.unacked++;
      continue;
    }
    c.delivered++;
    if (id < last) c.reordered++;
    last = Math.max(last, id);
  }
  for (const id of ledger.acked) if (!seen.has(id)) c.missing++;
  return c;
}

async function connectClients(ports: number[]): Promise<WsClient[]> {
  const clients: WsClient[] = [];
  for (const port of ports) {
    for (let i = 0; i < CLIENTS_PER_NODE; i++) {
      const c = new WsClient(`ws://127.0.0.1:${port}/cable`, EXT);
      clients.push(c);
      await c.waitFor((f) => f.type === "welcome");
      await subscribe(c);
    }
  }
  return clients;
}

/** Waits (bounded) until every client got every acknowledged id. */
async function waitForAll(clients: WsClient[], ledger: Ledger): Promise<void> {
  const want = ledger.acked;
  await Promise.allSettled(clients.map((c) =>
    c.waitFor(() => {
      const got = new Set(ids(c));
      return want.every((id) => got.has(id));
    }, 15_000)
  ));
}

function report(label: string, clients: WsClient[], ledger: Ledger, extra: string): Counts {
  const per = clients.map((c) => count(ids(c), ledger));
  const sum = per.reduce((a, c) => ({
    delivered: a.delivered + c.delivered,
    missing: a.missing + c.missing,
    duplicated: a.duplicated + c.duplicated,
    reordered: a.reordered + c.reordered,
    unacked: a.unacked + c.unacked,
  }));
  console.log(
    `[${label}] published ${ledger.acked.length + ledger.refused.length}, ` +
      `acked(201) ${ledger.acked.length}, refused ${ledger.refused.length} ` +
      `(${[...ledger.statuses].map(([s, n]) => `${s}:${n}`).join(" ")}); ` +
      `${clients.length} clients: delivered ${sum.delivered}/${
        ledger.acked.length * clients.length
      }, missing ${sum.missing}, duplicated ${sum.duplicated}, reordered ${sum.reordered}, ` +
      `delivered-but-refused ${sum.unacked}; slowest request ${ledger.slowestMs} ms; ${extra}`,
  );
  return sum;
}

/** Where each node's log stands, so a phase reports only its own lines. */
const mark = (nodes: ServerProcess[]) => nodes.map((n) => n.lines.length);

function logCount(nodes: ServerProcess[], from: number[], msg: string): number {
  return nodes.reduce(
    (a, n, i) => a + n.lines.slice(from[i]).filter((l) => l.msg === msg).length,
    0,
  );
}

function caughtUp(nodes: ServerProcess[], from: number[]): string {
  return nodes.map((n, i) => {
    const lines = n.lines.slice(from[i]).filter((l) => l.msg === "pub/sub caught up");
    const replayed = lines.reduce((a, l) => a + Number(l.replayed ?? 0), 0);
    return `node${i}: caught up ${lines.length}x, replayed ${replayed}`;
  }).join(", ");
}

function newLedger(): Ledger {
  return { acked: [], refused: [], statuses: new Map(), slowestMs: 0, ackedAt: new Map() };
}

function assertClean(c: Counts, label: string): void {
  assert.equal(c.missing, 0, `${label}: missing`);
  assert.equal(c.duplicated, 0, `${label}: duplicated`);
  assert.equal(c.reordered, 0, `${label}: reordered`);
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long before a non-persistent Redis is killed an acknowledged publication may be lost. */
const AT_RISK_MS = 100;

Deno.test({
  name: "redis: pub/sub links cut, then Redis killed -9 and restarted, while publishing: " +
    "every 201 reaches every client once, in order (but one answered as Redis dies)",
  ignore: !REDIS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis: ServiceHandle = await startRedis();
    let nodes: ServerProcess[] = [];
    let clients: WsClient[] = [];
    let admin: RedisConnection | undefined;
    try {
      nodes = await startNodes(2, [
        "--presets=broker",
        `--redis_url=${redis.url}`,
        "--history_limit=2000",
      ]);
      const ports = nodes.map((n) => n.port);
      clients = await connectClients(ports);
      admin = await RedisConnection.open({ url: redis.url, logger: silentLogger });

      // Phase 1: one node's SUBSCRIBE connection is killed (alternating nodes, ten times;
      // Redis and its data stay): that node refuses while re-subscribing, the other keeps
      // accepting, and the first replays what it missed (same epoch).
      let from = mark(nodes);
      const cuts = newLedger();
      let cutsDone!: () => void;
      const cutting = publishUntil(ports, new Promise<void>((r) => cutsDone = r), cuts, 0);
      await delay(500);
      let killed = await cutSubscribers(admin, 10);
      cutsDone();
      let next = await cutting;
      await waitForAll(clients, cuts);
      const cutCounts = report(
        "redis pub/sub cuts",
        clients,
        cuts,
        `${killed} subscribe connections killed; ${caughtUp(nodes, from)}`,
      );

      // Phase 1b: the same cuts while the application publishes with XADD (redisx, consumed
      // by one node each): an entry a node cannot publish is not acked but retried, so no
      // entry is lost or doubled. Order is not asserted here: two consumers store and publish
      // concurrently, so live messages can arrive out of offset order (ordering them per
      // session is the client edge's job); the counts are printed.
      from = mark(nodes);
      const xadds = newLedger();
      let xaddsDone!: () => void;
      const a = admin;
      const xadding = publishUntil(
        (_id, body) => a.command(["XADD", "__anycable__", "*", "payload", body]).then(() => 201),
        new Promise<void>((r) => xaddsDone = r),
        xadds,
        next + 1000,
      );
      await delay(500);
      killed += await cutSubscribers(admin, 10);
      xaddsDone();
      next = await xadding;
      await waitForAll(clients, xadds);
      const xaddCounts = report(
        "redisx during pub/sub cuts",
        clients,
        xadds,
        `offset regressions ${
          clients.map(offsetRegressions).reduce((x, y) => x + y)
        } (not asserted: two consumers store and publish concurrently); entries retried ${
          logCount(nodes, from, "failed to handle broadcast, will retry")
        }; ${caughtUp(nodes, from)}`,
      );
      await admin.close();
      admin = undefined;

      // Phase 2: Redis killed -9 for ~5 s (no persistence: it comes back empty, new epoch).
      from = mark(nodes);
      const { outage, downMs } = await publishThroughOutage(
        ports,
        clients,
        redis,
        5000,
        next + 1000,
      );
      const outageCounts = report(
        "redis kill -9",
        clients,
        outage,
        `redis down ${downMs} ms; ${caughtUp(nodes, from)}`,
      );

      assertClean(cutCounts, "pub/sub cuts");
      assert.equal(xaddCounts.missing, 0, "redisx: missing");
      assert.equal(xaddCounts.duplicated, 0, "redisx: duplicated");
      // A Redis without persistence that dies right after answering a PUBLISH may take that
      // message with it: not yet read from the subscribers' sockets (the kill resets them),
      // and its history gone with the process (docs/cluster.md, "What is not covered"). Only
      // 201s that arrived within AT_RISK_MS before the kill may be missing; none other may.
      const atRisk = outage.acked.filter((id) => {
        const at = outage.ackedAt.get(id)!;
        return at >= outage.killWindow![0] - AT_RISK_MS && at <= outage.killWindow![1];
      });
      const lost = outage.acked.filter((id) => clients.some((c) => !ids(c).includes(id)));
      console.log(
        `[redis kill -9] ${atRisk.length} publications acknowledged within ${AT_RISK_MS} ms ` +
          `of the kill; missing: ${lost.length ? lost.join(", ") : "none"}`,
      );
      assert.deepEqual(lost.filter((id) => !atRisk.includes(id)), [], "redis restart: missing");
      assert.equal(outageCounts.duplicated, 0, "redis restart: duplicated");
      assert.equal(outageCounts.reordered, 0, "redis restart: reordered");
      assert.ok(killed >= 16, "the subscribe connections were cut");
      assert.ok(cuts.acked.length > 50 && outage.acked.length > 50, "publications went through");
      assert.ok(outage.refused.length > 0, "the outage was noticed (some 501s)");
      assert.ok(
        outage.acked.some((id) => id > outage.refused[0]),
        "publications were accepted again after the restart",
      );
    } finally {
      await admin?.close();
      await Promise.all(clients.map((c) => c.close()));
      await stopNodes(nodes);
      await redis.stop();
    }
  },
});

Deno.test({
  name: "nats: NATS (JetStream on disk) killed -9 and restarted while publishing: " +
    "every 201 reaches every client once, in order",
  ignore: !NATS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats: ServiceHandle = await startNats({ jetstream: true });
    let nodes: ServerProcess[] = [];
    let clients: WsClient[] = [];
    try {
      nodes = await startNodes(2, [
        "--presets=broker",
        `--nats_servers=${nats.url}`,
        "--history_limit=2000",
      ]);
      const ports = nodes.map((n) => n.port);
      clients = await connectClients(ports);

      const from = mark(nodes);
      // Down longer than the broker's 5 s JetStream timeout, so the outage is seen as 501s.
      const { outage, downMs, ackedAtRestart } = await publishThroughOutage(
        ports,
        clients,
        nats,
        6000,
        0,
      );
      const counts = report(
        "nats kill -9",
        clients,
        outage,
        `nats down ${downMs} ms; ${caughtUp(nodes, from)}`,
      );
      assertClean(counts, "nats restart");
      assert.ok(outage.refused.length > 0, "the outage was noticed (some 501s)");
      assert.ok(
        outage.acked.length >= ackedAtRestart + 50,
        "publications were accepted again after the restart",
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await stopNodes(nodes);
      await nats.stop();
    }
  },
});

Deno.test({
  name: "redis: a node killed -9 while publishing to both: the survivor's clients get " +
    "every 201 (from either node) once, in order",
  ignore: !REDIS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis: ServiceHandle = await startRedis();
    let nodes: ServerProcess[] = [];
    let clients: WsClient[] = [];
    try {
      nodes = await startNodes(2, ["--presets=broker", `--redis_url=${redis.url}`]);
      const ports = nodes.map((n) => n.port);
      clients = await connectClients([ports[1]]);
      const ledger = newLedger();
      let done!: () => void;
      const publishing = publishUntil(ports, new Promise<void>((r) => done = r), ledger, 0);
      await delay(1000);
      nodes[0].child.kill("SIGKILL");
      const killedAt = ledger.acked.length + ledger.refused.length;
      await nodes[0].exited;
      const acked = ledger.acked.length;
      const deadline = Date.now() + 10_000;
      while (ledger.acked.length < acked + 25 && Date.now() < deadline) await delay(50);
      done();
      await publishing;
      await waitForAll(clients, ledger);
      const counts = report(
        "node killed -9",
        clients,
        ledger,
        `node0 killed after ${killedAt} publications`,
      );
      assertClean(counts, "node killed");
      assert.ok(ledger.refused.length > 0, "publications to the dead node failed");
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await stopNodes(nodes);
      await redis.stop();
    }
  },
});

/**
 * Publishes to both nodes while `service` is killed -9, kept down for `downForMs` and restarted,
 * until 50 more publications were accepted after the restart (or 15 s); then waits until the
 * clients got every acknowledged one.
 */
async function publishThroughOutage(
  ports: number[],
  clients: WsClient[],
  service: ServiceHandle,
  downForMs: number,
  firstSeq: number,
): Promise<{ outage: Ledger; downMs: number; ackedAtRestart: number }> {
  const outage = newLedger();
  let outageDone!: () => void;
  const publishing = publishUntil(
    ports,
    new Promise<void>((r) => outageDone = r),
    outage,
    firstSeq,
  );
  await delay(1000);
  const killing = Date.now();
  await service.kill();
  const down = Date.now();
  outage.killWindow = [killing, down];
  await delay(downForMs);
  await service.restart();
  const downMs = Date.now() - down;
  const restarted = Date.now();
  const ackedAtRestart = outage.acked.length;
  while (Date.now() - restarted < 15_000 && outage.acked.length < ackedAtRestart + 50) {
    await delay(100);
  }
  outageDone();
  await publishing;
  await waitForAll(clients, outage);
  return { outage, downMs, ackedAtRestart };
}

/**
 * One node's links to the pub/sub service go silently dead (a proxy stops forwarding without a
 * reset) while both nodes publish: that node must notice, reconnect and catch up, and every
 * 201-acknowledged publication reach every client once, in order.
 */
async function silentlyDeadLinks(opts: {
  label: string;
  service: ServiceHandle;
  /** The flag pointing a node at the service on `port`. */
  flag: (port: number, direct: boolean) => string;
  caughtUpWithinMs: number;
  minDead: number;
}): Promise<void> {
  const proxy = new BlackholeProxy(opts.service.port);
  let nodes: ServerProcess[] = [];
  let clients: WsClient[] = [];
  try {
    const args = ["--presets=broker", "--history_limit=2000"];
    nodes = [
      ...await startNodes(1, [...args, opts.flag(opts.service.port, true)]),
      ...await startNodes(1, [...args, opts.flag(proxy.port, false)]),
    ];
    const ports = nodes.map((n) => n.port);
    clients = await connectClients(ports);
    const from = mark(nodes);
    const ledger = newLedger();
    let done!: () => void;
    const publishing = publishUntil(ports, new Promise<void>((r) => done = r), ledger, 0);
    await delay(1000);
    const dead = proxy.blackhole();
    const cutAt = Date.now();
    await nodes[1].waitForLog((l) => l.msg === "pub/sub caught up", opts.caughtUpWithinMs);
    const noticedMs = Date.now() - cutAt;
    const acked = ledger.acked.length;
    const deadline = Date.now() + 10_000;
    while (ledger.acked.length < acked + 25 && Date.now() < deadline) await delay(50);
    done();
    await publishing;
    await waitForAll(clients, ledger);
    const counts = report(
      opts.label,
      clients,
      ledger,
      `${dead} connections of node1 blackholed; node1 back and caught up after ${noticedMs} ms; ${
        caughtUp(nodes, from)
      }`,
    );
    assertClean(counts, opts.label);
    assert.ok(dead >= opts.minDead, "node1's connections went through the proxy");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await stopNodes(nodes);
    proxy.close();
  }
}

Deno.test({
  name: "redis: one node's Redis links go silently dead (no reset) while publishing: it " +
    "notices within seconds, reconnects and catches up; every 201 once, in order",
  ignore: !REDIS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis: ServiceHandle = await startRedis();
    try {
      await silentlyDeadLinks({
        label: "silently dead links",
        service: redis,
        flag: (port, direct) => `--redis_url=${direct ? redis.url : `redis://127.0.0.1:${port}`}`,
        caughtUpWithinMs: 20_000,
        minDead: 3,
      });
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name: "nats: one node's NATS links go silently dead (no reset) while publishing: it " +
    "notices, reconnects and catches up; every 201 once, in order",
  ignore: !NATS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const nats: ServiceHandle = await startNats({ jetstream: true });
    try {
      await silentlyDeadLinks({
        label: "nats silently dead links",
        service: nats,
        flag: (port, direct) => `--nats_servers=${direct ? nats.url : `nats://127.0.0.1:${port}`}`,
        caughtUpWithinMs: 30_000,
        minDead: 2,
      });
    } finally {
      await nats.stop();
    }
  },
});
