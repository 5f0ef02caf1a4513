import type {
  Broker,
  BrokerOptions,
  ExpiredPresence,
  PresenceEvent,
  PresenceInfo,
  StreamMessage,
  StreamMessageMeta,
} from "./broker.ts";
import { HistoryError } from "./broker.ts";
import { newEpoch } from "./epoch.ts";
import {
  checkHistoryOffset,
  historyExpired,
  storedSeconds,
  streamForgotten,
} from "./history_rules.ts";
import { deleteChunks, type PackedText, packText, unpackText } from "./kv_chunks.ts";
import { TrimWarning } from "./trim_warning.ts";
import { KvPresence } from "./kv_presence.ts";
import { retryBusy, RetryingKv } from "./kv_retry.ts";

export type KvBrokerOptions = BrokerOptions & {
  /** Database path; undefined or "" -> `Deno.openKv()`'s default (Deno Deploy's); ":memory:" ok. */
  path?: string;
  /** An already open database; the broker then never closes it. */
  kv?: Deno.Kv;
  /** Prefix of every key the broker writes; default `["cableway"]`. */
  prefix?: Deno.KvKey;
};

/** `[prefix, "o", stream]`: the stream's offset counter and the time of its last message. */
interface Counter {
  last: number;
  time: number;
}

/** `[prefix, "h", stream, offset]`, chunks under `[prefix, "hc", stream, offset]`. */
type HistoryEntry = { time: number; meta?: StreamMessageMeta } & PackedText;

/** `[prefix, "s", sid]`, chunks under `[prefix, "sc", sid, gen]` (gen: one per commit). */
type SessionEntry = { expiresAt: number; gen: string } & PackedText;

/** Optimistic updates give up after this many conflicts in a row. */
const MAX_ATTEMPTS = 1000;

/** `expireIn` for a TTL in seconds; Deno KV deletes lazily, so reads also check stored times. */
function expireIn(seconds: number): { expireIn: number } {
  return { expireIn: Math.max(1, seconds) * 1000 };
}

/**
 * Broker over Deno KV: one epoch per database (and prefix), created once atomically; offsets,
 * history, sessions and presence shared by every process using the same database. Offsets are
 * assigned by a check-and-set loop that writes the counter and the message in one atomic
 * operation, so concurrent publishers never get duplicate or skipped offsets. Within one
 * process, stores to the same stream are queued to avoid needless conflicts (and so keep
 * their call order).
 */
export class KvBroker implements Broker {
  readonly name = "kv";
  readonly persistent = true;

  readonly #opts: KvBrokerOptions;
  readonly #now: () => number;
  readonly #prefix: Deno.KvKey;
  readonly #queues = new Map<string, Promise<void>>();
  #kv?: RetryingKv;
  #owned = false;
  #closed = false;
  #epoch = "";
  #presence?: KvPresence;
  readonly #trimWarning: TrimWarning;

  constructor(opts: KvBrokerOptions) {
    this.#opts = opts;
    this.#trimWarning = new TrimWarning({ ...opts, logger: opts.logger?.child({ broker: "kv" }) });
    this.#now = opts.now ?? Date.now;
    this.#prefix = opts.prefix ?? ["cableway"];
  }

  /** Opens the database (error message names the path) and reads or creates the epoch. */
  async start(): Promise<void> {
    if (this.#kv || this.#closed) return;
    let kv = this.#opts.kv;
    if (!kv) {
      const path = this.#opts.path || undefined;
      try {
        kv = await retryBusy(() => Deno.openKv(path));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`cannot open Deno KV database ${path ?? "(default)"}: ${reason}`, {
          cause: err,
        });
      }
      this.#owned = true;
    }
    const db = new RetryingKv(kv);
    try {
      this.#epoch = await this.#loadEpoch(db);
    } catch (err) {
      if (this.#owned) kv.close();
      throw err;
    }
    this.#presence = new KvPresence(db, this.#prefix, this.#opts.presenceTtl, this.#now);
    this.#kv = db;
  }

  /** Closes the database only if `start()` opened it. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#owned) this.#kv?.kv.close();
    this.#kv = undefined;
    this.#presence = undefined;
    return Promise.resolve();
  }

  epoch(): Promise<string> {
    return this.#use(() => Promise.resolve(this.#epoch));
  }

  store(msg: StreamMessage): Promise<StreamMessage> {
    return this.#use((kv) => this.#serial(msg.stream, () => this.#store(kv, msg)));
  }

  async historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]> {
    const kv = this.#db();
    if (epoch !== this.#epoch) {
      throw new HistoryError(`unknown epoch ${epoch}, current is ${this.#epoch}`);
    }
    const window = await this.#window(kv, stream, this.#now());
    if (!window) throw new HistoryError(`stream ${stream} not found`);
    const oldest = window.entries[0];
    checkHistoryOffset(stream, offset, {
      latest: window.latest,
      oldest: oldest && offsetOf(oldest),
    });
    return await this.#messages(kv, stream, window.entries.filter((e) => offsetOf(e) > offset));
  }

  async historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]> {
    const kv = this.#db();
    const window = await this.#window(kv, stream, this.#now());
    if (!window) return [];
    const entries = window.entries.filter((e) => storedSeconds(e.value.time) >= sinceSeconds);
    return await this.#messages(kv, stream, entries);
  }

  async commitSession(sid: string, state: string): Promise<void> {
    const kv = this.#db();
    const ttl = this.#opts.sessionsTtl;
    const gen = newEpoch(8);
    const op = kv.atomic();
    const packed = packText(op, this.#key("sc", sid, gen), state, expireIn(ttl));
    const entry: SessionEntry = { expiresAt: this.#now() + ttl * 1000, gen, ...packed };
    await kv.commit(op.set(this.#key("s", sid), entry, expireIn(ttl)));
  }

  async restoreSession(sid: string): Promise<string | null> {
    const kv = this.#db();
    const e = await kv.get<SessionEntry>(this.#key("s", sid));
    if (!e.value || this.#now() >= e.value.expiresAt) return null;
    return await unpackText(kv, this.#key("sc", sid, e.value.gen), e.value);
  }

  /** Extends a live session (chunks included); a conflicting commit or touch wins. */
  async touchSession(sid: string): Promise<void> {
    const kv = this.#db();
    const ttl = this.#opts.sessionsTtl;
    const e = await kv.get<SessionEntry>(this.#key("s", sid));
    const now = this.#now();
    if (!e.value || now >= e.value.expiresAt) return;
    const op = kv.atomic().check(e);
    if ("chunks" in e.value) {
      const chunkKey = this.#key("sc", sid, e.value.gen);
      const state = await unpackText(kv, chunkKey, e.value);
      if (state === null) return;
      packText(op, chunkKey, state, expireIn(ttl));
    }
    const entry: SessionEntry = { ...e.value, expiresAt: now + ttl * 1000 };
    await kv.commit(op.set(e.key, entry, expireIn(ttl)));
  }

  presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null> {
    return this.#use((_, presence) => presence.add(stream, sid, id, info));
  }

  presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null> {
    return this.#use((_, presence) => presence.remove(stream, sid));
  }

  presenceInfo(stream: string): Promise<PresenceInfo> {
    return this.#use((_, presence) => presence.info(stream));
  }

  presenceTouch(sid: string): Promise<void> {
    return this.#use((_, presence) => presence.touch(sid));
  }

  presenceExpire(): Promise<ExpiredPresence[]> {
    return this.#use((_, presence) => presence.expire());
  }

  async #store(kv: RetryingKv, msg: StreamMessage): Promise<StreamMessage> {
    const { historyLimit, historyTtl } = this.#opts;
    const counterKey = this.#key("o", msg.stream);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.#now();
      let trimmedAt: number | undefined;
      const counter = await kv.get<Counter>(counterKey);
      const live = counter.value && !streamForgotten(counter.value.time, now, historyTtl);
      const offset = (live ? counter.value!.last : 0) + 1;
      const op = kv.atomic()
        .check(counter)
        .set(counterKey, { last: offset, time: now } satisfies Counter, expireIn(10 * historyTtl));
      if (historyLimit > 0) {
        const chunkKey = this.#key("hc", msg.stream, offset);
        const entry: HistoryEntry = {
          time: now,
          ...packText(op, chunkKey, msg.data, expireIn(historyTtl)),
        };
        if (msg.meta) entry.meta = msg.meta;
        op.set(this.#key("h", msg.stream, offset), entry, expireIn(historyTtl));
        const trim = offset - historyLimit;
        if (trim >= 1) {
          const old = await kv.get<HistoryEntry>(this.#key("h", msg.stream, trim));
          if (old.value) {
            trimmedAt = old.value.time;
            op.delete(old.key);
            deleteChunks(op, this.#key("hc", msg.stream, trim), old.value);
          }
        }
      }
      if ((await kv.commit(op)).ok) {
        if (trimmedAt !== undefined) this.#trimWarning.trimmed(msg.stream, trimmedAt, now);
        return { ...msg, offset, epoch: this.#epoch };
      }
    }
    throw new Error(`offset allocation for stream ${msg.stream} kept conflicting`);
  }

  /** The stream's latest offset and its retained, unexpired entries (oldest first). */
  async #window(
    kv: RetryingKv,
    stream: string,
    now: number,
  ): Promise<{ latest: number; entries: Deno.KvEntry<HistoryEntry>[] } | null> {
    const { historyLimit, historyTtl } = this.#opts;
    const counter = await kv.get<Counter>(this.#key("o", stream));
    if (!counter.value || streamForgotten(counter.value.time, now, historyTtl)) return null;
    const latest = counter.value.last;
    const entries: Deno.KvEntry<HistoryEntry>[] = [];
    if (historyLimit > 0) {
      const start = this.#key("h", stream, Math.max(1, latest - historyLimit + 1));
      const end = this.#key("h", stream, latest + 1);
      for (const e of await kv.list<HistoryEntry>({ start, end })) {
        if (!historyExpired(e.value.time, now, historyTtl)) entries.push(e);
      }
    }
    return { latest, entries };
  }

  async #messages(
    kv: RetryingKv,
    stream: string,
    entries: Deno.KvEntry<HistoryEntry>[],
  ): Promise<StreamMessage[]> {
    const out: StreamMessage[] = [];
    for (const e of entries) {
      const offset = offsetOf(e);
      const data = await unpackText(kv, this.#key("hc", stream, offset), e.value);
      if (data === null) throw new HistoryError(`message ${offset} of ${stream} is incomplete`);
      const msg: StreamMessage = { stream, data, offset, epoch: this.#epoch };
      if (e.value.meta) msg.meta = e.value.meta;
      out.push(msg);
    }
    return out;
  }

  /** The database's epoch; the first process to get here creates it, the others read it. */
  async #loadEpoch(kv: RetryingKv): Promise<string> {
    const key = this.#key("epoch");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await kv.get<string>(key);
      if (typeof current.value === "string" && current.value !== "") return current.value;
      const epoch = newEpoch();
      if ((await kv.commit(kv.atomic().check(current).set(key, epoch))).ok) return epoch;
    }
    throw new Error("epoch creation kept conflicting");
  }

  /** Runs `task` after the previous task queued under `key` settled. */
  #serial<T>(key: string, task: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(() => {}, () => {});
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  #db(): RetryingKv {
    if (!this.#kv) throw new Error(`KvBroker is ${this.#closed ? "closed" : "not started"}`);
    return this.#kv;
  }

  /** Runs `fn` on the open database; rejects (never throws) when it is not open. */
  async #use<T>(fn: (kv: RetryingKv, presence: KvPresence) => Promise<T>): Promise<T> {
    const kv = this.#db();
    return await fn(kv, this.#presence!);
  }

  #key(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#prefix, ...parts];
  }
}

function offsetOf(e: Deno.KvEntry<unknown>): number {
  return e.key[e.key.length - 1] as number;
}
