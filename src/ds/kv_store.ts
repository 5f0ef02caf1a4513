import { retryBusy, RetryingKv } from "../broker/kv_retry.ts";
import { DsError } from "./errors.ts";
import type { DurableStreamStore, StoredStream } from "./store.ts";
import type { DsEntry, DsMeta } from "./types.ts";
import { concatBytes } from "../util/concat_bytes.ts";

export interface KvStreamStoreOptions {
  /** Database path; "" = Deno.openKv()'s default (Deno Deploy's); ":memory:" ok. */
  path?: string;
  /** An open database (tests); not closed by the store. */
  kv?: Deno.Kv;
}

/** Bytes per KV value: a value is limited to 64 KiB. */
const PART_BYTES = 60_000;
/** An atomic operation is limited to about 800 KB and 1000 mutations. */
const MAX_COMMIT_BYTES = 760_000;
const MAX_COMMIT_MUTATIONS = 900;

interface StoredPart {
  d: Uint8Array;
  /** On part 0: how many parts the entry has, and its JSON group size. */
  k?: number;
  g?: number;
}

/**
 * Durable Streams in Deno KV (`--broker=kv`, also on Deno Deploy): the meta under
 * `["ds","m",stream]` (its versionstamp is the version writers check), entries under
 * `["ds","e",stream,generation,n,part]`. Streams survive restarts.
 */
export class KvStreamStore implements DurableStreamStore {
  readonly name = "kv";
  readonly durable = true;
  readonly #opts: KvStreamStoreOptions;
  #kv?: RetryingKv;
  #owned = false;

  constructor(opts: KvStreamStoreOptions = {}) {
    this.#opts = opts;
  }

  async start(): Promise<void> {
    if (this.#kv) return;
    let kv = this.#opts.kv;
    if (!kv) {
      const path = this.#opts.path || undefined;
      kv = await retryBusy(() => Deno.openKv(path));
      this.#owned = true;
    }
    this.#kv = new RetryingKv(kv);
  }

  close(): Promise<void> {
    if (this.#kv && this.#owned) this.#kv.kv.close();
    this.#kv = undefined;
    return Promise.resolve();
  }

  #db(): RetryingKv {
    if (!this.#kv) throw new Error("KV stream store is not started");
    return this.#kv;
  }

  async load(stream: string): Promise<StoredStream | null> {
    const e = await this.#db().get<DsMeta>(["ds", "m", stream]);
    if (e.value === null || e.versionstamp === null) return null;
    return { meta: e.value, version: e.versionstamp };
  }

  async commit(
    stream: string,
    expected: string | null,
    meta: DsMeta | null,
    entries: DsEntry[],
    drop?: string,
  ): Promise<boolean> {
    const db = this.#db();
    const key = ["ds", "m", stream];
    const op = db.atomic().check({ key, versionstamp: expected });
    if (meta === null) op.delete(key);
    else op.set(key, meta);
    let bytes = 0;
    let mutations = 1;
    for (const e of entries) {
      const parts = Math.max(1, Math.ceil(e.data.byteLength / PART_BYTES));
      for (let i = 0; i < parts; i++) {
        const d = e.data.slice(i * PART_BYTES, (i + 1) * PART_BYTES);
        const value: StoredPart = i === 0 ? { d, k: parts, g: e.group } : { d };
        op.set(["ds", "e", stream, meta!.generation, e.n, i], value);
        bytes += d.byteLength + 64;
        mutations++;
      }
    }
    if (bytes > MAX_COMMIT_BYTES || mutations > MAX_COMMIT_MUTATIONS) {
      throw new DsError(413, "append too large for the Deno KV store");
    }
    const res = await db.commit(op);
    if (!res.ok) return false;
    if (drop !== undefined) this.#dropGeneration(stream, drop);
    return true;
  }

  /** Deletes a removed generation's entries in the background, in batches. */
  #dropGeneration(stream: string, generation: string): void {
    const db = this.#kv;
    if (!db) return;
    (async () => {
      for (;;) {
        const batch: Deno.KvKey[] = [];
        for await (
          const e of db.kv.list({ prefix: ["ds", "e", stream, generation] }, { limit: 100 })
        ) {
          batch.push(e.key);
        }
        if (batch.length === 0) return;
        const op = db.atomic();
        for (const k of batch) op.delete(k);
        await db.commit(op);
      }
    })().catch(() => {});
  }

  async read(
    stream: string,
    generation: string,
    after: number,
    upTo: number,
    maxBytes: number,
  ): Promise<DsEntry[]> {
    const db = this.#db();
    const out: DsEntry[] = [];
    let bytes = 0;
    let current: { n: number; parts: Uint8Array[]; k: number; g?: number } | undefined;
    const iter = db.kv.list<StoredPart>({
      start: ["ds", "e", stream, generation, after + 1],
      end: ["ds", "e", stream, generation, upTo + 1],
    });
    for await (const e of iter) {
      const n = e.key[4] as number;
      const part = e.key[5] as number;
      if (part === 0) {
        if (out.length > 0 && bytes >= maxBytes) break;
        current = { n, parts: [e.value.d], k: e.value.k ?? 1, g: e.value.g };
      } else if (current && current.n === n) {
        current.parts.push(e.value.d);
      }
      if (current && current.n === n && current.parts.length === current.k) {
        const data = concatBytes(current.parts);
        out.push(current.g === undefined ? { n, data } : { n, data, group: current.g });
        bytes += data.byteLength;
        current = undefined;
      }
    }
    return out;
  }
}
