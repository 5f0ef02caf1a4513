import type { RedisSettings } from "../util/redis_settings.ts";
/**
 * Redis broker: history, epoch, sessions and presence shared by every node of a cluster.
 * All mutations are Lua scripts (see redis_broker_scripts.ts), so offsets are exact and atomic
 * with any number of concurrent publishers and nodes. Expiry follows `opts.now` (checked when
 * data is read), with Redis TTLs as garbage collection; one epoch per Redis database, created
 * with the first use and re-created if the database was wiped.
 *
 * While Redis is down every call rejects at once with RedisUnavailableError (nothing is
 * queued); the connection keeps retrying in the background.
 */
import { type Logger, silentLogger } from "../logger/logger.ts";
import type { RedisScript } from "../util/redis_script.ts";
import {
  isReplyError,
  isServerError,
  LIVENESS,
  RedisConnection,
  type RedisReply,
  RedisUnavailableError,
} from "../util/redis_connection.ts";
import {
  type Broker,
  type BrokerOptions,
  type ExpiredPresence,
  HistoryError,
  type PresenceEvent,
  type PresenceInfo,
  type PresenceRecord,
  type StreamMessage,
  type StreamMessageMeta,
} from "./broker.ts";
import { newEpoch } from "./epoch.ts";
import { TrimWarning } from "./trim_warning.ts";
import { checkHistoryOffset, historyExpired, storedSeconds } from "./history_rules.ts";
import {
  COMMIT_SESSION,
  EPOCH,
  PRESENCE_ADD,
  PRESENCE_EXPIRE,
  PRESENCE_REMOVE,
  PRESENCE_TOUCH,
  READ_HISTORY,
  STORE,
  TOUCH_SESSION,
} from "./redis_broker_scripts.ts";

export type RedisBrokerOptions = BrokerOptions & {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Sentinel, TLS and keepalive settings (see redis_settings.ts). */
  redis?: RedisSettings;
  /** Key prefix; default `cableway:`. */
  prefix?: string;
  logger?: Logger;
};

export class PresenceConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PresenceConflictError";
  }
}

export class BrokerNotStartedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BrokerNotStartedError";
  }
}

/** Extra lifetime of Redis TTLs over the logical expiry they back up. */
const GC_MARGIN_MS = 1000;
const EXPIRE_BATCH = 500;

interface Entry {
  offset: number;
  data: string;
  time: number;
  meta?: StreamMessageMeta;
}

export class RedisBroker implements Broker {
  readonly name = "redis";
  readonly persistent = true;
  readonly #opts: RedisBrokerOptions;
  readonly #now: () => number;
  readonly #prefix: string;
  readonly #logger: Logger;
  #conn?: RedisConnection;
  #closed = false;
  readonly #trimWarning: TrimWarning;

  constructor(opts: RedisBrokerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#prefix = opts.prefix ?? "cableway:";
    this.#logger = (opts.logger ?? silentLogger).child({ broker: "redis" });
    this.#trimWarning = new TrimWarning({ ...opts, logger: this.#logger });
  }

  async start(): Promise<void> {
    if (this.#conn || this.#closed) return;
    const conn = await RedisConnection.open({
      url: this.#opts.url,
      settings: this.#opts.redis,
      logger: this.#logger,
      failWhileDown: true,
      ...LIVENESS,
    });
    if (this.#closed) {
      await conn.close();
      return;
    }
    this.#conn = conn;
    const epoch = await this.epoch();
    this.#logger.info("broker started", { redis: conn.target, epoch });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#conn?.close();
  }

  async epoch(): Promise<string> {
    return String(await this.#run(EPOCH, [this.#key("epoch")], [newEpoch()]));
  }

  async store(msg: StreamMessage): Promise<StreamMessage> {
    const now = this.#now();
    const { historyLimit, historyTtl } = this.#opts;
    const forgetMs = 10 * historyTtl * 1000;
    const reply = await this.#run(STORE, this.#historyKeys(msg.stream), [
      newEpoch(),
      now,
      Math.max(0, historyLimit),
      forgetMs,
      forgetMs + GC_MARGIN_MS,
      msg.data,
      msg.meta ? JSON.stringify(msg.meta) : "",
    ]);
    const [epoch, offset, trimmedAt] = reply as [string, number, string | number];
    if (Number(trimmedAt) > 0) this.#trimWarning.trimmed(msg.stream, Number(trimmedAt), now);
    return { ...msg, offset: Number(offset), epoch: String(epoch) };
  }

  async historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]> {
    const read = await this.#read(stream);
    if (epoch !== read.epoch) {
      throw new HistoryError(`unknown epoch ${epoch}, current is ${read.epoch}`);
    }
    if (read.latest === 0) throw new HistoryError(`stream ${stream} not found`);
    checkHistoryOffset(stream, offset, { latest: read.latest, oldest: read.entries[0]?.offset });
    return read.entries.filter((e) => e.offset > offset).map((e) => message(stream, e, epoch));
  }

  async historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]> {
    const read = await this.#read(stream);
    return read.entries
      .filter((e) => storedSeconds(e.time) >= sinceSeconds)
      .map((e) => message(stream, e, read.epoch));
  }

  async commitSession(sid: string, state: string): Promise<void> {
    const ttlMs = this.#opts.sessionsTtl * 1000;
    await this.#run(COMMIT_SESSION, [this.#key(`s:${sid}`)], [
      state,
      this.#now() + ttlMs,
      ttlMs + GC_MARGIN_MS,
    ]);
  }

  async restoreSession(sid: string): Promise<string | null> {
    const reply = await this.#command(["HMGET", this.#key(`s:${sid}`), "state", "exp"]);
    const [state, exp] = reply as [string | null, string | null];
    if (state === null || exp === null || Number(exp) <= this.#now()) return null;
    return state;
  }

  async touchSession(sid: string): Promise<void> {
    const now = this.#now();
    const ttlMs = this.#opts.sessionsTtl * 1000;
    await this.#run(TOUCH_SESSION, [this.#key(`s:${sid}`)], [
      now,
      now + ttlMs,
      ttlMs + GC_MARGIN_MS,
    ]);
  }

  async presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null> {
    const infoJson = info === undefined ? "" : JSON.stringify(info);
    let joined: RedisReply;
    try {
      joined = await this.#run(PRESENCE_ADD, [], [
        this.#prefix,
        stream,
        sid,
        id,
        infoJson,
        this.#now(),
        this.#presenceGcMs(),
      ]);
    } catch (err) {
      if (isReplyError(err, "PRESENCE_CONFLICT")) {
        throw new PresenceConflictError(
          `presence id mismatch: session ${sid} cannot join stream ${stream} as "${id}"`,
          { cause: err },
        );
      }
      throw err;
    }
    if (joined !== 1) return null;
    return info === undefined ? { type: "join", id } : { type: "join", id, info };
  }

  async presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null> {
    const id = await this.#run(PRESENCE_REMOVE, [], [this.#prefix, stream, sid]);
    return typeof id === "string" ? { type: "leave", id } : null;
  }

  async presenceInfo(stream: string): Promise<PresenceInfo> {
    const reply = await this.#command(["HGETALL", this.#key(`p:${stream}`)]);
    const fields = Array.isArray(reply) ? reply : [];
    const counts = new Map<string, number>();
    const infos = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const [field, value] = [String(fields[i]), String(fields[i + 1])];
      if (field.startsWith("c:")) counts.set(field.slice(2), Number(value));
      else if (field.startsWith("i:")) infos.set(field.slice(2), value);
    }
    const records: PresenceRecord[] = [];
    for (const [id, count] of counts) {
      if (count <= 0) continue;
      const info = infos.get(id);
      records.push(info === undefined ? { id } : { id, info: JSON.parse(info) });
    }
    return { total: records.length, records };
  }

  async presenceTouch(sid: string): Promise<void> {
    await this.#run(PRESENCE_TOUCH, [], [
      this.#prefix,
      sid,
      this.#now(),
      this.#presenceGcMs(),
    ]);
  }

  async presenceExpire(): Promise<ExpiredPresence[]> {
    const cutoff = this.#now() - this.#opts.presenceTtl * 1000;
    const out: ExpiredPresence[] = [];
    for (let round = 0; round < 100; round++) {
      const reply = await this.#run(PRESENCE_EXPIRE, [], [this.#prefix, cutoff, EXPIRE_BATCH]);
      const flat = Array.isArray(reply) ? reply.map(String) : [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        out.push({ stream: flat[i], event: { type: "leave", id: flat[i + 1] } });
      }
      if (flat.length / 2 < EXPIRE_BATCH) break;
    }
    return out;
  }

  async #read(stream: string): Promise<{ epoch: string; latest: number; entries: Entry[] }> {
    const now = this.#now();
    const { historyTtl } = this.#opts;
    const reply = await this.#run(READ_HISTORY, this.#historyKeys(stream), [
      now,
      10 * historyTtl * 1000,
    ]) as [string, number, RedisReply];
    const entries = parseEntries(reply[2]).filter((e) => !historyExpired(e.time, now, historyTtl));
    return { epoch: String(reply[0]), latest: Number(reply[1]), entries };
  }

  #historyKeys(stream: string): string[] {
    return [this.#key("epoch"), this.#key(`h:${stream}`), this.#key(`hm:${stream}`)];
  }

  #key(suffix: string): string {
    return this.#prefix + suffix;
  }

  #presenceGcMs(): number {
    return 10 * this.#opts.presenceTtl * 1000 + GC_MARGIN_MS;
  }

  #connection(): RedisConnection {
    if (this.#closed) throw new BrokerNotStartedError("redis broker is closed");
    if (!this.#conn) throw new BrokerNotStartedError("redis broker is not started");
    return this.#conn;
  }

  async #run(
    script: RedisScript,
    keys: string[],
    args: (string | number)[],
  ): Promise<RedisReply> {
    const conn = this.#connection();
    try {
      return await script.run(conn, keys, args);
    } catch (err) {
      throw wrapConnectionError(err);
    }
  }

  async #command(args: (string | number)[]): Promise<RedisReply> {
    const conn = this.#connection();
    try {
      return await conn.command(args);
    } catch (err) {
      throw wrapConnectionError(err);
    }
  }
}

/** Redis error replies pass through; a missing connection becomes RedisUnavailableError. */
function wrapConnectionError(err: unknown): unknown {
  if (isServerError(err)) return err;
  return new RedisUnavailableError("redis broker: redis is unavailable", { cause: err });
}

/** XRANGE reply: [[id, [field, value, ...]], ...]; the id's first part is the offset. */
function parseEntries(reply: RedisReply): Entry[] {
  if (!Array.isArray(reply)) return [];
  const out: Entry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || typeof item[0] !== "string" || !Array.isArray(item[1])) continue;
    const fields = item[1];
    const entry: Entry = { offset: parseInt(item[0], 10), data: "", time: 0 };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = String(fields[i + 1]);
      if (fields[i] === "d") entry.data = value;
      else if (fields[i] === "t") entry.time = Number(value);
      else if (fields[i] === "m") entry.meta = JSON.parse(value) as StreamMessageMeta;
    }
    out.push(entry);
  }
  return out;
}

function message(stream: string, e: Entry, epoch: string): StreamMessage {
  const msg: StreamMessage = { stream, data: e.data, offset: e.offset, epoch };
  if (e.meta) msg.meta = e.meta;
  return msg;
}
