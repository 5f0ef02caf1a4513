/**
 * What the randomized delivery trial files share: the trial's size and history, the batch
 * format, the assertion every trial makes, and the two-node trial behind cut proxies.
 */
import assert from "node:assert/strict";
import { httpPublish, startNodes, stopNodes } from "./cluster.ts";
import { CutProxy } from "./cut_proxy.ts";
import { runTrial, type TrialResult } from "./delivery_trial.ts";

/** Enough for the trials' rate and reconnect times: history never runs out. */
export const HISTORY = ["--history_limit=5000", "--history_ttl=600"];
export const SIZE = { clients: 50, messages: 2000, rate: 250, cuts: 105, batch: 5 };

export const batch = (data: string[]) => data.map((d) => ({ stream: "trial", data: d }));

/** The trial ran at full size and every client got every acknowledged message once, in order. */
export function assertClean(r: TrialResult): void {
  assert.ok(r.clients >= 50 && r.cuts >= 100 && r.messages >= 2000, JSON.stringify(r));
  assert.deepEqual(
    { missing: r.missing, duplicated: r.duplicated, reordered: r.reordered },
    { missing: 0, duplicated: 0, reordered: 0 },
    r.detail,
  );
}

/**
 * Two nodes with `brokerFlags` behind cut proxies, publications alternating between them (a
 * stream's offsets come from both); `cleanup` runs after the nodes stopped.
 */
export async function twoNodeTrial(
  name: string,
  brokerFlags: string[],
  cleanup: () => Promise<void>,
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
    await cleanup();
  }
}
