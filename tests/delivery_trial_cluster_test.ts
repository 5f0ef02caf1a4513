/**
 * Randomized delivery trials on shared brokers with two nodes: Redis with random cuts, Redis
 * with a node killed -9 and its clients failing over by sid to the other node, and NATS
 * (JetStream) with random cuts. Every acknowledged publication reaches every client exactly
 * once, in order.
 */
import assert from "node:assert/strict";
import { httpPublish, startNodes, stopNodes } from "./support/cluster.ts";
import { CutProxy } from "./support/cut_proxy.ts";
import { runTrial } from "./support/delivery_trial.ts";
import { assertClean, batch, HISTORY, SIZE, twoNodeTrial } from "./support/trial_runs.ts";
import { hasNats, hasRedis, startNats, startRedis } from "./support/services.ts";

const redis = hasRedis();

Deno.test({
  name: "randomized cuts, Redis broker with two nodes: once, in order",
  ignore: !redis,
  async fn() {
    const service = await startRedis();
    await twoNodeTrial("redis broker, two nodes", [
      "--broker=redis",
      `--redis_url=${service.url}`,
    ], () => service.stop());
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
    await twoNodeTrial("nats broker, two nodes", [
      "--broker=nats",
      `--nats_servers=${service.url}`,
    ], () => service.stop());
  },
});
