/** The KV bus under the two faults its reader must absorb: stale heads and repeated appends. */
import assert from "node:assert/strict";
import { RetryingKv } from "../src/broker/kv_retry.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { type BusEntry, entryKey, seqKey } from "../src/pubsub/kv_bus.ts";
import { KvBusReader } from "../src/pubsub/kv_bus_reader.ts";
import { KvBusWriter } from "../src/pubsub/kv_bus_writer.ts";

const PREFIX = ["bus-test"];

async function setup() {
  const kv = new RetryingKv(await Deno.openKv(":memory:"));
  const got: string[] = [];
  const reader = new KvBusReader({
    kv,
    prefix: PREFIX,
    shards: [0],
    pollInterval: 20,
    logger: silentLogger,
    wanted: () => true,
    accept: () => true,
    handle: (_shard, text) => got.push(text),
  });
  await reader.start();
  const writer = new KvBusWriter({ kv, prefix: PREFIX, node: "w1", ttlMs: 60_000 });
  return { kv, reader, writer, got };
}

Deno.test("kv bus: an append committed twice (a retried commit) is handed over once", async () => {
  const { kv, reader, writer, got } = await setup();
  try {
    await writer.append(0, "a");
    // What a commit that succeeded but reported an error, then was retried, leaves behind:
    // the same writer and counter under the next sequence.
    const dup: BusEntry = { node: "w1", n: 1, text: "a" };
    await kv.kv.atomic().set(seqKey(PREFIX, 0), 2).set(entryKey(PREFIX, 0, 2), dup).commit();
    await writer.append(0, "b");
    await reader.sync();
    assert.deepEqual(got, ["a", "b"]);
  } finally {
    await reader.close();
    kv.kv.close();
  }
});

Deno.test("kv bus: many appends and signals deliver every entry once, in order", async () => {
  const { kv, reader, writer, got } = await setup();
  try {
    const sent = Array.from({ length: 300 }, (_, i) => `m${i}`);
    // Appends race the 20 ms poll and the watch: stale heads must not rewind the reader.
    for (const m of sent) {
      await writer.append(0, m);
      if (Number(m.slice(1)) % 25 === 0) await new Promise((r) => setTimeout(r, 25));
    }
    await reader.sync();
    assert.deepEqual(got, sent);
  } finally {
    await reader.close();
    kv.kv.close();
  }
});
