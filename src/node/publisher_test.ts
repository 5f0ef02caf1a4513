import assert from "node:assert/strict";
import type { StreamMessage } from "../broker/broker.ts";
import { MemoryBroker } from "../broker/memory_broker.ts";
import { Hub } from "../hub/hub.ts";
import { silentLogger } from "../logger/logger.ts";
import {
  type PubSub,
  type PubSubHandler,
  PubSubUnavailableError,
  type RemoteCommand,
} from "../pubsub/pubsub.ts";
import { Publisher } from "./publisher.ts";

class FakePubSub implements PubSub {
  readonly name = "fake";
  ready = true;
  readonly sent: StreamMessage[] = [];
  readonly commands: RemoteCommand[] = [];
  start(_h: PubSubHandler): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(): void {}
  unsubscribe(): void {}
  broadcast(msg: StreamMessage): Promise<void> {
    this.sent.push(msg);
    return Promise.resolve();
  }
  broadcastCommand(cmd: RemoteCommand): Promise<void> {
    this.commands.push(cmd);
    return Promise.resolve();
  }
}

function setup() {
  const broker = new MemoryBroker({
    historyLimit: 100,
    historyTtl: 300,
    sessionsTtl: 300,
    presenceTtl: 15,
  });
  const pubsub = new FakePubSub();
  const publisher = new Publisher({
    broker,
    pubsub,
    hub: new Hub(),
    local: { deliver() {}, execute() {} },
    logger: silentLogger,
  });
  return { broker, pubsub, publisher };
}

const body = (data: string) => JSON.stringify({ stream: "chat", data });

Deno.test("publisher: while the pub/sub is not ready nothing is stored or sent", async () => {
  const { broker, pubsub, publisher } = setup();
  await publisher.handleBroadcast(body("1"), { fanout: false });
  pubsub.ready = false;
  await assert.rejects(
    publisher.handleBroadcast(body("2"), { fanout: false }),
    PubSubUnavailableError,
  );
  await assert.rejects(
    publisher.handleBroadcast(
      JSON.stringify({ command: "disconnect", payload: { identifier: "x" } }),
      { fanout: false },
    ),
    PubSubUnavailableError,
  );
  await assert.rejects(
    publisher.publish({ stream: "chat", data: "w", meta: { transient: true } }),
    PubSubUnavailableError,
  );
  pubsub.ready = true;
  await publisher.handleBroadcast(body("3"), { fanout: false });
  const history = await broker.historySince("chat", 0);
  assert.deepEqual(history.map((m) => [m.data, m.offset]), [["1", 1], ["3", 2]]);
  assert.deepEqual(pubsub.sent.map((m) => m.data), ["1", "3"]);
  assert.equal(pubsub.commands.length, 0);
});

Deno.test("publisher: a link that drops while a publication waits in line refuses it", async () => {
  const { broker, pubsub, publisher } = setup();
  const first = publisher.handleBroadcast(body("1"), { fanout: false });
  const second = publisher.handleBroadcast(body("2"), { fanout: false }); // queued behind
  pubsub.ready = false;
  await first.catch(() => {});
  await assert.rejects(second, PubSubUnavailableError);
  const stored = (await broker.historySince("chat", 0)).map((m) => m.data);
  assert.ok(!stored.includes("2"), "the refused publication was not stored");
});
