/**
 * Appends entries to the shards of the KV bus (layout in kv_bus.ts).
 *
 * An append is a check-and-set on the shard's sequence key: the new sequence and the entry
 * (plus any chunks of a long body) are committed together, guarded by the versionstamp the
 * sequence had when it was read. A conflict means another process appended first; the
 * sequence is read again and the append retried. Within this process appends to one shard
 * are queued, so they keep their call order and do not conflict with each other; the last
 * committed sequence and versionstamp are remembered, so a lone writer needs no read at all.
 */
import { packText } from "../broker/kv_chunks.ts";
import type { RetryingKv } from "../broker/kv_retry.ts";
import {
  type BusEntry,
  busTime,
  chunkKey,
  entryKey,
  MAX_INLINE_STREAM,
  seqKey,
  type ShardId,
} from "./kv_bus.ts";

/** An append gives up after this many conflicts in a row. */
const MAX_ATTEMPTS = 1000;

interface Head {
  seq: number;
  versionstamp: string | null;
}

export class KvBusWriter {
  readonly #kv: RetryingKv;
  readonly #prefix: Deno.KvKey;
  readonly #node: string;
  readonly #expireIn: number;
  readonly #heads = new Map<ShardId, Head>();
  readonly #queues = new Map<ShardId, Promise<unknown>>();
  readonly #counters = new Map<ShardId, number>();

  constructor(opts: { kv: RetryingKv; prefix: Deno.KvKey; node: string; ttlMs: number }) {
    this.#kv = opts.kv;
    this.#prefix = opts.prefix;
    this.#node = opts.node;
    this.#expireIn = opts.ttlMs;
  }

  /** Appends `text` to `shard` and resolves with its sequence number. */
  append(shard: ShardId, text: string, stream?: string): Promise<number> {
    const n = (this.#counters.get(shard) ?? 0) + 1;
    this.#counters.set(shard, n);
    const t = busTime();
    const prev = this.#queues.get(shard) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(() => this.#append(shard, text, n, t, stream));
    this.#queues.set(shard, next);
    next.finally(() => {
      if (this.#queues.get(shard) === next) this.#queues.delete(shard);
    }).catch(() => {});
    return next;
  }

  /** Resolves once every append issued so far has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#queues.values()]);
  }

  async #append(
    shard: ShardId,
    text: string,
    n: number,
    t: number,
    stream?: string,
  ): Promise<number> {
    const key = seqKey(this.#prefix, shard);
    const options = { expireIn: this.#expireIn };
    for (let attempt = 1;; attempt++) {
      let head = this.#heads.get(shard);
      if (!head) {
        const current = await this.#kv.get<number>(key);
        head = { seq: current.value ?? 0, versionstamp: current.versionstamp };
      }
      const seq = head.seq + 1;
      const op = this.#kv.atomic().check({ key, versionstamp: head.versionstamp }).set(key, seq);
      const packed = packText(op, chunkKey(this.#prefix, shard, seq), text, options);
      const entry: BusEntry = { node: this.#node, n, t, ...packed };
      if (stream !== undefined && stream.length <= MAX_INLINE_STREAM) entry.stream = stream;
      op.set(entryKey(this.#prefix, shard, seq), entry, options);
      const res = await this.#kv.commit(op);
      if (res.ok) {
        this.#heads.set(shard, { seq, versionstamp: res.versionstamp });
        return seq;
      }
      this.#heads.delete(shard);
      if (attempt >= MAX_ATTEMPTS) {
        throw new Error(`kv pub/sub: append to shard ${shard} conflicted ${attempt} times`);
      }
    }
  }
}
