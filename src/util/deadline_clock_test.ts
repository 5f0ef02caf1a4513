import assert from "node:assert/strict";
import { DeadlineClock } from "./deadline_clock.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadline clock: fires each deadline once, never early, and stops when idle", async () => {
  const clock = new DeadlineClock(10);
  const fired: { name: string; after: number }[] = [];
  const start = performance.now();
  const item = (name: string) => ({
    expire: () => fired.push({ name, after: performance.now() - start }),
  });
  clock.add(item("a"), 30);
  clock.add(item("b"), 0);
  const c = item("c");
  const cTick = clock.add(c, 20);
  clock.add(item("d"), 60);
  clock.cancel(c, cTick);
  clock.cancel(c, cTick); // twice: no-op
  assert.equal(clock.pending, 3);
  for (let i = 0; i < 200 && clock.pending > 0; i++) await wait(10);
  assert.deepEqual(fired.map((f) => f.name), ["b", "a", "d"]);
  assert.ok(fired[1].after >= 30, `a fired after ${fired[1].after} ms`);
  assert.ok(fired[2].after >= 60, `d fired after ${fired[2].after} ms`);
  assert.equal(clock.pending, 0);
});

Deno.test("deadline clock: a deadline added while another expires is kept", async () => {
  const clock = new DeadlineClock(10);
  let second = false;
  clock.add({
    expire: () => clock.add({ expire: () => second = true }, 10),
  }, 10);
  for (let i = 0; i < 200 && !second; i++) await wait(10);
  assert.ok(second);
  assert.equal(clock.pending, 0);
});

Deno.test("deadline clock: many calls, all cancelled, leave no timer running", () => {
  const clock = new DeadlineClock(10);
  const items = Array.from({ length: 1000 }, () => ({ expire: () => assert.fail("fired") }));
  const ticks = items.map((it, i) => clock.add(it, 3000 + i));
  items.forEach((it, i) => clock.cancel(it, ticks[i]));
  assert.equal(clock.pending, 0);
  // Deno's test sanitizer fails this test if an interval were still running.
});
