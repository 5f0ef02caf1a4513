/**
 * Follows the shards of the KV bus (layout in kv_bus.ts) and hands their new entries over in
 * sequence order, each exactly once.
 *
 * Two signals say a shard moved on, and both only raise the shard's target sequence:
 * - one `kv.watch` on every sequence key (at most 10 keys, so a single watch). On Deno Deploy
 *   it reports writes from every isolate; a local SQLite file reports only writes made by
 *   this process (denoland/deno#21640), and a watch may skip intermediate values;
 * - a poll of the same keys every `pollInterval` ms: the only cross-process signal on a
 *   local file, and a safety net for a broken watch on Deploy.
 *
 * One pump at a time reads each wanted shard's entries between the last handled sequence and
 * the target (a range list, so coalesced signals lose nothing). A shard nobody wants right
 * now is skipped by moving its last handled sequence forward without reading. Entries that
 * expired before they were read are reported as a gap and skipped.
 */
import type { Logger } from "../logger/logger.ts";
import { unpackText } from "../broker/kv_chunks.ts";
import type { RetryingKv } from "../broker/kv_retry.ts";
import { type BusEntry, chunkKey, entryKey, seqKey, type ShardId } from "./kv_bus.ts";

/** Entries read per range list; a longer backlog is read in several rounds. */
const BATCH = 500;
/** Pause before a broken watch is opened again. */
const REWATCH_MS = 1000;

export interface KvBusReaderOptions {
  kv: RetryingKv;
  prefix: Deno.KvKey;
  shards: ShardId[];
  pollInterval: number;
  logger: Logger;
  /** Whether this node needs `shard`'s entries now (it has subscribers for one of its streams). */
  wanted(shard: ShardId): boolean;
  /** Whether `entry` is for this node, decided before its body is read. */
  accept(shard: ShardId, entry: BusEntry): boolean;
  /** An accepted entry's body, in sequence order. */
  handle(shard: ShardId, text: string): void;
}

export class KvBusReader {
  readonly #opts: KvBusReaderOptions;
  readonly #keys: Deno.KvKey[];
  /** Last sequence handled (or skipped) per shard. */
  readonly #last = new Map<ShardId, number>();
  /** Newest sequence seen per shard. */
  readonly #target = new Map<ShardId, number>();
  /** Highest append counter handed over per shard and writer (duplicate appends). */
  readonly #counters = new Map<string, number>();
  /** Newest versionstamp seen per shard's sequence key. */
  readonly #stamps = new Map<ShardId, string>();
  #pump?: Promise<void>;
  #poll?: Promise<void>;
  #timer?: ReturnType<typeof setInterval>;
  #watch?: ReadableStreamDefaultReader<Deno.KvEntryMaybe<number>[]>;
  #watching?: Promise<void>;
  #rewatch?: { timer: ReturnType<typeof setTimeout>; resolve: () => void };
  #closed = false;

  constructor(opts: KvBusReaderOptions) {
    this.#opts = opts;
    this.#keys = opts.shards.map((s) => seqKey(opts.prefix, s));
  }

  /** Reads the current sequences (older entries are never handed over) and starts following. */
  async start(): Promise<void> {
    const heads = await this.#opts.kv.getMany<number[]>(this.#keys);
    this.#opts.shards.forEach((shard, i) => {
      const seq = heads[i].value ?? 0;
      this.#last.set(shard, seq);
      this.#target.set(shard, seq);
      if (heads[i].versionstamp) this.#stamps.set(shard, heads[i].versionstamp);
    });
    if (this.#closed) return;
    this.#watching = this.#watchLoop();
    this.#timer = setInterval(() => this.#pollOnce(), this.#opts.pollInterval);
  }

  /** Idempotent; resolves once the watch, the poll and the pump have stopped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#rewatch) {
      clearTimeout(this.#rewatch.timer);
      this.#rewatch.resolve();
    }
    await this.#watch?.cancel().catch(() => {});
    await Promise.allSettled([this.#watching, this.#poll, this.#pump]);
  }

  /** Resolves once every entry appended before the call has been handled (or skipped). */
  async sync(): Promise<void> {
    await this.#poll;
    await this.#pollOnce();
    while (this.#pump) await this.#pump;
  }

  #pollOnce(): Promise<void> {
    if (this.#poll || this.#closed) return this.#poll ?? Promise.resolve();
    const poll = this.#opts.kv.getMany<number[]>(this.#keys).then(
      (heads) => this.#observe(heads),
      (err) => this.#opts.logger.warn("kv pub/sub poll failed", { error: err }),
    ).finally(() => {
      if (this.#poll === poll) this.#poll = undefined;
    });
    this.#poll = poll;
    return poll;
  }

  async #watchLoop(): Promise<void> {
    while (!this.#closed) {
      try {
        const reader = this.#opts.kv.kv.watch<number[]>(this.#keys).getReader();
        this.#watch = reader;
        if (this.#closed) await reader.cancel();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          this.#observe(value);
        }
      } catch (err) {
        if (this.#closed) return;
        this.#opts.logger.warn("kv pub/sub watch failed, reopening", { error: err });
      }
      if (this.#closed) return;
      // Polling keeps delivering meanwhile; this pause only avoids a tight reopen loop.
      await new Promise<void>((resolve) => {
        this.#rewatch = { timer: setTimeout(resolve, REWATCH_MS), resolve };
      });
      this.#rewatch = undefined;
    }
  }

  #observe(heads: Deno.KvEntryMaybe<number>[]): void {
    if (this.#closed) return;
    let moved = false;
    this.#opts.shards.forEach((shard, i) => {
      const seq = typeof heads[i]?.value === "number" ? heads[i].value as number : 0;
      const last = this.#last.get(shard) ?? 0;
      // A poll that started before the pump moved on reports an older head: versionstamps
      // only grow, so a head not newer than one already seen is stale, never a reset.
      const stamp = heads[i]?.versionstamp ?? "";
      const seen = this.#stamps.get(shard) ?? "";
      const fresh = stamp > seen;
      if (fresh) this.#stamps.set(shard, stamp);
      if (seq < last && fresh) {
        // The sequence went back: the bus was wiped. Follow it from where it is now.
        this.#opts.logger.warn("kv pub/sub sequence went back, resetting", { shard, seq, last });
        this.#last.set(shard, seq);
        this.#target.set(shard, seq);
      } else if (seq > (this.#target.get(shard) ?? 0)) {
        this.#target.set(shard, seq);
        moved = true;
      }
    });
    if (moved) this.#kick();
  }

  #kick(): void {
    if (this.#pump || this.#closed) return;
    const pump = this.#run().then(() => true, (err) => {
      // The next poll or watch signal starts a new pump, which retries from #last.
      this.#opts.logger.warn("kv pub/sub read failed, will retry", { error: err });
      return false;
    }).then((ok) => {
      this.#pump = undefined;
      // A signal that arrived while this pump was finishing.
      if (ok && this.#behind()) this.#kick();
    });
    this.#pump = pump;
  }

  #behind(): boolean {
    return this.#opts.shards.some((s) => (this.#target.get(s) ?? 0) > (this.#last.get(s) ?? 0));
  }

  async #run(): Promise<void> {
    while (!this.#closed && this.#behind()) {
      for (const shard of this.#opts.shards) {
        if (this.#closed) return;
        const target = this.#target.get(shard) ?? 0;
        const last = this.#last.get(shard) ?? 0;
        if (target <= last) continue;
        if (!this.#opts.wanted(shard)) {
          this.#last.set(shard, target);
          continue;
        }
        await this.#read(shard, last, Math.min(target, last + BATCH));
      }
    }
  }

  /** Handles entries `from+1 ..= to` of `shard`, in order. */
  async #read(shard: ShardId, from: number, to: number): Promise<void> {
    const { kv, prefix, logger } = this.#opts;
    const entries = await kv.list<BusEntry>({
      start: entryKey(prefix, shard, from + 1),
      end: entryKey(prefix, shard, to + 1),
    });
    let expected = from + 1;
    for (const e of entries) {
      if (this.#closed) return;
      const seq = e.key[e.key.length - 1] as number;
      if (seq > expected) {
        logger.warn("kv pub/sub entries expired unread", { shard, from: expected, to: seq - 1 });
      }
      expected = seq + 1;
      if (this.#duplicate(shard, e.value)) {
        logger.debug("kv pub/sub skipped a duplicate append", { shard, seq });
      } else if (this.#opts.accept(shard, e.value)) {
        const text = await unpackText(kv, chunkKey(prefix, shard, seq), e.value);
        if (text === null) logger.warn("kv pub/sub entry lost its chunks", { shard, seq });
        else this.#deliver(shard, seq, text);
      }
      this.#last.set(shard, seq);
    }
    if (expected <= to) {
      logger.warn("kv pub/sub entries expired unread", { shard, from: expected, to });
    }
    this.#last.set(shard, to);
  }

  /** An entry whose writer already appended it under an earlier sequence. */
  #duplicate(shard: ShardId, entry: BusEntry): boolean {
    if (typeof entry.n !== "number") return false;
    const key = `${shard}\u0000${entry.node}`;
    if (entry.n <= (this.#counters.get(key) ?? 0)) return true;
    this.#counters.set(key, entry.n);
    return false;
  }

  #deliver(shard: ShardId, seq: number, text: string): void {
    try {
      this.#opts.handle(shard, text);
    } catch (err) {
      this.#opts.logger.error("kv pub/sub handler failed", { shard, seq, error: err });
    }
  }
}
