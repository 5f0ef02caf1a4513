import assert from "node:assert/strict";
import { MemoryBroker } from "../src/broker/memory_broker.ts";
import { brokerSuite } from "./broker_suite.ts";

brokerSuite("memory broker", (opts) => Promise.resolve({ broker: new MemoryBroker(opts) }));

Deno.test("memory broker: epoch is random per instance unless given", async () => {
  const opts = { historyLimit: 10, historyTtl: 10, sessionsTtl: 10, presenceTtl: 10 };
  const epochs = new Set<string>();
  for (let i = 0; i < 5; i++) epochs.add(await new MemoryBroker(opts).epoch());
  assert.ok(epochs.size > 1);
  for (const e of epochs) assert.match(e, /^[A-Za-z0-9_-]{4}$/);
  assert.equal(await new MemoryBroker({ ...opts, epoch: "abcd" }).epoch(), "abcd");
});
