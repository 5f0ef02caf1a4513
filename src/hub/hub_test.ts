import assert from "node:assert/strict";
import type { StreamMessage } from "../broker/broker.ts";
import { Hub, type Subscriber } from "./hub.ts";

class Recorder implements Subscriber {
  frames: string[] = [];
  constructor(readonly sid: string, readonly positions = false) {}
  deliver(_identifier: string, frame: string, _msg: StreamMessage): void {
    this.frames.push(frame);
  }
}

Deno.test("hub delivers once per identifier and skips the excluded socket", () => {
  const added: string[] = [];
  const removed: string[] = [];
  const hub = new Hub({ streamAdded: (s) => added.push(s), streamRemoved: (s) => removed.push(s) });
  const a = new Recorder("a");
  const b = new Recorder("b", true);
  hub.subscribe(a, "chat", "id1");
  hub.subscribe(a, "chat", "id2");
  hub.subscribe(b, "chat", "id1");
  hub.broadcast({ stream: "chat", data: '{"text":"hi"}', epoch: "e", offset: 3 });
  assert.deepEqual(a.frames.map((f) => JSON.parse(f)), [
    { identifier: "id1", message: { text: "hi" } },
    { identifier: "id2", message: { text: "hi" } },
  ]);
  assert.deepEqual(JSON.parse(b.frames[0]), {
    identifier: "id1",
    message: { text: "hi" },
    stream_id: "chat",
    epoch: "e",
    offset: 3,
  });
  hub.broadcast({ stream: "chat", data: "plain text", meta: { exclude_socket: "a" } });
  assert.equal(a.frames.length, 2);
  assert.deepEqual(JSON.parse(b.frames[1]), { identifier: "id1", message: "plain text" });
  hub.unsubscribe(a, "chat", "id1");
  hub.unsubscribe(a, "chat", "id2");
  hub.unsubscribe(b, "chat", "id1");
  assert.deepEqual(added, ["chat"]);
  assert.deepEqual(removed, ["chat"]);
  assert.equal(hub.streamsCount, 0);
});

Deno.test("hub sends null data as a raw string and honours broadcast_type", () => {
  const hub = new Hub();
  const a = new Recorder("a");
  hub.subscribe(a, "s", "i");
  hub.broadcast({ stream: "s", data: "null", meta: { broadcast_type: "event" } });
  assert.deepEqual(JSON.parse(a.frames[0]), { identifier: "i", message: "null", type: "event" });
});

Deno.test("a subscriber that leaves during a delivery does not disturb the others", () => {
  const hub = new Hub();
  const others = [new Recorder("x"), new Recorder("y")];
  const leaver = new Recorder("slow");
  leaver.deliver = () => hub.unsubscribe(leaver, "s", "i");
  hub.subscribe(others[0], "s", "i");
  hub.subscribe(leaver, "s", "i");
  hub.subscribe(others[1], "s", "i");
  hub.broadcast({ stream: "s", data: "1" });
  hub.broadcast({ stream: "s", data: "2" });
  assert.deepEqual(others.map((o) => o.frames.length), [2, 2]);
  assert.equal(hub.subscribersCount("s"), 2);
});

Deno.test("identifiers come and go on one stream in any order", () => {
  const hub = new Hub();
  const a = new Recorder("a");
  hub.subscribe(a, "s", "i1");
  hub.subscribe(a, "s", "i1");
  hub.subscribe(a, "s", "i2");
  hub.subscribe(a, "s", "i3");
  hub.unsubscribe(a, "s", "i2");
  hub.broadcast({ stream: "s", data: "1" });
  assert.deepEqual(a.frames.map((f) => JSON.parse(f).identifier), ["i1", "i3"]);
  hub.unsubscribe(a, "s", "i1");
  hub.unsubscribe(a, "s", "nope");
  hub.broadcast({ stream: "s", data: "2" });
  assert.deepEqual(a.frames.slice(2).map((f) => JSON.parse(f).identifier), ["i3"]);
  hub.unsubscribe(a, "s", "i3");
  assert.equal(hub.streamsCount, 0);
});
