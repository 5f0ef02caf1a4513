/**
 * Randomized delivery trials on shared brokers with two nodes: Redis with random cuts, Redis
 * with a node killed -9 and its clients failing over by sid to the other node, and NATS
 * (JetStream) with random cuts. Every acknowledged publication reaches every client exactly
 * once, in order.
 */
import assert from "node:assert/strict";
import { httpPublish, startNodes, stopNodes } from "./support/cluster.ts";
import { CutProxy } from "./support/cut_proxy.ts";
import { runTrial, type TrialResult } from "./support/delivery_trial.ts";
import { hasNats, hasRedis, startNats, startRedis } from "./support/services.ts";

const HISTORY = ["--history_limit=5000", "--history_ttl=600"];
const SIZE = { clients: 50, messages: 2000, rate: 250, cuts: 105, batch: 5 };

const batch = (data: string[]) => data.map((d) => ({ stream: "trial", data: d }));

function assertClean(r: TrialResult): void {
  assert.ok(r.clients >= 50 && r.cuts >= 100 && r.messages >= 2000, JSON.stringify(r));
  assert.deepEqual(
    { missing: r.missing, duplicated: r.duplicated, reordered: r.reordered },
    { missing: 0, duplicated: 0, reordered: 0 },
    r.detail,
  );
}

const redis = hasRedis();

/** Two nodes on `service` behind cut proxies, publications alternating between them. */
async function twoNodeTrial(
  name: string,
  service: { stop(): Promise<void> },
  brokerFlags: string[],
): Promise<void> {
  const nodes = await startNodes(2, [...brokerFlags, ...HISTORY]);
  const proxies = nodes.map((n) => new CutProxy(n.port));
  try {
    const result = await runTrial({
      name,
      ...SIZE,
      proxies,
      publish: async (first, data) =>
        await httpPublish(nodes[first % 2].port, JSON.stringify(batch(data))) === 201,
    });
    assertClean(result);
  } finally {
    for (const p of proxies) p.close();
    await stopNodes(nodes);
    await service.stop();
  }
}

Deno.test({
  name: "randomized cuts, Redis broker with two nodes: once, in order",
  ignore: !redis,
  async fn() {
    const service = await startRedis();
    await twoNodeTrial("redis broker, two nodes", service, [
      "--broker=redis",
      `--redis_url=${service.url}`,
    ]);
  },
});

Deno.test({
  name: "a node killed -9: its clients fail over by sid to the other node, once, in order",
  ignore: !redis,
  async fn() {
    const service = await startRedis();
    const nodes = await startNodes(2, [
      "--broker=redis",
      `--redis_url=${service.url}`,
      ...HISTORY,
    ]);
    const proxies = nodes.map((n) => new CutProxy(n.port));
    let killed = false;
    try {
      const result = await runTrial({
        name: "redis broker, node killed -9",
        ...SIZE,
        proxies,
        before: async (seq) => {
          if (seq !== SIZE.messages / 2 + 1) return;
          // The load balancer sends the dead node's clients to the other one.
          proxies[0].retarget(nodes[1].port);
          nodes[0].child.kill("SIGKILL");
          await nodes[0].exited;
          killed = true;
        },
        publish: async (first, data) => {
          const node = killed ? nodes[1] : nodes[first % 2];
          return await httpPublish(node.port, JSON.stringify(batch(data))) === 201;
        },
      });
      const restored = nodes[1].lines.filter((l) => l.msg === "session restored").length;
      console.log(`sessions restored on the surviving node: ${restored}`);
      assert.ok(killed);
      assertClean(result);
    } finally {
      for (const p of proxies) p.close();
      await stopNodes(nodes);
      await service.stop();
    }
  },
});

Deno.test({
  name: "randomized cuts, NATS broker (JetStream) with two nodes: once, in order",
  ignore: !hasNats(),
  async fn() {
    const service = await startNats({ jetstream: true });
    await twoNodeTrial("nats broker, two nodes", service, [
      "--broker=nats",
      `--nats_servers=${service.url}`,
    ]);
  },
});
