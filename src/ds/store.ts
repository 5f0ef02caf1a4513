import type { DsEntry, DsMeta } from "./types.ts";

/** A stream as loaded, with an opaque version for optimistic concurrency. */
export interface StoredStream {
  meta: DsMeta;
  version: string;
}

/**
 * The Durable Streams storage seam (memory, Deno KV, Redis). Stores only: the rules live in
 * DsStreams. Writers load a stream, decide, and commit against the version they loaded.
 */
export interface DurableStreamStore {
  /** "memory", "kv", "redis". */
  readonly name: string;
  /** True when streams survive a restart. */
  readonly durable: boolean;
  start(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;

  load(stream: string): Promise<StoredStream | null>;
  /**
   * Replaces the stream's meta (null deletes the stream and all entries of `drop`), adds
   * `entries` under `meta.generation`, atomically, if the stored version is still `expected`
   * (null = the stream must not exist). False when another writer got there first.
   */
  commit(
    stream: string,
    expected: string | null,
    meta: DsMeta | null,
    entries: DsEntry[],
    drop?: string,
  ): Promise<boolean>;
  /**
   * Every stream name, for stores that want a periodic sweep of expired streams (the memory
   * store; the durable ones drop an expired stream when it is next touched).
   */
  list?(): Promise<string[]>;
  /** Entries `after < n <= upTo` of one generation, in order, stopping once `maxBytes` is passed. */
  read(
    stream: string,
    generation: string,
    after: number,
    upTo: number,
    maxBytes: number,
  ): Promise<DsEntry[]>;
}
