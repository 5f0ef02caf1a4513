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
import { MemoryPresence } from "./memory_presence.ts";
import { TrimWarning } from "./trim_warning.ts";

export type MemoryBrokerOptions = BrokerOptions & {
  /** Fixed epoch (tests); a random 4-character id per instance otherwise. */
  epoch?: string;
};

interface Entry {
  offset: number;
  data: string;
  meta?: StreamMessageMeta;
  /** Store time, ms. */
  time: number;
}

interface MemStream {
  last: number;
  /** Time of the last store, ms; the stream is forgotten 10 x historyTtl after it. */
  lastTime: number;
  /** Retained messages, oldest first, offsets contiguous. */
  entries: Entry[];
}

interface MemSession {
  state: string;
  expiresAt: number;
}

/** A full sweep of expired streams and sessions runs at most this often (driven by calls). */
const SWEEP_EVERY_MS = 1000;

/**
 * Single-process broker (docs/protocol.md#broker-storage). No timers: expiry is evaluated against
 * `opts.now` whenever the broker is used, plus a cheap full sweep at most once a second so
 * idle streams and sessions do not accumulate. Presence entries go away only through
 * `presenceExpire()` (or removal), because expiring them must produce leave events.
 */
export class MemoryBroker implements Broker {
  readonly name = "memory";
  readonly persistent = true;

  readonly #opts: BrokerOptions;
  readonly #now: () => number;
  readonly #epoch: string;
  readonly #streams = new Map<string, MemStream>();
  readonly #sessions = new Map<string, MemSession>();
  readonly #presence = new MemoryPresence();
  #lastSweep = Number.NEGATIVE_INFINITY;
  readonly #trimWarning: TrimWarning;

  constructor(opts: MemoryBrokerOptions) {
    this.#opts = opts;
    this.#trimWarning = new TrimWarning({
      ...opts,
      logger: opts.logger?.child({ broker: "memory" }),
    });
    this.#now = opts.now ?? Date.now;
    this.#epoch = opts.epoch || newEpoch();
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Drops all state; the broker stays usable (empty) afterwards. */
  close(): Promise<void> {
    this.#streams.clear();
    this.#sessions.clear();
    this.#presence.clear();
    return Promise.resolve();
  }

  epoch(): Promise<string> {
    return Promise.resolve(this.#epoch);
  }

  store(msg: StreamMessage): Promise<StreamMessage> {
    const now = this.#tick();
    let stream = this.#live(msg.stream, now);
    if (!stream) {
      stream = { last: 0, lastTime: now, entries: [] };
      this.#streams.set(msg.stream, stream);
    }
    const offset = ++stream.last;
    stream.lastTime = now;
    const entry: Entry = { offset, data: msg.data, time: now };
    if (msg.meta) entry.meta = msg.meta;
    stream.entries.push(entry);
    const overflow = stream.entries.length - this.#opts.historyLimit;
    if (overflow > 0 && this.#opts.historyLimit > 0) {
      this.#trimWarning.trimmed(msg.stream, stream.entries[overflow - 1].time, now);
    }
    this.#trim(stream, now);
    return Promise.resolve({ ...msg, offset, epoch: this.#epoch });
  }

  historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]> {
    const now = this.#tick();
    if (epoch !== this.#epoch) {
      return Promise.reject(new HistoryError(`unknown epoch ${epoch}, current is ${this.#epoch}`));
    }
    const s = this.#live(stream, now);
    if (!s) return Promise.reject(new HistoryError(`stream ${stream} not found`));
    try {
      checkHistoryOffset(stream, offset, { latest: s.last, oldest: s.entries[0]?.offset });
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(
      s.entries.filter((e) => e.offset > offset).map((e) => this.#message(stream, e)),
    );
  }

  historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]> {
    const now = this.#tick();
    const s = this.#live(stream, now);
    if (!s) return Promise.resolve([]);
    return Promise.resolve(
      s.entries
        .filter((e) => storedSeconds(e.time) >= sinceSeconds)
        .map((e) => this.#message(stream, e)),
    );
  }

  commitSession(sid: string, state: string): Promise<void> {
    const now = this.#tick();
    this.#sessions.set(sid, { state, expiresAt: now + this.#opts.sessionsTtl * 1000 });
    return Promise.resolve();
  }

  restoreSession(sid: string): Promise<string | null> {
    const now = this.#tick();
    return Promise.resolve(this.#session(sid, now)?.state ?? null);
  }

  touchSession(sid: string): Promise<void> {
    const now = this.#tick();
    const session = this.#session(sid, now);
    if (session) session.expiresAt = now + this.#opts.sessionsTtl * 1000;
    return Promise.resolve();
  }

  presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null> {
    try {
      return Promise.resolve(this.#presence.add(stream, sid, id, info, this.#tick()));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null> {
    return Promise.resolve(this.#presence.remove(stream, sid));
  }

  presenceInfo(stream: string): Promise<PresenceInfo> {
    return Promise.resolve(this.#presence.info(stream));
  }

  presenceTouch(sid: string): Promise<void> {
    this.#presence.touch(sid, this.#tick());
    return Promise.resolve();
  }

  presenceExpire(): Promise<ExpiredPresence[]> {
    const now = this.#tick();
    return Promise.resolve(this.#presence.expire(now, this.#opts.presenceTtl * 1000));
  }

  /** The current time; also runs the periodic sweep when it is due. */
  #tick(): number {
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      for (const name of [...this.#streams.keys()]) this.#live(name, now);
      for (const sid of [...this.#sessions.keys()]) this.#session(sid, now);
    }
    return now;
  }

  /** The stream with expired messages dropped, or undefined (and forgotten) when too old. */
  #live(name: string, now: number): MemStream | undefined {
    const stream = this.#streams.get(name);
    if (!stream) return undefined;
    if (streamForgotten(stream.lastTime, now, this.#opts.historyTtl)) {
      this.#streams.delete(name);
      return undefined;
    }
    this.#trim(stream, now);
    return stream;
  }

  #trim(stream: MemStream, now: number): void {
    const { historyLimit, historyTtl } = this.#opts;
    const entries = stream.entries;
    let cut = Math.max(0, entries.length - Math.max(0, historyLimit));
    while (cut < entries.length && historyExpired(entries[cut].time, now, historyTtl)) cut++;
    if (cut > 0) entries.splice(0, cut);
  }

  #session(sid: string, now: number): MemSession | undefined {
    const session = this.#sessions.get(sid);
    if (session && now >= session.expiresAt) {
      this.#sessions.delete(sid);
      return undefined;
    }
    return session;
  }

  #message(stream: string, e: Entry): StreamMessage {
    const msg: StreamMessage = { stream, data: e.data, offset: e.offset, epoch: this.#epoch };
    if (e.meta) msg.meta = e.meta;
    return msg;
  }
}
