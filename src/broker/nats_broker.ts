/**
 * NATS JetStream broker: history, epoch, sessions and presence shared by every node, in KV
 * buckets `<prefix>_epoch`, `<prefix>_offsets`, `<prefix>_history`, `<prefix>_sessions` and
 * `<prefix>_presence`. Bucket max ages only garbage-collect: expiry follows `opts.now`.
 *
 * Exact offsets without a lock: the stream's counter document `{gen, seq, last}` names the
 * last offset; a publisher claims `seq + 1` by *creating* the history key for it (create
 * fails if the key exists, so one publisher wins), then advances the counter with a revision
 * check. A publisher that finds the next key already taken first brings the counter up to
 * it (so a crash between the two writes leaves no gap) and tries again. `gen` changes when a
 * stream is forgotten (10 x historyTtl idle), so its offsets restart at 1 on fresh keys.
 *
 * While NATS is down every call rejects at once with NatsUnavailableError.
 */
import type { KV } from "nats";
import { type Logger, silentLogger } from "../logger/logger.ts";
import { NatsLink, NatsUnavailableError } from "../util/nats_connection.ts";
import {
  type Broker,
  type BrokerOptions,
  type ExpiredPresence,
  HistoryError,
  type PresenceEvent,
  type PresenceInfo,
  type StreamMessage,
  type StreamMessageMeta,
} from "./broker.ts";
import { newEpoch } from "./epoch.ts";
import {
  checkHistoryOffset,
  historyExpired,
  storedSeconds,
  streamForgotten,
} from "./history_rules.ts";
import {
  createJson,
  keyToken,
  KvConflictError,
  MAX_ATTEMPTS,
  modifyJson,
  readJson,
  writeJsonIfUnchanged,
} from "./nats_kv.ts";
import { NatsPresence } from "./nats_presence.ts";

export { PresenceConflictError } from "./nats_presence.ts";

export type NatsBrokerOptions = BrokerOptions & {
  /** `nats://host:port`, a comma-separated list, or an array of them. */
  servers: string | string[];
  /** `--nats_dont_randomize_servers`: try the servers in the given order. */
  noRandomize?: boolean;
  /** Bucket name prefix; default `cableway`. */
  prefix?: string;
  /** JetStream storage of new buckets; default "file". */
  storage?: "file" | "memory";
  /** Replicas of new buckets; default 1. */
  replicas?: number;
  logger?: Logger;
};

export class BrokerNotStartedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BrokerNotStartedError";
  }
}

interface Counter {
  /** Generation of the stream's keys; new after the stream was forgotten. */
  gen: string;
  /** Last offset given out. */
  seq: number;
  /** Time of the last store, ms. */
  last: number;
}

interface StoredEntry {
  d: string;
  t: number;
  m?: StreamMessageMeta;
}

interface SessionDoc {
  state: string;
  exp: number;
}

interface Buckets {
  epoch: KV;
  offsets: KV;
  history: KV;
  sessions: KV;
  presence: NatsPresence;
}

/** Extra lifetime of bucket max ages over the logical expiry they back up. */
const GC_MARGIN_MS = 5000;
/** History entries fetched concurrently. */
const READ_BATCH = 100;

export class NatsBroker implements Broker {
  readonly name = "nats";
  readonly persistent = true;
  readonly #opts: NatsBrokerOptions;
  readonly #now: () => number;
  readonly #logger: Logger;
  #link?: NatsLink;
  #buckets?: Buckets;
  #closed = false;

  constructor(opts: NatsBrokerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#logger = (opts.logger ?? silentLogger).child({ broker: "nats" });
  }

  async start(): Promise<void> {
    if (this.#link || this.#closed) return;
    const link = await NatsLink.open({
      servers: this.#opts.servers,
      logger: this.#logger,
      name: "cableway-broker",
      noRandomize: this.#opts.noRandomize,
    });
    if (this.#closed) {
      await link.close();
      return;
    }
    this.#link = link;
    try {
      this.#buckets = await this.#openBuckets(link);
    } catch (err) {
      await link.close();
      this.#link = undefined;
      throw err;
    }
    this.#logger.info("broker started", { epoch: await this.epoch() });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#link?.close();
  }

  async epoch(): Promise<string> {
    const { epoch } = this.#ready();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await readJson<string>(epoch, "epoch");
      if (read.value) return read.value;
      const candidate = newEpoch();
      if (await writeJsonIfUnchanged(epoch, "epoch", candidate, read)) return candidate;
    }
    throw new KvConflictError("epoch creation kept conflicting");
  }

  async store(msg: StreamMessage): Promise<StreamMessage> {
    const { offsets, history } = this.#ready();
    const epoch = await this.epoch();
    const key = keyToken(msg.stream);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.#now();
      const read = await readJson<Counter>(offsets, key);
      const counter = read.value;
      if (!counter || streamForgotten(counter.last, now, this.#opts.historyTtl)) {
        // New generation: offsets restart at 1 on keys nobody used.
        await writeJsonIfUnchanged(offsets, key, { gen: newEpoch(6), seq: 0, last: now }, read);
        continue;
      }
      const offset = counter.seq + 1;
      const entry: StoredEntry = { d: msg.data, t: now };
      if (msg.meta) entry.m = msg.meta;
      const claimed = await createJson(history, entryKey(key, counter.gen, offset), entry);
      // Whether we claimed `offset` or found it taken, the counter must now reach it.
      const advanced = { gen: counter.gen, seq: offset, last: Math.max(counter.last, now) };
      await writeJsonIfUnchanged(offsets, key, advanced, read);
      if (claimed) return { ...msg, offset, epoch };
    }
    throw new KvConflictError(`store into stream ${msg.stream} kept conflicting`);
  }

  async historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]> {
    const current = await this.epoch();
    if (epoch !== current) throw new HistoryError(`unknown epoch ${epoch}, current is ${current}`);
    const { latest, entries } = await this.#read(stream);
    if (latest === 0) throw new HistoryError(`stream ${stream} not found`);
    checkHistoryOffset(stream, offset, { latest, oldest: entries[0]?.offset });
    return entries.filter((e) => e.offset > offset).map((e) => e.toMessage(stream, current));
  }

  async historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]> {
    const epoch = await this.epoch();
    const { entries } = await this.#read(stream);
    return entries
      .filter((e) => storedSeconds(e.time) >= sinceSeconds)
      .map((e) => e.toMessage(stream, epoch));
  }

  async commitSession(sid: string, state: string): Promise<void> {
    const { sessions } = this.#ready();
    const doc: SessionDoc = { state, exp: this.#now() + this.#opts.sessionsTtl * 1000 };
    await sessions.put(keyToken(sid), new TextEncoder().encode(JSON.stringify(doc)));
  }

  async restoreSession(sid: string): Promise<string | null> {
    const { sessions } = this.#ready();
    const { value } = await readJson<SessionDoc>(sessions, keyToken(sid));
    if (!value || value.exp <= this.#now()) return null;
    return value.state;
  }

  async touchSession(sid: string): Promise<void> {
    const { sessions } = this.#ready();
    const now = this.#now();
    await modifyJson<SessionDoc, void>(sessions, keyToken(sid), (cur) => {
      if (!cur || cur.exp <= now) return { result: undefined }; // expired: not revived
      return { next: { ...cur, exp: now + this.#opts.sessionsTtl * 1000 }, result: undefined };
    });
  }

  async presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null> {
    return await this.#ready().presence.add(stream, sid, id, info);
  }

  async presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null> {
    return await this.#ready().presence.remove(stream, sid);
  }

  async presenceInfo(stream: string): Promise<PresenceInfo> {
    return await this.#ready().presence.info(stream);
  }

  async presenceTouch(sid: string): Promise<void> {
    return await this.#ready().presence.touch(sid);
  }

  async presenceExpire(): Promise<ExpiredPresence[]> {
    return await this.#ready().presence.expire();
  }

  /** The stream's latest offset (0 = unknown or forgotten) and its live entries, in order. */
  async #read(stream: string): Promise<{ latest: number; entries: Entry[] }> {
    const { offsets, history } = this.#ready();
    const now = this.#now();
    const { historyLimit, historyTtl } = this.#opts;
    const key = keyToken(stream);
    const { value: counter } = await readJson<Counter>(offsets, key);
    if (!counter || counter.seq === 0 || streamForgotten(counter.last, now, historyTtl)) {
      return { latest: 0, entries: [] };
    }
    const first = Math.max(1, counter.seq - Math.max(0, historyLimit) + 1);
    const entries: Entry[] = [];
    for (let start = first; start <= counter.seq; start += READ_BATCH) {
      const offsetsInBatch: number[] = [];
      for (let o = start; o <= Math.min(counter.seq, start + READ_BATCH - 1); o++) {
        offsetsInBatch.push(o);
      }
      const docs = await Promise.all(
        offsetsInBatch.map((o) => readJson<StoredEntry>(history, entryKey(key, counter.gen, o))),
      );
      docs.forEach((doc, i) => {
        if (doc.value && !historyExpired(doc.value.t, now, historyTtl)) {
          entries.push(new Entry(offsetsInBatch[i], doc.value));
        }
      });
    }
    return { latest: counter.seq, entries };
  }

  async #openBuckets(link: NatsLink): Promise<Buckets> {
    const js = link.nc.jetstream({ timeout: 5000 });
    const prefix = this.#opts.prefix ?? "cableway";
    const { historyTtl, sessionsTtl, presenceTtl } = this.#opts;
    // Several nodes starting together race to create the buckets: the loser gets
    // "subjects overlap" / "already in use" and simply binds to the winner's bucket.
    const open = async (name: string, ttlMs?: number) => {
      for (let attempt = 0;; attempt++) {
        try {
          return await create(name, ttlMs);
        } catch (err) {
          const raced = /overlap|already in use|exists/i.test(String(err));
          if (!raced || attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
        }
      }
    };
    const create = (name: string, ttlMs?: number) =>
      js.views.kv(
        `${prefix}_${name}`,
        {
          history: 1,
          storage: this.#opts.storage === "memory" ? "memory" : "file",
          replicas: this.#opts.replicas ?? 1,
          ...(ttlMs ? { ttl: ttlMs + GC_MARGIN_MS } : {}),
        } as Parameters<typeof js.views.kv>[1],
      );
    const [epoch, offsets, history, sessions, presence] = await Promise.all([
      open("epoch"),
      open("offsets", 10 * historyTtl * 1000),
      open("history", historyTtl * 1000),
      open("sessions", sessionsTtl * 1000),
      open("presence", 10 * presenceTtl * 1000),
    ]);
    return {
      epoch,
      offsets,
      history,
      sessions,
      presence: new NatsPresence(presence, presenceTtl, this.#now),
    };
  }

  #ready(): Buckets {
    if (this.#closed) throw new BrokerNotStartedError("nats broker is closed");
    if (!this.#buckets || !this.#link) {
      throw new BrokerNotStartedError("nats broker is not started");
    }
    if (!this.#link.connected) throw new NatsUnavailableError("nats broker: nats is unavailable");
    return this.#buckets;
  }
}

class Entry {
  readonly offset: number;
  readonly data: string;
  readonly time: number;
  readonly meta?: StreamMessageMeta;

  constructor(offset: number, stored: StoredEntry) {
    this.offset = offset;
    this.data = stored.d;
    this.time = stored.t;
    if (stored.m) this.meta = stored.m;
  }

  toMessage(stream: string, epoch: string): StreamMessage {
    const msg: StreamMessage = { stream, data: this.data, offset: this.offset, epoch };
    if (this.meta) msg.meta = this.meta;
    return msg;
  }
}

function entryKey(streamToken: string, gen: string, offset: number): string {
  return `${streamToken}.${gen}.${offset}`;
}
