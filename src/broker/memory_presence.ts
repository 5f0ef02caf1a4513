import type { ExpiredPresence, PresenceEvent, PresenceInfo } from "./broker.ts";

/** One presence id in one stream: its latest info and the sessions holding it. */
interface IdRecord {
  info: unknown;
  /** sid -> last add/touch time (ms). */
  sids: Map<string, number>;
}

/**
 * In-process presence state (docs/protocol.md#presence). Time is passed in by the caller, so
 * nothing here runs on its own: stale entries stay until `expire()` is called and turns them
 * into leave events.
 */
export class MemoryPresence {
  /** stream -> presence id -> record. */
  readonly #streams = new Map<string, Map<string, IdRecord>>();
  /** sid -> stream -> presence id; answers "which id does this session have here". */
  readonly #sessions = new Map<string, Map<string, string>>();

  /** Join event when `id` is new in `stream`; throws when `sid` already has another id there. */
  add(stream: string, sid: string, id: string, info: unknown, now: number): PresenceEvent | null {
    const current = this.#sessions.get(sid)?.get(stream);
    if (current !== undefined && current !== id) {
      throw new Error(
        `presence id mismatch: session ${sid} is already "${current}" in stream ${stream}`,
      );
    }
    let ids = this.#streams.get(stream);
    if (!ids) this.#streams.set(stream, ids = new Map());
    let record = ids.get(id);
    const joined = record === undefined;
    if (!record) ids.set(id, record = { info, sids: new Map() });
    record.info = info;
    record.sids.set(sid, now);
    let streams = this.#sessions.get(sid);
    if (!streams) this.#sessions.set(sid, streams = new Map());
    streams.set(stream, id);
    return joined ? withInfo({ type: "join" as const, id }, info) : null;
  }

  /** Leave event when `sid` was the last session of its id in `stream`. */
  remove(stream: string, sid: string): PresenceEvent | null {
    const id = this.#sessions.get(sid)?.get(stream);
    return id === undefined ? null : this.#drop(stream, sid, id);
  }

  /** Unique ids present in `stream`, stale ones included until `expire()` runs. */
  info(stream: string): PresenceInfo {
    const records = [...this.#streams.get(stream) ?? []].map(([id, r]) => withInfo({ id }, r.info));
    return { total: records.length, records };
  }

  touch(sid: string, now: number): void {
    for (const [stream, id] of this.#sessions.get(sid) ?? []) {
      this.#streams.get(stream)?.get(id)?.sids.set(sid, now);
    }
  }

  /** Drops entries not touched for more than `ttlMs`; leave events for ids left without sessions. */
  expire(now: number, ttlMs: number): ExpiredPresence[] {
    const stale: [string, string, string][] = [];
    for (const [stream, ids] of this.#streams) {
      for (const [id, record] of ids) {
        for (const [sid, touched] of record.sids) {
          if (now - touched > ttlMs) stale.push([stream, sid, id]);
        }
      }
    }
    const out: ExpiredPresence[] = [];
    for (const [stream, sid, id] of stale) {
      const event = this.#drop(stream, sid, id);
      if (event) out.push({ stream, event });
    }
    return out;
  }

  clear(): void {
    this.#streams.clear();
    this.#sessions.clear();
  }

  #drop(stream: string, sid: string, id: string): PresenceEvent | null {
    const streams = this.#sessions.get(sid);
    streams?.delete(stream);
    if (streams?.size === 0) this.#sessions.delete(sid);
    const ids = this.#streams.get(stream);
    const record = ids?.get(id);
    if (!ids || !record || !record.sids.delete(sid) || record.sids.size > 0) return null;
    ids.delete(id);
    if (ids.size === 0) this.#streams.delete(stream);
    return { type: "leave", id };
  }
}

/** Adds `info` only when defined, so records compare equal whatever the storage. */
function withInfo<T extends object>(base: T, info: unknown): T & { info?: unknown } {
  return info === undefined ? base : { ...base, info };
}
