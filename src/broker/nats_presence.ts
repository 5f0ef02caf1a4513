/**
 * Presence over a NATS KV bucket (docs/protocol.md#presence), correct across nodes: every change
 * is a revision-checked update of the stream's document, so exactly one node reports a given
 * join or leave. `p.<stream>` holds the stream's sessions and infos; `x.<sid>` lists the
 * streams a session is present in (for touch). Stale entries leave through `expire()`.
 */
import type { KV } from "nats";
import type { ExpiredPresence, PresenceEvent, PresenceInfo, PresenceRecord } from "./broker.ts";
import { fromKeyToken, keyToken, modifyJson, readJson } from "./nats_kv.ts";

/** Arrays of tuples rather than objects: sids and ids are arbitrary strings. */
interface StreamDoc {
  /** [sid, presence id, touched ms] */
  sessions: [string, string, number][];
  /** [presence id, info]; no entry when the info is undefined. */
  infos: [string, unknown][];
}

interface SidDoc {
  streams: string[];
}

export class PresenceConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PresenceConflictError";
  }
}

export class NatsPresence {
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(kv: KV, ttlSeconds: number, now: () => number) {
    this.#kv = kv;
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
  }

  async add(stream: string, sid: string, id: string, info: unknown): Promise<PresenceEvent | null> {
    const now = this.#now();
    const joined = await modifyJson<StreamDoc, boolean>(this.#kv, streamKey(stream), (cur) => {
      const doc = cur ?? { sessions: [], infos: [] };
      const mine = doc.sessions.find(([s]) => s === sid);
      if (mine && mine[1] !== id) {
        throw new PresenceConflictError(
          `presence id mismatch: session ${sid} is already "${mine[1]}" in stream ${stream}`,
        );
      }
      const isNew = !doc.sessions.some(([, pid]) => pid === id);
      const sessions = doc.sessions.filter(([s]) => s !== sid);
      sessions.push([sid, id, now]);
      const infos = doc.infos.filter(([pid]) => pid !== id);
      if (info !== undefined) infos.push([id, info]);
      return { next: { sessions, infos }, result: isNew };
    });
    await modifyJson<SidDoc, void>(this.#kv, sidKey(sid), (cur) => {
      const streams = cur?.streams ?? [];
      if (streams.includes(stream)) return { result: undefined };
      return { next: { streams: [...streams, stream] }, result: undefined };
    });
    if (!joined) return null;
    return info === undefined ? { type: "join", id } : { type: "join", id, info };
  }

  async remove(stream: string, sid: string): Promise<PresenceEvent | null> {
    const left = await this.#drop(stream, (s) => s === sid);
    await this.#unindex(sid, stream);
    return left.length > 0 ? { type: "leave", id: left[0] } : null;
  }

  async info(stream: string): Promise<PresenceInfo> {
    const { value } = await readJson<StreamDoc>(this.#kv, streamKey(stream));
    if (!value) return { total: 0, records: [] };
    const infos = new Map(value.infos);
    const ids = [...new Set(value.sessions.map(([, id]) => id))];
    const records: PresenceRecord[] = ids.map((id) =>
      infos.has(id) ? { id, info: infos.get(id) } : { id }
    );
    return { total: records.length, records };
  }

  async touch(sid: string): Promise<void> {
    const { value } = await readJson<SidDoc>(this.#kv, sidKey(sid));
    if (!value || value.streams.length === 0) return;
    const now = this.#now();
    for (const stream of value.streams) {
      await modifyJson<StreamDoc, void>(this.#kv, streamKey(stream), (cur) => {
        if (!cur || !cur.sessions.some(([s]) => s === sid)) return { result: undefined };
        const sessions = cur.sessions.map(([s, id, t]): [string, string, number] =>
          s === sid ? [s, id, now] : [s, id, t]
        );
        return { next: { ...cur, sessions }, result: undefined };
      });
    }
    // Rewrite the index as it is, so that the bucket's max age does not drop it.
    await modifyJson<SidDoc, void>(this.#kv, sidKey(sid), (cur) => ({
      next: cur ?? undefined,
      result: undefined,
    }));
  }

  async expire(): Promise<ExpiredPresence[]> {
    const cutoff = this.#now() - this.#ttlMs;
    const keys: string[] = [];
    for await (const key of await this.#kv.keys("p.>")) keys.push(key);
    const out: ExpiredPresence[] = [];
    for (const key of keys) {
      const stream = fromKeyToken(key.slice(2));
      const stale: string[] = [];
      const left = await this.#drop(stream, (sid, touched) => {
        if (touched >= cutoff) return false;
        stale.push(sid);
        return true;
      });
      for (const id of left) out.push({ stream, event: { type: "leave", id } });
      for (const sid of new Set(stale)) await this.#unindex(sid, stream);
    }
    return out;
  }

  /** Removes matching sessions from a stream; returns the ids left without any session. */
  #drop(stream: string, match: (sid: string, touched: number) => boolean): Promise<string[]> {
    return modifyJson<StreamDoc, string[]>(this.#kv, streamKey(stream), (cur) => {
      if (!cur) return { result: [] };
      const sessions = cur.sessions.filter(([sid, , t]) => !match(sid, t));
      if (sessions.length === cur.sessions.length) return { result: [] };
      const remaining = new Set(sessions.map(([, id]) => id));
      const left = [...new Set(cur.sessions.map(([, id]) => id))].filter((id) =>
        !remaining.has(id)
      );
      const infos = cur.infos.filter(([id]) => remaining.has(id));
      return { next: { sessions, infos }, result: left };
    });
  }

  async #unindex(sid: string, stream: string): Promise<void> {
    await modifyJson<SidDoc, void>(this.#kv, sidKey(sid), (cur) => {
      if (!cur || !cur.streams.includes(stream)) return { result: undefined };
      return { next: { streams: cur.streams.filter((s) => s !== stream) }, result: undefined };
    });
  }
}

function streamKey(stream: string): string {
  return `p.${keyToken(stream)}`;
}

function sidKey(sid: string): string {
  return `x.${keyToken(sid)}`;
}
