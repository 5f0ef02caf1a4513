import assert from "node:assert/strict";
import { WriteWatchdog, type WriteWatched } from "./write_watchdog.ts";

class Fake implements WriteWatched {
  open = true;
  sentBytes = 0;
  pendingBytes = 0;
  writeWatched = false;
  /** Hands `n` bytes to the "socket", after which `stuck` bytes are unwritten. */
  send(n: number, stuck = n): void {
    this.sentBytes += n;
    this.pendingBytes = stuck;
  }
}

// A 10 s timeout ticks every 2.5 s: the real ticker never fires here; the tests drive tick().
const TIMEOUT = 10_000, EVERY = TIMEOUT / 4;

Deno.test("write watchdog: a stalled socket times out; draining and slow-but-moving ones do not", () => {
  const timedOut: Fake[] = [];
  const dog = new WriteWatchdog<Fake>(TIMEOUT, (s) => timedOut.push(s));
  const stalled = new Fake(), drained = new Fake(), moving = new Fake();
  for (const s of [stalled, drained, moving]) {
    s.send(1000);
    dog.watch(s);
    dog.watch(s); // once only
  }
  assert.equal(dog.size, 3);
  drained.pendingBytes = 0;
  let now = performance.now();
  for (let i = 1; i <= 4; i++) {
    // Always 1000 bytes pending, but what was pending at the last check has been written.
    moving.send(1000, 1000);
    dog.tick(now += EVERY);
    assert.deepEqual(timedOut, [], `tick ${i}: within the timeout`);
  }
  assert.equal(drained.writeWatched, false);
  assert.equal(dog.size, 2);
  moving.send(1000, 1000);
  dog.tick(now += EVERY);
  assert.deepEqual(timedOut, [stalled], "past the timeout");
  assert.equal(stalled.writeWatched, false);
  assert.equal(moving.writeWatched, true);
  moving.pendingBytes = 0;
  dog.tick(now += EVERY);
  assert.equal(dog.size, 0);
  dog.close();
});

Deno.test("write watchdog: closed sessions leave; a late tick (busy event loop) does not count", () => {
  const timedOut: Fake[] = [];
  const dog = new WriteWatchdog<Fake>(TIMEOUT, (s) => timedOut.push(s));
  const gone = new Fake(), stalled = new Fake();
  gone.send(10);
  stalled.send(10);
  dog.watch(gone);
  dog.watch(stalled);
  gone.open = false;
  let now = performance.now();
  for (let i = 0; i < 4; i++) dog.tick(now += EVERY);
  assert.equal(dog.size, 1);
  assert.equal(gone.writeWatched, false);
  // The loop was blocked for three intervals: the server was busy, not the client.
  dog.tick(now += 3 * EVERY);
  assert.deepEqual(timedOut, []);
  dog.tick(now += EVERY);
  assert.deepEqual(timedOut, [stalled]);
  dog.close();
});
