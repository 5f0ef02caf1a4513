/**
 * Randomized delivery trials on one machine: the memory broker, the Deno KV broker, and two
 * server processes sharing one KV file. 0 missing, 0 duplicated, 0 reordered.
 */
import assert from "node:assert/strict";
import { httpPublish, startNodes, stopNodes } from "./support/cluster.ts";
import { CutProxy } from "./support/cut_proxy.ts";
import { runTrial, type TrialResult } from "./support/delivery_trial.ts";
import { startServer } from "./support/server.ts";

/** Enough for the trials' rate and reconnect times: history never runs out. */
const HISTORY = ["--history_limit=5000", "--history_ttl=600"];
const SIZE = { clients: 50, messages: 2000, rate: 250, cuts: 105, batch: 5 };

const batch = (data: string[]) => data.map((d) => ({ stream: "trial", data: d }));

/**
 * A directory for the KV file: on tmpfs when the machine has one, since every publication is
 * a KV commit and a disk sync per commit would make the trial measure the disk instead.
 */
async function kvDir(): Promise<string> {
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory).catch(() => false);
  return await Deno.makeTempDir({ prefix: "cableway_trial_", dir: shm ? "/dev/shm" : undefined });
}

function assertClean(r: TrialResult): void {
  assert.ok(r.clients >= 50 && r.cuts >= 100 && r.messages >= 2000, JSON.stringify(r));
  assert.deepEqual(
    { missing: r.missing, duplicated: r.duplicated, reordered: r.reordered },
    { missing: 0, duplicated: 0, reordered: 0 },
    r.detail,
  );
}

for (const broker of ["memory", "kv"]) {
  Deno.test(`randomized cuts, ${broker} broker: every client gets every message once, in order`, async () => {
    const dir = await kvDir();
    const flags = ["--norpc", "--public", `--broker=${broker}`, ...HISTORY];
    if (broker === "kv") flags.push(`--kv_path=${dir}/kv.sqlite`);
    const server = await startServer(flags, "warn");
    const proxy = new CutProxy(server.app.port);
    try {
      const result = await runTrial({
        name: `${broker} broker`,
        ...SIZE,
        proxies: [proxy],
        publish: async (_first, data) => (await server.broadcast(batch(data))).status === 201,
      });
      assertClean(result);
    } finally {
      proxy.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("randomized cuts, two processes on one Deno KV file: once, in order", async () => {
  const dir = await kvDir();
  const nodes = await startNodes(2, [
    "--broker=kv",
    "--pubsub=kv",
    `--kv_path=${dir}/kv.sqlite`,
    ...HISTORY,
  ]);
  const proxies = nodes.map((n) => new CutProxy(n.port));
  try {
    const result = await runTrial({
      name: "kv broker, two processes",
      ...SIZE,
      proxies,
      // Alternate the publishing node: the stream's offsets come from both.
      publish: async (first, data) =>
        await httpPublish(nodes[first % 2].port, JSON.stringify(batch(data))) === 201,
    });
    assertClean(result);
  } finally {
    for (const p of proxies) p.close();
    await stopNodes(nodes);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
