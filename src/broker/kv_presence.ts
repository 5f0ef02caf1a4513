import type { ExpiredPresence, PresenceEvent, PresenceInfo } from "./broker.ts";
import type { RetryingKv } from "./kv_retry.ts";

/** `[prefix, "ps", sid, stream]`: the id a session holds in a stream, and when it was touched. */
interface SessionEntry {
  id: string;
  /** ms */
  touchedAt: number;
}

/** `[prefix, "pi", stream, id]`: one presence id in a stream and the sessions holding it. */
interface IdEntry {
  info?: unknown;
  sids: string[];
}

/** Optimistic updates give up after this many conflicts in a row (never seen in practice). */
const MAX_ATTEMPTS = 1000;

/**
 * Presence over Deno KV (docs/protocol.md#presence), correct across processes sharing one
 * database: each change checks the versionstamps of the entries it read, so exactly one
 * process reports a given join or leave. Entries have no `expireIn` (a silent deletion would
 * lose the leave event); stale ones are removed by `expire()`, which the server calls
 * periodically.
 */
export class KvPresence {
  readonly #kv: RetryingKv;
  readonly #prefix: Deno.KvKey;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(kv: RetryingKv, prefix: Deno.KvKey, ttlSeconds: number, now: () => number) {
    this.#kv = kv;
    this.#prefix = prefix;
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
  }

  async add(stream: string, sid: string, id: string, info: unknown): Promise<PresenceEvent | null> {
    const sKey = this.#sessionKey(sid, stream);
    const iKey = this.#idKey(stream, id);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [se, ie] = await this.#kv.getMany<[SessionEntry, IdEntry]>([sKey, iKey]);
      if (se.value && se.value.id !== id) {
        throw new Error(
          `presence id mismatch: session ${sid} is already "${se.value.id}" in stream ${stream}`,
        );
      }
      const sids = ie.value?.sids ?? [];
      const record: IdEntry = { sids: sids.includes(sid) ? sids : [...sids, sid] };
      if (info !== undefined) record.info = info;
      const op = this.#kv.atomic()
        .check(se, ie)
        .set(sKey, { id, touchedAt: this.#now() } satisfies SessionEntry)
        .set(iKey, record);
      const res = await this.#kv.commit(op);
      if (!res.ok) continue;
      if (ie.value) return null;
      return info === undefined ? { type: "join", id } : { type: "join", id, info };
    }
    throw new Error(`presence update of stream ${stream} kept conflicting`);
  }

  async remove(stream: string, sid: string): Promise<PresenceEvent | null> {
    const se = await this.#kv.get<SessionEntry>(this.#sessionKey(sid, stream));
    return se.value ? await this.#drop(se, stream, sid, () => true) : null;
  }

  async info(stream: string): Promise<PresenceInfo> {
    const records = [];
    for (const e of await this.#kv.list<IdEntry>({ prefix: [...this.#prefix, "pi", stream] })) {
      const id = String(e.key[e.key.length - 1]);
      records.push(e.value.info === undefined ? { id } : { id, info: e.value.info });
    }
    return { total: records.length, records };
  }

  async touch(sid: string): Promise<void> {
    const entries = await this.#kv.list<SessionEntry>({ prefix: [...this.#prefix, "ps", sid] });
    for (const found of entries) {
      let entry: Deno.KvEntryMaybe<SessionEntry> = found;
      for (let attempt = 0; entry.value && attempt < MAX_ATTEMPTS; attempt++) {
        const value: SessionEntry = { ...entry.value, touchedAt: this.#now() };
        const res = await this.#kv.commit(this.#kv.atomic().check(entry).set(entry.key, value));
        if (res.ok) break;
        entry = await this.#kv.get<SessionEntry>(entry.key);
      }
    }
  }

  async expire(): Promise<ExpiredPresence[]> {
    const stale = (v: SessionEntry) => this.#now() - v.touchedAt > this.#ttlMs;
    const out: ExpiredPresence[] = [];
    for (const entry of await this.#kv.list<SessionEntry>({ prefix: [...this.#prefix, "ps"] })) {
      if (!stale(entry.value)) continue;
      const stream = String(entry.key[entry.key.length - 1]);
      const sid = String(entry.key[entry.key.length - 2]);
      const event = await this.#drop(entry, stream, sid, stale);
      if (event) out.push({ stream, event });
    }
    return out;
  }

  /**
   * Deletes a session's entry and unlinks it from its id; the leave event when that was the
   * id's last session. On conflict, retries while the re-read entry still satisfies `still`.
   */
  async #drop(
    entry: Deno.KvEntry<SessionEntry>,
    stream: string,
    sid: string,
    still: (v: SessionEntry) => boolean,
  ): Promise<PresenceEvent | null> {
    let se: Deno.KvEntryMaybe<SessionEntry> = entry;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (!se.value || !still(se.value)) return null;
      const id = se.value.id;
      const iKey = this.#idKey(stream, id);
      const ie = await this.#kv.get<IdEntry>(iKey);
      const sids = (ie.value?.sids ?? []).filter((s) => s !== sid);
      const op = this.#kv.atomic().check(se, ie).delete(se.key);
      if (ie.value && sids.length > 0) op.set(iKey, { ...ie.value, sids });
      if (ie.value && sids.length === 0) op.delete(iKey);
      if ((await this.#kv.commit(op)).ok) {
        return ie.value && sids.length === 0 ? { type: "leave", id } : null;
      }
      se = await this.#kv.get<SessionEntry>(se.key);
    }
    throw new Error(`presence update of stream ${stream} kept conflicting`);
  }

  #sessionKey(sid: string, stream: string): Deno.KvKey {
    return [...this.#prefix, "ps", sid, stream];
  }

  #idKey(stream: string, id: string): Deno.KvKey {
    return [...this.#prefix, "pi", stream, id];
  }
}
