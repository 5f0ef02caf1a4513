/**
 * Key layout of the Deno KV message bus used by KvPubSub.
 *
 * The bus is a small, fixed set of append-only logs ("shards"): one per stream hash bucket
 * plus one for remote commands. Each shard has a sequence key holding the number of its
 * newest entry; an append writes the incremented sequence and the entry in one atomic
 * commit, so a reader that sees sequence N can read every entry up to N.
 *
 *   [...prefix, "seq", shard]            number: the shard's newest sequence (never expires)
 *   [...prefix, "m", shard, seq]         BusEntry (expires)
 *   [...prefix, "mc", shard, seq, i]     chunk i of a long body (expires with its entry)
 *
 * A stream always maps to the same shard, so its messages keep their order in one log.
 */
import type { PackedText } from "../broker/kv_chunks.ts";

/** Stream shards are numbered 0..n-1; remote commands travel on this one. */
export const COMMAND_SHARD = "cmd";

export type ShardId = number | typeof COMMAND_SHARD;

/** `kv.watch` accepts at most 10 keys: every stream shard plus the command shard. */
export const MAX_STREAM_SHARDS = 9;

/** Stream names up to this length are copied into the entry so readers can filter cheaply. */
export const MAX_INLINE_STREAM = 1024;

/** One appended message; `text` or `chunks` holds the encoded payload (pubsub_codec.ts). */
export type BusEntry = {
  /** Id of the KvPubSub that appended it (its own entries are skipped on reading). */
  node: string;
  /** Stream of a stream message (absent for commands and for very long stream names). */
  stream?: string;
  /**
   * The writer's append counter for this shard (1, 2, ...): a retried append that had in fact
   * been committed shows up twice on the bus with one `n`, and readers hand it over once.
   */
  n?: number;
  /** When the writer appended it (ms): a node that subscribes later skips older entries. */
  t?: number;
} & PackedText;

/** Wall-clock time in ms with sub-ms precision, comparable between processes on one host. */
export function busTime(): number {
  return performance.timeOrigin + performance.now();
}

export function seqKey(prefix: Deno.KvKey, shard: ShardId): Deno.KvKey {
  return [...prefix, "seq", shard];
}

export function entryKey(prefix: Deno.KvKey, shard: ShardId, seq: number): Deno.KvKey {
  return [...prefix, "m", shard, seq];
}

export function chunkKey(prefix: Deno.KvKey, shard: ShardId, seq: number): Deno.KvKey {
  return [...prefix, "mc", shard, seq];
}

/** Every shard of a bus with `streamShards` stream shards, commands last. */
export function allShards(streamShards: number): ShardId[] {
  const out: ShardId[] = [];
  for (let i = 0; i < streamShards; i++) out.push(i);
  out.push(COMMAND_SHARD);
  return out;
}

/** The stream shard of `stream`: 32-bit FNV-1a over its UTF-16 code units, modulo `shards`. */
export function shardOf(stream: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < stream.length; i++) {
    hash ^= stream.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}
