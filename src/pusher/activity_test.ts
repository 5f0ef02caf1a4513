import assert from "node:assert/strict";
import { ActivityCheck, type ActivityTracked } from "./activity.ts";

class Fake implements ActivityTracked {
  open = true;
  pingSentAt?: number;
  frames: string[] = [];
  closedWith?: number;
  constructor(public lastSeen: number) {}
  sendFrame(frame: string): void {
    this.frames.push(JSON.parse(frame).event);
  }
  close(code: number): void {
    this.closedWith = code;
    this.open = false;
  }
}

Deno.test("pusher activity: silent sockets are pinged, then closed with 4201 without a pong", () => {
  const check = new ActivityCheck(30_000, 30_000);
  assert.equal(check.every, 10_000);
  const t0 = 1_000_000;
  const talker = new Fake(t0), answers = new Fake(t0), mute = new Fake(t0);
  const all = [talker, answers, mute];
  check.sweep(all, t0 + 29_999);
  assert.deepEqual(all.map((s) => s.frames.length), [0, 0, 0]);
  talker.lastSeen = t0 + 25_000;
  check.sweep(all, t0 + 30_000);
  assert.deepEqual(talker.frames, []);
  assert.deepEqual(answers.frames, ["pusher:ping"]);
  assert.deepEqual(mute.frames, ["pusher:ping"]);
  // One ping per silence, not one per sweep.
  check.sweep(all, t0 + 40_000);
  assert.deepEqual(mute.frames, ["pusher:ping"]);
  answers.lastSeen = t0 + 45_000; // the pong
  check.sweep(all, t0 + 60_000);
  assert.equal(answers.closedWith, undefined);
  assert.equal(answers.pingSentAt, undefined);
  assert.equal(mute.closedWith, 4201);
  assert.deepEqual(mute.frames, ["pusher:ping", "pusher:error"]);
  // The talker went quiet 35 s before that sweep: its own ping now.
  assert.deepEqual(talker.frames, ["pusher:ping"]);
});
