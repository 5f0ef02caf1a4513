/**
 * One behaviour suite for every Broker adapter (memory, kv, redis, nats). It only uses the
 * Broker interface and the `now` option, and names its streams, sids and presence ids
 * uniquely per test, so it also runs against a shared, long-lived store.
 */
import assert from "node:assert/strict";
import {
  type Broker,
  type BrokerOptions,
  type ExpiredPresence,
  HistoryError,
  type PresenceInfo,
  type StreamMessage,
} from "../src/broker/broker.ts";

export interface BrokerSuiteOptions {
  /**
   * The adapter honours `opts.now` for every TTL (history, stream counters, sessions,
   * presence). Stores that expire data by their own clock (Redis, NATS) pass false, which
   * skips the cases that advance fake time. Default true.
   */
  fakeTime?: boolean;
  /** Passed to Deno.test's sanitizeResources/sanitizeOps. Default true. */
  sanitize?: boolean;
}

export type BrokerFactory = (
  opts: BrokerOptions,
) => Promise<{ broker: Broker; cleanup?: () => Promise<void> }>;

interface Ctx {
  broker: Broker;
  /** Fake clock: advance with `clock.advance(ms)`; `clock.now` is what the broker sees. */
  clock: { now: number; advance(ms: number): void };
  /** A name unique to this test run: `uid("stream")` -> "stream-<random>". */
  uid(label: string): string;
}

const DEFAULTS: BrokerOptions = {
  historyLimit: 100,
  historyTtl: 300,
  sessionsTtl: 300,
  presenceTtl: 15,
};

/** Registers the suite's Deno.test cases; `make` builds an unstarted broker from options. */
export function brokerSuite(
  name: string,
  make: BrokerFactory,
  options: BrokerSuiteOptions = {},
): void {
  const fakeTime = options.fakeTime ?? true;
  const sanitize = options.sanitize ?? true;

  function test(
    title: string,
    overrides: Partial<BrokerOptions>,
    fn: (ctx: Ctx) => Promise<void>,
    needsFakeTime = false,
  ): void {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: needsFakeTime && !fakeTime,
      sanitizeResources: sanitize,
      sanitizeOps: sanitize,
      async fn() {
        const clock = {
          now: Date.now(),
          advance(ms: number) {
            clock.now += ms;
          },
        };
        const opts: BrokerOptions = { ...DEFAULTS, ...overrides, now: () => clock.now };
        const { broker, cleanup } = await make(opts);
        const run = crypto.randomUUID().slice(0, 8);
        try {
          await broker.start();
          await fn({ broker, clock, uid: (label) => `${label}-${run}` });
        } finally {
          await broker.close();
          await broker.close(); // idempotent
          await cleanup?.();
        }
      },
    });
  }

  const offsets = (msgs: StreamMessage[]) => msgs.map((m) => m.offset);
  const store = (b: Broker, stream: string, data: string) => b.store({ stream, data });
  const rejectsHistory = (p: Promise<unknown>) => assert.rejects(p, HistoryError);
  const sortInfo = (info: PresenceInfo) => ({
    total: info.total,
    records: [...info.records].sort((a, b) => a.id.localeCompare(b.id)),
  });
  const sortExpired = (list: ExpiredPresence[]) =>
    [...list].sort((a, b) =>
      `${a.stream}/${a.event.id}`.localeCompare(`${b.stream}/${b.event.id}`)
    );

  test("epoch is non-empty and stable", {}, async ({ broker, uid }) => {
    const epoch = await broker.epoch();
    assert.equal(typeof epoch, "string");
    assert.notEqual(epoch, "");
    const msg = await store(broker, uid("s"), "x");
    assert.equal(msg.epoch, epoch);
    assert.equal(await broker.epoch(), epoch);
  });

  test("offsets start at 1 and grow by 1 per stream", {}, async ({ broker, uid }) => {
    const a = uid("a");
    const b = uid("b");
    const got: [string, number | undefined][] = [];
    for (const stream of [a, a, b, a, b]) {
      got.push([stream, (await store(broker, stream, "d")).offset]);
    }
    assert.deepEqual(got, [[a, 1], [a, 2], [b, 1], [a, 3], [b, 2]]);
  });

  test("store returns the registered copy", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    const input: StreamMessage = { stream, data: '{"a":1}', meta: { broadcast_type: "t" } };
    const out = await broker.store(input);
    assert.deepEqual(out, { ...input, offset: 1, epoch: await broker.epoch() });
  });

  test("50 concurrent stores get offsets 1..50 exactly", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store(broker, stream, `m${i}`)),
    );
    const sorted = results.map((m) => m.offset!).sort((x, y) => x - y);
    assert.deepEqual(sorted, Array.from({ length: 50 }, (_, i) => i + 1));
    const byOffset = new Map(results.map((m) => [m.offset, m.data]));
    const history = await broker.historyFrom(stream, await broker.epoch(), 1);
    assert.deepEqual(offsets(history), sorted.slice(1));
    for (const m of history) assert.equal(m.data, byOffset.get(m.offset));
  });

  test("historyFrom returns the messages after the offset, in order", {}, async (c) => {
    const stream = c.uid("s");
    for (const d of ["a", "b", "c"]) await store(c.broker, stream, d);
    const epoch = await c.broker.epoch();
    assert.deepEqual(await c.broker.historyFrom(stream, epoch, 1), [
      { stream, data: "b", offset: 2, epoch },
      { stream, data: "c", offset: 3, epoch },
    ]);
    assert.deepEqual(offsets(await c.broker.historyFrom(stream, epoch, 2)), [3]);
  });

  test("historyFrom at the latest offset returns nothing", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    for (const d of ["a", "b"]) await store(broker, stream, d);
    assert.deepEqual(await broker.historyFrom(stream, await broker.epoch(), 2), []);
  });

  test("historyFrom keeps meta", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    await store(broker, stream, "a");
    await broker.store({ stream, data: "b", meta: { broadcast_type: "x" } });
    const [msg] = await broker.historyFrom(stream, await broker.epoch(), 1);
    assert.deepEqual(msg.meta, { broadcast_type: "x" });
  });

  test("historyFrom rejects what it cannot answer", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    for (const d of ["a", "b", "c"]) await store(broker, stream, d);
    const epoch = await broker.epoch();
    await rejectsHistory(broker.historyFrom(stream, `${epoch}x`, 1)); // epoch mismatch
    await rejectsHistory(broker.historyFrom(uid("unknown"), epoch, 1)); // unknown stream
    await rejectsHistory(broker.historyFrom(stream, epoch, 4)); // above latest
    await rejectsHistory(broker.historyFrom(stream, epoch, -1)); // invalid
    // Offset 0 is oldest-1 on an untrimmed stream: rejected like the reference (§4.2).
    await rejectsHistory(broker.historyFrom(stream, epoch, 0));
  });

  test("history keeps only the last historyLimit messages", { historyLimit: 3 }, async (c) => {
    const stream = c.uid("s");
    for (const d of ["1", "2", "3", "4", "5"]) await store(c.broker, stream, d);
    const epoch = await c.broker.epoch();
    assert.deepEqual(offsets(await c.broker.historyFrom(stream, epoch, 3)), [4, 5]);
    await rejectsHistory(c.broker.historyFrom(stream, epoch, 2)); // oldest-1
    await rejectsHistory(c.broker.historyFrom(stream, epoch, 1)); // below oldest
    assert.deepEqual(offsets(await c.broker.historySince(stream, 0)), [3, 4, 5]);
    assert.equal((await store(c.broker, stream, "6")).offset, 6);
    assert.deepEqual(offsets(await c.broker.historySince(stream, 0)), [4, 5, 6]);
  });

  test("large messages round-trip", {}, async ({ broker, uid }) => {
    const stream = uid("s");
    const big = "x".repeat(70_000) + "\u{1F600}".repeat(40_000) + "é".repeat(30_001);
    await store(broker, stream, "small");
    await store(broker, stream, big);
    const [msg] = await broker.historyFrom(stream, await broker.epoch(), 1);
    assert.equal(msg.data.length, big.length);
    assert.ok(msg.data === big);
  });

  test("historySince: unknown stream gives nothing", {}, async ({ broker, uid }) => {
    assert.deepEqual(await broker.historySince(uid("unknown"), 0), []);
  });

  if (fakeTime) {
    test("historySince selects by store time in seconds", {}, async ({ broker, clock, uid }) => {
      const stream = uid("s");
      clock.now = Math.floor(clock.now / 1000) * 1000 + 500;
      const t0 = Math.floor(clock.now / 1000);
      await store(broker, stream, "a");
      clock.advance(2000);
      await store(broker, stream, "b");
      clock.advance(2000);
      await store(broker, stream, "c");
      assert.deepEqual(offsets(await broker.historySince(stream, t0)), [1, 2, 3]);
      assert.deepEqual(offsets(await broker.historySince(stream, t0 + 1)), [2, 3]);
      assert.deepEqual(offsets(await broker.historySince(stream, t0 + 2)), [2, 3]);
      assert.deepEqual(offsets(await broker.historySince(stream, t0 + 4)), [3]);
      assert.deepEqual(await broker.historySince(stream, t0 + 5), []);
    });
  } else {
    test("historySince selects by store time in seconds", {}, async ({ broker, uid }) => {
      const stream = uid("s");
      const before = Math.floor(Date.now() / 1000);
      for (const d of ["a", "b"]) await store(broker, stream, d);
      assert.deepEqual(offsets(await broker.historySince(stream, before)), [1, 2]);
      assert.deepEqual(await broker.historySince(stream, before + 3600), []);
    });
  }

  test("messages older than historyTtl are dropped", { historyTtl: 10 }, async (c) => {
    const { broker, clock } = c;
    const stream = c.uid("s");
    const epoch = await broker.epoch();
    await store(broker, stream, "a");
    clock.advance(6_000);
    await store(broker, stream, "b");
    clock.advance(5_000); // "a" is 11 s old, "b" 5 s
    assert.deepEqual(offsets(await broker.historySince(stream, 0)), [2]);
    await rejectsHistory(broker.historyFrom(stream, epoch, 1)); // oldest-1
    assert.deepEqual(await broker.historyFrom(stream, epoch, 2), []);
    clock.advance(6_000); // everything expired; the counter survives
    assert.deepEqual(await broker.historySince(stream, 0), []);
    await rejectsHistory(broker.historyFrom(stream, epoch, 1));
    assert.deepEqual(await broker.historyFrom(stream, epoch, 2), []); // latest: nothing missed
    assert.equal((await store(broker, stream, "c")).offset, 3);
    await rejectsHistory(broker.historyFrom(stream, epoch, 2)); // oldest-1 again
    assert.deepEqual(offsets(await broker.historySince(stream, 0)), [3]);
  }, true);

  test(
    "a stream is forgotten 10 x historyTtl after its last message",
    { historyTtl: 10 },
    async (c) => {
      const { broker, clock } = c;
      const stream = c.uid("s");
      const epoch = await broker.epoch();
      await store(broker, stream, "a");
      clock.advance(99_000);
      assert.equal((await store(broker, stream, "b")).offset, 2);
      clock.advance(99_000);
      assert.deepEqual(await broker.historyFrom(stream, epoch, 2), []);
      clock.advance(2_000); // 101 s after the last message
      await rejectsHistory(broker.historyFrom(stream, epoch, 2)); // unknown stream now
      assert.deepEqual(await broker.historySince(stream, 0), []);
      const restarted = await store(broker, stream, "c");
      assert.equal(restarted.offset, 1);
      assert.equal(restarted.epoch, epoch);
      assert.deepEqual(await broker.historyFrom(stream, epoch, 1), []);
    },
    true,
  );

  test("sessions: commit, restore, overwrite", {}, async ({ broker, uid }) => {
    const sid = uid("sid");
    assert.equal(await broker.restoreSession(sid), null);
    await broker.commitSession(sid, '{"v":1}');
    assert.equal(await broker.restoreSession(sid), '{"v":1}');
    await broker.commitSession(sid, '{"v":2}');
    assert.equal(await broker.restoreSession(sid), '{"v":2}');
    await broker.touchSession(uid("missing")); // no-op
    assert.equal(await broker.restoreSession(uid("missing")), null);
  });

  test("sessions: large states round-trip and survive touch", {}, async ({ broker, uid }) => {
    const sid = uid("sid");
    const state = JSON.stringify({
      ids: Array.from({ length: 10_000 }, (_, i) => `ch\u00e9-${i}`),
    });
    await broker.commitSession(sid, state);
    await broker.touchSession(sid);
    assert.ok((await broker.restoreSession(sid)) === state);
    await broker.commitSession(sid, "small");
    assert.equal(await broker.restoreSession(sid), "small");
  });

  test(
    "sessions expire sessionsTtl after the last commit or touch",
    { sessionsTtl: 300 },
    async (c) => {
      const { broker, clock } = c;
      const sid = c.uid("sid");
      await broker.commitSession(sid, "state");
      clock.advance(299_000);
      assert.equal(await broker.restoreSession(sid), "state");
      await broker.touchSession(sid);
      clock.advance(299_000);
      assert.equal(await broker.restoreSession(sid), "state");
      clock.advance(2_000);
      assert.equal(await broker.restoreSession(sid), null);
      await broker.touchSession(sid); // too late: does not resurrect
      assert.equal(await broker.restoreSession(sid), null);
      await broker.commitSession(sid, "again");
      assert.equal(await broker.restoreSession(sid), "again");
    },
    true,
  );

  test("presence: join once per id, leave with the last session", {}, async (c) => {
    const { broker } = c;
    const stream = c.uid("p");
    const [s1, s2, s3] = [c.uid("s1"), c.uid("s2"), c.uid("s3")];
    const jack = { name: "Jack" };
    assert.deepEqual(await broker.presenceInfo(stream), { total: 0, records: [] });
    assert.deepEqual(await broker.presenceAdd(stream, s1, "u1", jack), {
      type: "join",
      id: "u1",
      info: jack,
    });
    assert.equal(await broker.presenceAdd(stream, s2, "u1", jack), null); // same id, 2nd session
    assert.equal(await broker.presenceAdd(stream, s1, "u1", jack), null); // same session again
    assert.deepEqual(await broker.presenceAdd(stream, s3, "u2", { name: "Jill" }), {
      type: "join",
      id: "u2",
      info: { name: "Jill" },
    });
    assert.deepEqual(sortInfo(await broker.presenceInfo(stream)), {
      total: 2,
      records: [{ id: "u1", info: jack }, { id: "u2", info: { name: "Jill" } }],
    });
    assert.equal(await broker.presenceRemove(stream, s1), null);
    assert.equal(await broker.presenceRemove(stream, s1), null); // already gone
    assert.deepEqual(await broker.presenceRemove(stream, s2), { type: "leave", id: "u1" });
    assert.equal(await broker.presenceRemove(stream, c.uid("nobody")), null);
    assert.deepEqual(await broker.presenceInfo(stream), {
      total: 1,
      records: [{ id: "u2", info: { name: "Jill" } }],
    });
    assert.deepEqual(await broker.presenceRemove(stream, s3), { type: "leave", id: "u2" });
    assert.deepEqual(await broker.presenceInfo(stream), { total: 0, records: [] });
  });

  test("presence: a session cannot change its id in a stream", {}, async (c) => {
    const { broker } = c;
    const [a, b] = [c.uid("pa"), c.uid("pb")];
    const sid = c.uid("sid");
    await broker.presenceAdd(a, sid, "u1", { n: 1 });
    await assert.rejects(broker.presenceAdd(a, sid, "u2", { n: 2 }), Error);
    assert.deepEqual(await broker.presenceInfo(a), {
      total: 1,
      records: [{ id: "u1", info: { n: 1 } }],
    });
    // Another stream is independent.
    assert.deepEqual(await broker.presenceAdd(b, sid, "u2", { n: 2 }), {
      type: "join",
      id: "u2",
      info: { n: 2 },
    });
  });

  test("presence: untouched entries expire into leave events", { presenceTtl: 15 }, async (c) => {
    const { broker, clock } = c;
    const [a, b] = [c.uid("pa"), c.uid("pb")];
    const [s1, s2, s3, s4] = [c.uid("s1"), c.uid("s2"), c.uid("s3"), c.uid("s4")];
    await broker.presenceAdd(a, s1, "u1", {});
    await broker.presenceAdd(b, s1, "u1", {});
    await broker.presenceAdd(a, s2, "u2", {});
    await broker.presenceAdd(a, s3, "u3", {}); // u3 has two sessions: s3 goes stale, s4 lives
    await broker.presenceAdd(a, s4, "u3", {});
    const expire = async () =>
      sortExpired(await broker.presenceExpire()).filter((e) => e.stream === a || e.stream === b);
    clock.advance(10_000);
    assert.deepEqual(await expire(), []);
    await broker.presenceTouch(s2);
    await broker.presenceTouch(s4);
    clock.advance(6_000); // s1 and s3 untouched for 16 s, s2 and s4 for 6 s
    assert.deepEqual(await expire(), [
      { stream: a, event: { type: "leave", id: "u1" } },
      { stream: b, event: { type: "leave", id: "u1" } },
    ]);
    assert.deepEqual(await expire(), []);
    assert.deepEqual(sortInfo(await broker.presenceInfo(a)), {
      total: 2,
      records: [{ id: "u2", info: {} }, { id: "u3", info: {} }],
    });
    assert.deepEqual(await broker.presenceInfo(b), { total: 0, records: [] });
    assert.equal(await broker.presenceRemove(a, s1), null); // already expired
    assert.deepEqual(await broker.presenceRemove(a, s4), { type: "leave", id: "u3" });
    clock.advance(16_000);
    assert.deepEqual(await expire(), [{ stream: a, event: { type: "leave", id: "u2" } }]);
  }, true);
}
