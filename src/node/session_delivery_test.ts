import assert from "node:assert/strict";
import { HistoryError, type StreamMessage } from "../broker/broker.ts";
import { silentLogger } from "../logger/logger.ts";
import { encodeStreamMessage, messageJson } from "../protocol/encoder.ts";
import type { Connection } from "../transport/connection.ts";
import { gapFiller } from "./history.ts";
import type { Node } from "./node.ts";
import { type GapFiller, Session, type Subscription } from "./session.ts";

const ID = "chat-id";

class Sink implements Connection {
  frames: Array<Record<string, unknown>> = [];
  send(frame: string): void {
    this.frames.push(JSON.parse(frame));
  }
  close(): void {}
  /** Offsets of the stream messages sent, in order. */
  get offsets(): number[] {
    return this.frames.filter((f) => f.message !== undefined).map((f) => f.offset as number);
  }
}

function msg(offset: number, epoch = "e1"): StreamMessage {
  return { stream: "s", data: JSON.stringify({ offset }), offset, epoch };
}

function setup(fillGap?: GapFiller) {
  const conn = new Sink();
  const session = new Session({
    sid: "sid",
    ext: true,
    conn,
    env: { url: "http://x/", headers: {} },
    transport: "ws",
    logger: silentLogger,
    maxPending: 1 << 20,
    fillGap,
  });
  session.state = "connected";
  const sub: Subscription = { istate: {}, streams: new Set(["s"]) };
  session.subscriptions.set(ID, sub);
  const live = (m: StreamMessage) =>
    session.deliver(ID, encodeStreamMessage(ID, m, messageJson(m.data), true), m);
  return { conn, session, sub, live };
}

/** A node whose broker answers historyFrom with `history` (or throws). */
function fakeNode(history: (after: number) => StreamMessage[]): { node: Node; reads: number[] } {
  const reads: number[] = [];
  const broker = {
    historyFrom: (_stream: string, _epoch: string, after: number) => {
      reads.push(after);
      try {
        return Promise.resolve(history(after));
      } catch (err) {
        return Promise.reject(err);
      }
    },
  };
  return { node: { deps: { broker } } as unknown as Node, reads };
}

const until = async (pred: () => boolean) => {
  for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(pred(), "condition not reached");
};

Deno.test("session cursor: an offset at or below the last delivered one is dropped", () => {
  const { conn, session, live } = setup();
  for (const o of [1, 2, 2, 1, 3]) live(msg(o));
  assert.deepEqual(conn.offsets, [1, 2, 3]);
  assert.equal(session.duplicatesDropped, 2);
  // A new epoch starts over; transient messages (no offset) always pass.
  live(msg(1, "e2"));
  live({ stream: "s", data: '"t"' });
  assert.deepEqual(conn.offsets.slice(3), [1, undefined]);
});

Deno.test("session cursor: a gap whose messages arrive live within the grace needs no history", async () => {
  const { node, reads } = fakeNode(() => {
    throw new Error("history must not be read");
  });
  const { conn, live } = setup(gapFiller(node, 30));
  live(msg(1));
  live(msg(3));
  live(msg(2));
  assert.deepEqual(conn.offsets, [1], "held until the gap is settled");
  await until(() => conn.offsets.length === 3);
  assert.deepEqual(conn.offsets, [1, 2, 3]);
  assert.deepEqual(reads, []);
});

Deno.test("session cursor: a gap is filled from history before the live message", async () => {
  const { node, reads } = fakeNode((after) =>
    [2, 3, 4, 5].filter((o) => o > after).map((o) => msg(o))
  );
  const { conn, live } = setup(gapFiller(node, 10));
  live(msg(1));
  live(msg(4));
  live(msg(5));
  await until(() => conn.offsets.length === 5);
  live(msg(2));
  live(msg(6));
  assert.deepEqual(conn.offsets, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(reads, [1]);
});

Deno.test("session cursor: a gap history cannot fill is reported with reject_history", async () => {
  const { node } = fakeNode(() => {
    throw new HistoryError("trimmed");
  });
  const { conn, live } = setup(gapFiller(node, 10));
  live(msg(1));
  live(msg(5));
  await until(() => conn.offsets.length === 2);
  live(msg(6));
  assert.deepEqual(conn.offsets, [1, 5, 6]);
  assert.deepEqual(conn.frames[1], { type: "reject_history", identifier: ID });
});

Deno.test("held subscription: released in offset order, minus what the replay carried", () => {
  const { conn, session, sub, live } = setup();
  session.holdLive(sub);
  live(msg(4));
  live(msg(3));
  assert.deepEqual(conn.offsets, []);
  for (const o of [1, 2, 3]) {
    const m = msg(o);
    session.deliverStored(sub, m, () => encodeStreamMessage(ID, m, messageJson(m.data), true));
  }
  session.releaseLive(sub);
  assert.deepEqual(conn.offsets, [1, 2, 3, 4]);
  // A release without a hold does nothing.
  session.releaseLive(sub);
  live(msg(5));
  assert.deepEqual(conn.offsets, [1, 2, 3, 4, 5]);
});
