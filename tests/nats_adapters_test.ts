/** NATS broadcaster and NATS pub/sub against a real nats-server. */
import assert from "node:assert/strict";
import { type BroadcastHandler, InvalidBroadcastError } from "../src/broadcast/broadcaster.ts";
import { NatsBroadcaster } from "../src/broadcast/nats_broadcaster.ts";
import type { StreamMessage } from "../src/broker/broker.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { InvalidSubjectError, NatsPubSub } from "../src/pubsub/nats_pubsub.ts";
import type { PubSubHandler, RemoteCommand } from "../src/pubsub/pubsub.ts";
import { NatsLink, NatsUnavailableError } from "../src/util/nats_connection.ts";
import { captureLogger, Inbox, retryUntilDelivered } from "./support/adapter_helpers.ts";
import { hasNats, type ServiceHandle, startNats } from "./support/services.ts";

const NATS = hasNats();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function natsTest(name: string, fn: (nats: ServiceHandle) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !NATS,
    async fn() {
      const nats = await startNats({ jetstream: true });
      try {
        await fn(nats);
      } finally {
        await nats.stop();
      }
    },
  });
}

interface Received {
  body: string;
  fanout: boolean;
}

class RecordingHandler implements BroadcastHandler {
  readonly inbox = new Inbox<Received>();
  constructor(readonly behaviour: (body: string) => Promise<void> = () => Promise.resolve()) {}
  async handleBroadcast(body: string, opts: { fanout: boolean }): Promise<void> {
    await this.behaviour(body);
    this.inbox.push({ body, fanout: opts.fanout });
  }
  handleBroadcastValue(value: unknown, opts: { fanout: boolean }): Promise<void> {
    return this.handleBroadcast(JSON.stringify(value), opts);
  }
}

class RecordingNode implements PubSubHandler {
  readonly messages = new Inbox<StreamMessage>();
  readonly commands = new Inbox<RemoteCommand>();
  deliver(msg: StreamMessage): void {
    this.messages.push(msg);
  }
  execute(cmd: RemoteCommand): void {
    this.commands.push(cmd);
  }
}

function raw(url: string): Promise<NatsLink> {
  return NatsLink.open({ servers: url, logger: silentLogger });
}

natsTest("nats broadcaster: every instance receives every publication (fan-out)", async (n) => {
  const h1 = new RecordingHandler((body) =>
    body === "bad" ? Promise.reject(new InvalidBroadcastError("bad")) : Promise.resolve()
  );
  const h2 = new RecordingHandler((body) =>
    body === "bad" ? Promise.reject(new Error("broker failure")) : Promise.resolve()
  );
  const b1 = new NatsBroadcaster({ servers: n.url, logger: silentLogger });
  const b2 = new NatsBroadcaster({ servers: n.url, logger: silentLogger });
  const client = await raw(n.url);
  try {
    await b1.start(h1);
    await b2.start(h2);
    const body = '{"stream":"chat_1","data":"{\\"text\\":\\"hi\\"}"}';
    client.nc.publish("__anycable__", encoder.encode("bad"));
    client.nc.publish("__anycable__", encoder.encode(body));
    client.nc.publish("other", encoder.encode("ignored"));
    client.nc.publish("__anycable__", encoder.encode("second"));
    for (const h of [h1, h2]) {
      await h.inbox.waitForCount(2);
      assert.deepEqual(h.inbox.items, [
        { body, fanout: true },
        { body: "second", fanout: true },
      ]);
    }
  } finally {
    await Promise.all([b1.close(), b2.close(), client.close()]);
    await b1.close(); // idempotent
  }
});

natsTest("nats pub/sub: messages reach only nodes subscribed to the stream", async (n) => {
  const nodeA = new RecordingNode();
  const nodeB = new RecordingNode();
  const a = new NatsPubSub({ servers: n.url, logger: silentLogger });
  const b = new NatsPubSub({ servers: n.url, logger: silentLogger });
  const client = await raw(n.url);
  const wire = new Inbox<string>();
  try {
    await a.start(nodeA);
    await b.start(nodeB);
    client.nc.subscribe("chat_1", { callback: (_err, m) => wire.push(decoder.decode(m.data)) });
    await client.nc.flush();
    b.subscribe("chat_1");
    b.subscribe("chat_2");
    b.subscribe("chat_1"); // repeated: no-op
    await b.sync();

    const msg: StreamMessage = {
      stream: "chat_1",
      data: '{"text":"hi"}',
      meta: { exclude_socket: "x1" },
      offset: 3,
      epoch: "yS2g",
    };
    await a.broadcast(msg);
    await nodeB.messages.waitForCount(1);
    assert.deepEqual(nodeB.messages.items[0], msg);
    await wire.waitForCount(1);
    assert.equal(
      wire.items[0],
      '{"stream":"chat_1","data":"{\\"text\\":\\"hi\\"}","meta":{"exclude_socket":"x1"},' +
        '"offset":3,"epoch":"yS2g"}',
    );

    b.unsubscribe("chat_1");
    await b.sync();
    await a.broadcast({ stream: "chat_1", data: "after-unsubscribe" });
    await a.broadcast({ stream: "chat_2", data: "marker" });
    await nodeB.messages.waitForCount(2);
    assert.deepEqual(nodeB.messages.items.map((m) => m.data), ['{"text":"hi"}', "marker"]);
    assert.equal(nodeA.messages.items.length, 0, "A never subscribed");
    await assert.rejects(a.broadcast({ stream: "bad stream", data: "x" }), InvalidSubjectError);
  } finally {
    await Promise.all([a.close(), b.close(), client.close()]);
    await a.close();
  }
});

natsTest("nats pub/sub: remote commands reach every node, the sender included", async (n) => {
  const nodes = [new RecordingNode(), new RecordingNode()];
  const a = new NatsPubSub({ servers: n.url, logger: silentLogger });
  const b = new NatsPubSub({ servers: n.url, logger: silentLogger });
  try {
    await a.start(nodes[0]);
    await b.start(nodes[1]);
    const cmd: RemoteCommand = {
      command: "disconnect",
      payload: { identifier: '{"user":"1"}', reconnect: false },
    };
    await a.broadcastCommand(cmd);
    for (const node of nodes) {
      await node.commands.waitForCount(1);
      assert.deepEqual(node.commands.items, [cmd]);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

natsTest("nats fault: kill + restart on the same port, adapters resume", async (n) => {
  const { logger, lines } = captureLogger();
  const fanout = new RecordingHandler();
  const nodeA = new RecordingNode();
  const nodeB = new RecordingNode();
  const broadcaster = new NatsBroadcaster({ servers: n.url, logger });
  const a = new NatsPubSub({ servers: n.url, logger: logger.child({ node: "a" }) });
  const b = new NatsPubSub({ servers: n.url, logger: logger.child({ node: "b" }) });
  let client: NatsLink | undefined;
  try {
    await broadcaster.start(fanout);
    await a.start(nodeA);
    await b.start(nodeB);
    a.subscribe("chat_1");
    b.subscribe("chat_1");
    await Promise.all([a.sync(), b.sync()]);

    await n.kill();
    // Every connection notices the drop on its own; wait for each one's warning.
    const warned = (xs: string[], who: string) =>
      xs.some((l) => l.includes("nats unavailable, retrying") && l.includes(who));
    await lines.waitFor(
      (xs) => ["node=a", "node=b", "broadcaster=nats"].every((who) => warned(xs, who)),
      5000,
      "a warning from every connection",
    );
    // While NATS is down, publishes are refused (nats.js would drop them silently).
    await assert.rejects(a.broadcast({ stream: "chat_1", data: "lost" }), NatsUnavailableError);
    await assert.rejects(
      a.broadcastCommand({ command: "disconnect", payload: { identifier: "x" } }),
      NatsUnavailableError,
    );
    b.subscribe("chat_2"); // issued while down

    await n.restart();
    for (const stream of ["chat_1", "chat_2"]) {
      await retryUntilDelivered(
        nodeB.messages,
        (xs) => xs.some((m) => m.stream === stream && m.data.startsWith("after")),
        (i) => a.broadcast({ stream, data: `after-${i}` }),
        { label: `nats pub/sub ${stream}` },
      );
    }
    client = await raw(n.url);
    const c = client;
    await retryUntilDelivered(
      fanout.inbox,
      (xs) => xs.length > 0,
      (i) => Promise.resolve(c.nc.publish("__anycable__", encoder.encode(`fanout-${i}`))),
      { label: "nats broadcaster" },
    );
    assert.ok(lines.items.some((l) => l.includes("nats connection restored")));
    assert.ok(![...nodeA.messages.items, ...nodeB.messages.items].some((m) => m.data === "lost"));
  } finally {
    await Promise.all([broadcaster.close(), a.close(), b.close(), client?.close()]);
  }
});

Deno.test({
  name: "nats connection: an unreachable server fails start with NatsUnavailableError",
  ignore: !NATS,
  async fn() {
    const n = await startNats();
    const url = n.url;
    await n.stop();
    await assert.rejects(
      NatsLink.open({ servers: url, logger: silentLogger, connectTimeoutMs: 300 }),
      NatsUnavailableError,
    );
  },
});
