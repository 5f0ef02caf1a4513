/**
 * Child process for the multi-process KV test.
 * Usage: deno run --unstable-kv -A kv_publisher.ts <path> <stream> <count> <label>
 * Opens a KvBroker on <path>, prints {"ready":true,"epoch":...} as one line, waits until its
 * stdin is closed (the start signal), stores <count> messages "<label>-<i>" on <stream> one by
 * one, then prints {"epoch":...,"offsets":[...]} as one line.
 */
import { KvBroker } from "../../src/broker/kv_broker.ts";

const [path, stream, count, label] = Deno.args;
const broker = new KvBroker({
  path,
  historyLimit: 1000,
  historyTtl: 300,
  sessionsTtl: 300,
  presenceTtl: 15,
});
await broker.start();
const epoch = await broker.epoch();
console.log(JSON.stringify({ ready: true, epoch }));

for await (const _ of Deno.stdin.readable) {
  // Drain until the parent closes stdin.
}

const offsets: number[] = [];
for (let i = 0; i < Number(count); i++) {
  const msg = await broker.store({ stream, data: `${label}-${i}` });
  offsets.push(msg.offset!);
}
console.log(JSON.stringify({ epoch: await broker.epoch(), offsets }));
await broker.close();
