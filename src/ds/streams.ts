import type { StreamMessage } from "../broker/broker.ts";
import type { Logger } from "../logger/logger.ts";
import { nanoid } from "../util/nanoid.ts";
import { DEFAULT_CONTENT_TYPE, isJson, mediaType } from "./content_type.ts";
import { DsError } from "./errors.ts";
import { InvalidJsonError, jsonValues } from "./json_values.ts";
import { formatOffset } from "./offset.ts";
import { checkProducer, type ProducerCheck, pruneProducers } from "./producers.ts";
import type { DurableStreamStore, StoredStream } from "./store.ts";
import type { DsEntry, DsMeta } from "./types.ts";

export interface CreateRequest {
  /** Valid `type/subtype`, or undefined (octet-stream, or the fork source's type). */
  contentType?: string;
  ttlSeconds?: number;
  expiresAt?: string;
  closed: boolean;
  body: Uint8Array;
  fork?: { source: string; offset?: number; subOffset?: number };
}

export interface AppendRequest {
  contentType: string | null;
  body: Uint8Array;
  /** Stream-Seq. */
  seq?: string;
  producer?: { id: string; epoch: number; seq: number };
  close: boolean;
}

export interface AppendResult {
  /** 200 (producer accepted), 204 (plain append, close, duplicate). */
  status: number;
  tail: number;
  closed: boolean;
  producer?: { epoch: number; seq: number };
}

export interface ReadResult {
  meta: DsMeta;
  entries: DsEntry[];
  /** The offset the response ends at (last entry, or where the read started). */
  next: number;
  /** The read reached the tail it saw. */
  upToDate: boolean;
}

export interface DsStreamsOptions {
  store: DurableStreamStore;
  /** Hands a registered publication to every subscriber (Action Cable, SSE, DS live readers). */
  deliver: (msg: StreamMessage) => Promise<void>;
  /** The epoch publications carry (the broker's). */
  epoch: () => Promise<string>;
  /** Local wake-ups for waiting readers (close, delete, append). */
  changed: (stream: string) => void;
  logger: Logger;
  now?: () => number;
}

const MAX_COMMIT_ATTEMPTS = 20;

/**
 * The Durable Streams rules over a DurableStreamStore: creation (with forks), appends (JSON
 * values, Stream-Seq, idempotent producers, closing), TTL / Expires-At, deletion (soft while
 * forks read through a stream) and reads across fork chains. Every accepted entry is also
 * delivered as a publication of the stream, with its entry number as the offset.
 */
export class DsStreams {
  readonly #o: DsStreamsOptions;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #delivered = new Map<string, Promise<void>>();

  constructor(opts: DsStreamsOptions) {
    this.#o = opts;
  }

  get store(): DurableStreamStore {
    return this.#o.store;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /** Serializes this process's writers per stream (other processes are caught by versions). */
  #locked<T>(stream: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(stream) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(stream, next);
    next.finally(() => {
      if (this.#locks.get(stream) === next) this.#locks.delete(stream);
    }).catch(() => {});
    return next;
  }

  /**
   * Runs `decide` on the current state and commits what it returns, again on a conflict.
   * `decide` returns undefined to commit nothing.
   */
  async #mutate<T>(
    stream: string,
    decide: (
      cur: StoredStream | null,
    ) => Promise<Commit<T> | T>,
  ): Promise<T> {
    return await this.#locked(stream, async () => {
      for (let i = 0; i < MAX_COMMIT_ATTEMPTS; i++) {
        const cur = await this.#o.store.load(stream);
        const out = await decide(cur);
        if (!isCommit<T>(out)) return out;
        const ok = await this.#o.store.commit(
          stream,
          cur?.version ?? null,
          out.meta,
          out.entries ?? [],
          out.drop,
        );
        if (ok) {
          out.onCommit?.();
          return out.result;
        }
      }
      throw new DsError(503, "too much contention on this stream, retry");
    });
  }

  #expired(meta: DsMeta, now: number): boolean {
    if (meta.expiresAt !== undefined) {
      const at = Date.parse(meta.expiresAt);
      if (!Number.isFinite(at) || now >= at) return true;
    }
    return meta.ttlSeconds !== undefined && now >= meta.lastAccessedAt + meta.ttlSeconds * 1000;
  }

  /**
   * The stream as requests see it: null when absent or expired (an expired stream is removed,
   * or soft-deleted while forks read through it).
   */
  async get(stream: string): Promise<DsMeta | null> {
    const cur = await this.#o.store.load(stream);
    if (!cur) return null;
    if (!this.#expired(cur.meta, this.#now()) || cur.meta.softDeleted) return cur.meta;
    return await this.#expire(stream);
  }

  async #expire(stream: string): Promise<DsMeta | null> {
    let parent: string | undefined;
    const meta = await this.#mutate<DsMeta | null>(stream, (cur) => {
      if (!cur) return Promise.resolve(null);
      if (cur.meta.softDeleted || !this.#expired(cur.meta, this.#now())) {
        return Promise.resolve(cur.meta);
      }
      if (cur.meta.refCount > 0) {
        const meta = { ...cur.meta, softDeleted: true };
        return Promise.resolve({ meta, result: meta });
      }
      parent = cur.meta.fork?.source;
      return Promise.resolve({ meta: null, drop: cur.meta.generation, result: null });
    });
    if (meta === null) {
      this.#o.changed(stream);
      if (parent !== undefined) await this.#release(parent);
    }
    return meta;
  }

  /** Removes expired streams the store can list (memory); returns how many were checked. */
  async sweep(): Promise<number> {
    const names = await this.#o.store.list?.() ?? [];
    for (const name of names) await this.get(name);
    return names.length;
  }

  /** Extends a TTL stream's life (reads and appends do; HEAD does not). */
  async touch(stream: string): Promise<void> {
    await this.#mutate<void>(stream, (cur) => {
      if (!cur || cur.meta.ttlSeconds === undefined || cur.meta.softDeleted) {
        return Promise.resolve(undefined);
      }
      return Promise.resolve({
        meta: { ...cur.meta, lastAccessedAt: this.#now() },
        result: undefined,
      });
    });
  }

  async create(stream: string, req: CreateRequest): Promise<{ created: boolean; meta: DsMeta }> {
    const existing = await this.get(stream);
    if (existing) {
      if (existing.softDeleted) {
        throw new DsError(409, "stream was deleted but forks still read through it");
      }
      if (this.#sameConfig(existing, req)) return { created: false, meta: existing };
      throw new DsError(409, "stream already exists with a different configuration");
    }
    const now = this.#now();
    const meta: DsMeta = {
      generation: nanoid(),
      contentType: req.contentType ?? DEFAULT_CONTENT_TYPE,
      tail: 0,
      ttlSeconds: req.ttlSeconds,
      expiresAt: req.expiresAt,
      createdAt: now,
      lastAccessedAt: now,
      closed: req.closed,
      producers: {},
      refCount: 0,
      softDeleted: false,
    };
    const entries: DsEntry[] = [];
    if (req.fork) await this.#prepareFork(meta, req, entries);
    try {
      if (req.body.byteLength > 0) {
        entries.push(...this.#entriesFor(meta.contentType, req.body, meta.tail, true));
        if (entries.length > 0) meta.tail = entries[entries.length - 1].n;
      }
    } catch (err) {
      if (req.fork) await this.#release(req.fork.source);
      throw err;
    }
    const created = await this.#mutate<boolean>(stream, (cur) => {
      if (cur) return Promise.resolve(false);
      return Promise.resolve({
        meta,
        entries,
        result: true,
        onCommit: () => this.#publish(stream, meta, entries),
      });
    });
    if (!created) {
      if (req.fork) await this.#release(req.fork.source);
      // Someone created it meanwhile: answer as a re-creation.
      return await this.create(stream, { ...req, fork: req.fork });
    }
    return { created: true, meta };
  }

  #sameConfig(m: DsMeta, req: CreateRequest): boolean {
    const wantType = mediaType(
      req.contentType ?? (req.fork ? m.contentType : DEFAULT_CONTENT_TYPE),
    );
    if (wantType !== mediaType(m.contentType)) return false;
    if (req.ttlSeconds !== undefined || req.expiresAt !== undefined || !req.fork) {
      if (req.ttlSeconds !== m.ttlSeconds || req.expiresAt !== m.expiresAt) return false;
    }
    if (req.closed !== m.closed) return false;
    if ((req.fork?.source) !== m.fork?.source) return false;
    if (req.fork && m.fork) {
      if (req.fork.offset !== undefined && req.fork.offset !== m.fork.offset) return false;
      if ((req.fork.subOffset ?? 0) !== m.fork.subOffset) return false;
    }
    return true;
  }

  /** Fills a fork's meta (and its materialized sub-offset prefix); takes a source reference. */
  async #prepareFork(meta: DsMeta, req: CreateRequest, entries: DsEntry[]): Promise<void> {
    const fork = req.fork!;
    const source = await this.get(fork.source);
    if (!source) throw new DsError(404, "source stream not found");
    if (source.softDeleted) throw new DsError(409, "source stream was deleted");
    if (
      req.contentType !== undefined && mediaType(req.contentType) !== mediaType(source.contentType)
    ) {
      throw new DsError(409, "content type differs from the source stream");
    }
    meta.contentType = req.contentType ?? source.contentType;
    const offset = fork.offset ?? source.tail;
    if (offset < 0 || offset > source.tail) {
      throw new DsError(400, "fork offset is beyond the source stream");
    }
    const sub = fork.subOffset ?? 0;
    let base = offset;
    if (sub > 0) {
      const next = await this.#readChain(fork.source, source, offset, source.tail, 1);
      if (next.length === 0) {
        throw new DsError(400, "no data past the fork offset for a sub-offset");
      }
      const first = next[0];
      if (isJson(source.contentType)) {
        if (sub > (first.group ?? 1)) throw new DsError(400, "sub-offset overshoots the append");
        base = offset + sub;
      } else {
        if (sub > first.data.byteLength) {
          throw new DsError(400, "sub-offset overshoots the append");
        }
        entries.push({ n: offset + 1, data: first.data.slice(0, sub) });
      }
    }
    meta.fork = {
      source: fork.source,
      sourceGeneration: source.generation,
      base,
      offset,
      subOffset: sub,
    };
    meta.tail = entries.length > 0 ? entries[entries.length - 1].n : base;
    if (req.ttlSeconds === undefined && req.expiresAt === undefined) {
      meta.ttlSeconds = source.ttlSeconds;
      meta.expiresAt = source.ttlSeconds === undefined ? source.expiresAt : undefined;
    }
    const taken = await this.#mutate<boolean>(fork.source, (cur) => {
      if (!cur || cur.meta.softDeleted || cur.meta.generation !== source.generation) {
        return Promise.resolve(false);
      }
      return Promise.resolve({
        meta: { ...cur.meta, refCount: cur.meta.refCount + 1 },
        result: true,
      });
    });
    if (!taken) throw new DsError(409, "source stream changed while forking");
  }

  /** Drops one fork reference; removes a soft-deleted source once nothing reads through it. */
  async #release(source: string): Promise<void> {
    let parent: string | undefined;
    const removed = await this.#mutate<boolean>(source, (cur) => {
      if (!cur) return Promise.resolve(false);
      const refCount = Math.max(0, cur.meta.refCount - 1);
      if (refCount === 0 && cur.meta.softDeleted) {
        parent = cur.meta.fork?.source;
        return Promise.resolve({ meta: null, drop: cur.meta.generation, result: true });
      }
      return Promise.resolve({ meta: { ...cur.meta, refCount }, result: false });
    });
    if (removed) {
      this.#o.changed(source);
      if (parent !== undefined) await this.#release(parent);
    }
  }

  /** Entries an append adds after `tail` (JSON: one per value; else one). */
  #entriesFor(contentType: string, body: Uint8Array, tail: number, create: boolean): DsEntry[] {
    if (!isJson(contentType)) return [{ n: tail + 1, data: body }];
    let values: Uint8Array[];
    try {
      values = jsonValues(body, create);
    } catch (err) {
      if (err instanceof InvalidJsonError) throw new DsError(400, err.message);
      throw err;
    }
    return values.map((data, i) => ({
      n: tail + 1 + i,
      data,
      group: i === 0 ? values.length : undefined,
    }));
  }

  async append(stream: string, req: AppendRequest): Promise<AppendResult> {
    await this.get(stream); // expires a stale stream first
    const now = this.#now();
    let added: DsEntry[] = [];
    const result = await this.#mutate<AppendResult>(stream, (cur) => {
      added = [];
      if (!cur) throw new DsError(404, "stream not found");
      const m = cur.meta;
      if (m.softDeleted) throw new DsError(410, "stream is gone");
      const p = req.producer;
      if (m.closed) {
        if (
          p && m.closedBy && m.closedBy.producerId === p.id && m.closedBy.epoch === p.epoch &&
          m.closedBy.seq === p.seq
        ) {
          return Promise.resolve({
            status: 204,
            tail: m.tail,
            closed: true,
            producer: { epoch: p.epoch, seq: p.seq },
          });
        }
        if (!p && req.close && req.body.byteLength === 0) {
          return Promise.resolve({ status: 204, tail: m.tail, closed: true });
        }
        if (p) {
          const check = checkProducer(m.producers[p.id], p.epoch, p.seq, now);
          if (check.status === "stale_epoch") producerError(check, m.tail);
        }
        throw new DsError(409, "stream is closed", {
          "Stream-Closed": "true",
          "Stream-Next-Offset": formatOffset(m.tail),
        });
      }
      if (
        req.body.byteLength > 0 && req.contentType !== null &&
        mediaType(req.contentType) !== mediaType(m.contentType)
      ) {
        throw new DsError(409, "content type does not match the stream's");
      }
      const meta: DsMeta = { ...m, producers: { ...m.producers } };
      pruneProducers(meta.producers, now);
      let accepted: ProducerCheck | undefined;
      if (p) {
        accepted = checkProducer(meta.producers[p.id], p.epoch, p.seq, now);
        if (accepted.status === "duplicate") {
          return Promise.resolve({
            status: 204,
            tail: m.tail,
            closed: m.closed,
            producer: { epoch: p.epoch, seq: accepted.lastSeq },
          });
        }
        if (accepted.status !== "accepted") producerError(accepted, m.tail);
      }
      if (req.seq !== undefined && m.lastSeq !== undefined && req.seq <= m.lastSeq) {
        throw new DsError(409, "Stream-Seq must increase");
      }
      if (req.body.byteLength > 0) added = this.#entriesFor(m.contentType, req.body, m.tail, false);
      if (accepted?.status === "accepted") meta.producers[p!.id] = accepted.next;
      if (req.seq !== undefined) meta.lastSeq = req.seq;
      if (added.length > 0) meta.tail = added[added.length - 1].n;
      meta.lastAccessedAt = now;
      if (req.close) {
        meta.closed = true;
        if (p) meta.closedBy = { producerId: p.id, epoch: p.epoch, seq: p.seq };
      }
      const entries = added;
      return Promise.resolve({
        meta,
        entries,
        onCommit: () => {
          this.#publish(stream, meta, entries);
          if (req.close) this.#o.changed(stream);
        },
        result: {
          status: p && req.body.byteLength > 0 ? 200 : 204,
          tail: meta.tail,
          closed: meta.closed,
          producer: p ? { epoch: p.epoch, seq: p.seq } : undefined,
        },
      });
    });
    await this.#delivered.get(stream);
    return result;
  }

  /**
   * Registers a publication that arrived through a broadcast intake (HTTP, Redis, NATS, REST
   * API) for a stream written through Durable Streams: it becomes one entry, and the returned
   * copy carries that entry's number as its offset. The caller delivers it.
   */
  async register(msg: StreamMessage): Promise<StreamMessage> {
    const now = this.#now();
    const n = await this.#mutate<number>(msg.stream, (cur) => {
      if (!cur || cur.meta.softDeleted) throw new DsError(404, "stream not found");
      if (cur.meta.closed) throw new DsError(409, "stream is closed");
      const data = isJson(cur.meta.contentType)
        ? textEncoder.encode(asJsonText(msg.data))
        : textEncoder.encode(msg.data);
      const entry: DsEntry = { n: cur.meta.tail + 1, data, group: 1 };
      return Promise.resolve({
        meta: { ...cur.meta, tail: entry.n, lastAccessedAt: now },
        entries: [entry],
        result: entry.n,
      });
    });
    this.#o.changed(msg.stream);
    return { ...msg, offset: n, epoch: await this.#o.epoch() };
  }

  /** Entries after `after` as publications (Action Cable history of a Durable Streams stream). */
  async history(stream: string, meta: DsMeta, after: number): Promise<StreamMessage[]> {
    const epoch = await this.#o.epoch();
    const out: StreamMessage[] = [];
    let at = after;
    while (at < meta.tail) {
      const chunk = await this.#readChain(stream, meta, at, meta.tail, 1 << 20);
      if (chunk.length === 0) break;
      for (const e of chunk) {
        out.push({ stream, data: publicationData(meta.contentType, e.data), offset: e.n, epoch });
      }
      at = chunk[chunk.length - 1].n;
    }
    return out;
  }

  /** Delivers new entries as publications (offset = entry number) and wakes local readers. */
  #publish(stream: string, meta: DsMeta, entries: DsEntry[]): void {
    this.#o.changed(stream);
    if (entries.length === 0) return;
    // Chained per stream in commit order, so subscribers get offsets in order.
    const prev = this.#delivered.get(stream) ?? Promise.resolve();
    const next = prev.then(async () => {
      const epoch = await this.#o.epoch();
      for (const e of entries) {
        await this.#o.deliver({
          stream,
          data: publicationData(meta.contentType, e.data),
          offset: e.n,
          epoch,
        });
      }
    }).catch((err) => this.#o.logger.warn("ds delivery failed", { stream, error: err }));
    this.#delivered.set(stream, next);
    next.finally(() => {
      if (this.#delivered.get(stream) === next) this.#delivered.delete(stream);
    });
  }

  async delete(stream: string): Promise<void> {
    const existing = await this.get(stream);
    if (!existing) throw new DsError(404, "stream not found");
    if (existing.softDeleted) throw new DsError(410, "stream is gone");
    let parent: string | undefined;
    const removed = await this.#mutate<boolean>(stream, (cur) => {
      if (!cur) throw new DsError(404, "stream not found");
      if (cur.meta.softDeleted) throw new DsError(410, "stream is gone");
      if (cur.meta.refCount > 0) {
        return Promise.resolve({ meta: { ...cur.meta, softDeleted: true }, result: false });
      }
      parent = cur.meta.fork?.source;
      return Promise.resolve({ meta: null, drop: cur.meta.generation, result: true });
    });
    this.#o.changed(stream);
    if (removed && parent !== undefined) await this.#release(parent);
  }

  /**
   * Entries after `after` up to the stream's tail (across its fork chain), at most about
   * `maxBytes`; a JSON append's values are never split.
   */
  async read(stream: string, meta: DsMeta, after: number, maxBytes: number): Promise<ReadResult> {
    const upTo = meta.tail;
    if (after >= upTo) return { meta, entries: [], next: after, upToDate: true };
    const entries = await this.#readChain(stream, meta, after, upTo, maxBytes);
    const last = entries.length > 0 ? entries[entries.length - 1].n : after;
    return { meta, entries, next: last, upToDate: last >= upTo };
  }

  async #readChain(
    stream: string,
    meta: DsMeta,
    after: number,
    upTo: number,
    maxBytes: number,
  ): Promise<DsEntry[]> {
    const out: DsEntry[] = [];
    const base = meta.fork?.base ?? 0;
    if (meta.fork && after < base) {
      const src = await this.#o.store.load(meta.fork.source);
      if (src && src.meta.generation === meta.fork.sourceGeneration) {
        out.push(
          ...await this.#readChain(
            meta.fork.source,
            src.meta,
            after,
            Math.min(upTo, base),
            maxBytes,
          ),
        );
      }
      const reached = out.length > 0 ? out[out.length - 1].n : after;
      if (reached < Math.min(upTo, base) && out.length > 0) return out;
    }
    if (upTo <= base) return out;
    const used = out.reduce((s, e) => s + e.data.byteLength, 0);
    if (out.length > 0 && used >= maxBytes) return out;
    const from = Math.max(after, base);
    const own = await this.#o.store.read(stream, meta.generation, from, upTo, maxBytes - used);
    out.push(...own);
    // Complete a JSON append cut by the byte budget.
    if (isJson(meta.contentType) && own.length > 0) {
      let last = own[own.length - 1].n;
      while (last < upTo) {
        const more = await this.#o.store.read(stream, meta.generation, last, upTo, 1);
        if (more.length === 0 || more[0].group !== undefined) break;
        out.push(more[0]);
        last = more[0].n;
      }
    }
    return out;
  }
}

/** What a mutation commits; `onCommit` runs under the stream's lock right after it. */
interface Commit<T> {
  meta: DsMeta | null;
  entries?: DsEntry[];
  drop?: string;
  result: T;
  onCommit?: () => void;
}

function isCommit<T>(v: unknown): v is Commit<T> {
  return typeof v === "object" && v !== null && "result" in v && "meta" in v;
}

function producerError(check: ProducerCheck, tail: number): never {
  switch (check.status) {
    case "stale_epoch":
      throw new DsError(403, "stale producer epoch", {
        "Producer-Epoch": String(check.currentEpoch),
      });
    case "invalid_epoch_seq":
      throw new DsError(400, "a new producer epoch must start with sequence 0");
    case "sequence_gap":
      throw new DsError(409, "producer sequence gap", {
        "Producer-Expected-Seq": String(check.expected),
        "Producer-Received-Seq": String(check.received),
      });
    default:
      throw new DsError(500, `unexpected producer state at ${tail}`);
  }
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

function asJsonText(data: string): string {
  try {
    JSON.parse(data);
    return data;
  } catch {
    return JSON.stringify(data);
  }
}

/**
 * What Action Cable, SSE and Pusher subscribers receive for an entry: a JSON value as it is, text
 * as a JSON string, anything else as a base64 JSON string.
 */
export function publicationData(contentType: string, data: Uint8Array): string {
  if (isJson(contentType)) return textDecoder.decode(data);
  if (mediaType(contentType).startsWith("text/")) return JSON.stringify(textDecoder.decode(data));
  return JSON.stringify(toBase64(data));
}

/** Standard base64 of `data`. */
export function toBase64(data: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
