/**
 * Pub/sub between processes (or Deno Deploy isolates) sharing one Deno KV database.
 *
 * Deno KV has no fan-out primitive: a queue message (`enqueue`/`listenQueue`) goes to ONE
 * listener, and `watch` reports only the latest value of a key. So messages go through a
 * log in KV, the bus of kv_bus.ts: a few shards (a stream hashes to one, commands have their
 * own), each an atomically numbered sequence of entries that expire after `ttl` seconds.
 * Every node follows the shard sequences (one watch plus a poll, kv_bus_reader.ts) and reads
 * the entries of the shards holding streams it has subscribers for, in order, once.
 *
 * A message published on this node is handed to the local handler at once and not again
 * when it comes back through the bus (entries carry the id of the node that wrote them).
 * Ordering: per stream, in the order the bus committed the appends; a node publishing on
 * a stream sees its own messages immediately, i.e. possibly before an earlier remote one.
 */
import type { StreamMessage } from "../broker/broker.ts";
import { retryBusy, RetryingKv } from "../broker/kv_retry.ts";
import { type Logger, silentLogger } from "../logger/logger.ts";
import {
  allShards,
  type BusEntry,
  busTime,
  COMMAND_SHARD,
  MAX_STREAM_SHARDS,
  shardOf,
} from "./kv_bus.ts";
import type { ShardId } from "./kv_bus.ts";
import { KvBusReader } from "./kv_bus_reader.ts";
import { KvBusWriter } from "./kv_bus_writer.ts";
import type { PubSub, PubSubHandler, RemoteCommand } from "./pubsub.ts";
import {
  decodeCommand,
  decodeStreamMessage,
  encodeCommand,
  encodeStreamMessage,
} from "./pubsub_codec.ts";

export interface KvPubSubOptions {
  /** Database path; undefined or "" -> `Deno.openKv()`'s default (Deno Deploy's). */
  path?: string;
  /** An already open database; it is then never closed here. */
  kv?: Deno.Kv;
  /** Prefix of every key written; default `["cableway_pubsub"]`. */
  prefix?: Deno.KvKey;
  /** Stream shards, 1..9; default 8. Every node must use the same number. */
  shards?: number;
  /** Seconds an entry stays readable; default 60. A node lagging longer loses messages. */
  ttl?: number;
  /**
   * Milliseconds between polls of the shard sequences. Default: 5000 on Deno Deploy and for
   * remote (http/https) databases, where the watch sees every writer and the poll is only a
   * safety net; 50 otherwise, because a local file's watch misses other processes' writes.
   */
  pollInterval?: number;
  logger?: Logger;
}

export const DEFAULT_SHARDS = 8;
export const DEFAULT_TTL_SECONDS = 60;
const REMOTE_POLL_MS = 5000;
const LOCAL_POLL_MS = 50;

/** True when running on Deno Deploy (which sets these variables; env access may be denied). */
export function onDenoDeploy(): boolean {
  try {
    return Deno.env.get("DENO_DEPLOY") === "true" ||
      Deno.env.get("DENO_DEPLOYMENT_ID") !== undefined;
  } catch {
    return false;
  }
}

export function defaultPollInterval(path: string | undefined): number {
  const remote = /^https?:\/\//.test(path ?? "") || (!path && onDenoDeploy());
  return remote ? REMOTE_POLL_MS : LOCAL_POLL_MS;
}

export class KvPubSub implements PubSub {
  readonly name = "kv";
  /** A lagging reader catches up from the bus log by itself: no link state to wait for. */
  get ready(): boolean {
    return this.#writer !== undefined && !this.#closed;
  }
  /** Random id of this node on the bus. */
  readonly node = crypto.randomUUID();
  readonly #opts: KvPubSubOptions;
  readonly #prefix: Deno.KvKey;
  readonly #shards: number;
  readonly #logger: Logger;
  /** Subscribed streams, with when (ms) this node subscribed to each. */
  readonly #streams = new Map<string, number>();
  /** Subscribed streams per stream shard. */
  readonly #shardStreams: number[];
  #handler?: PubSubHandler;
  #kv?: RetryingKv;
  #owned = false;
  #writer?: KvBusWriter;
  #reader?: KvBusReader;
  #closed = false;
  #closing?: Promise<void>;

  constructor(opts: KvPubSubOptions = {}) {
    const shards = opts.shards ?? DEFAULT_SHARDS;
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_STREAM_SHARDS) {
      throw new RangeError(`kv pub/sub: shards must be 1..${MAX_STREAM_SHARDS}, got ${shards}`);
    }
    this.#opts = opts;
    this.#prefix = opts.prefix ?? ["cableway_pubsub"];
    this.#shards = shards;
    this.#shardStreams = new Array(shards).fill(0);
    this.#logger = (opts.logger ?? silentLogger).child({ pubsub: "kv" });
  }

  async start(handler: PubSubHandler): Promise<void> {
    if (this.#kv || this.#closed) return;
    this.#handler = handler;
    let kv = this.#opts.kv;
    const path = this.#opts.path || undefined;
    if (!kv) {
      try {
        kv = await retryBusy(() => Deno.openKv(path));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`cannot open Deno KV database ${path ?? "(default)"}: ${reason}`, {
          cause: err,
        });
      }
      this.#owned = true;
    }
    const db = new RetryingKv(kv);
    const ttlMs = Math.max(1, this.#opts.ttl ?? DEFAULT_TTL_SECONDS) * 1000;
    const pollInterval = this.#opts.pollInterval ?? defaultPollInterval(path);
    const reader = new KvBusReader({
      kv: db,
      prefix: this.#prefix,
      shards: allShards(this.#shards),
      pollInterval,
      logger: this.#logger,
      wanted: (shard) => shard === COMMAND_SHARD || this.#shardStreams[shard] > 0,
      accept: (shard, entry) => this.#accept(shard, entry),
      handle: (shard, text) => this.#handle(shard, text),
    });
    try {
      await reader.start();
    } catch (err) {
      await reader.close();
      if (this.#owned) kv.close();
      throw err;
    }
    this.#kv = db;
    this.#reader = reader;
    this.#writer = new KvBusWriter({ kv: db, prefix: this.#prefix, node: this.node, ttlMs });
    if (this.#closed) {
      await this.#shutdown();
      return;
    }
    this.#logger.info("pub/sub started", {
      kv: path ?? "(default)",
      shards: this.#shards,
      poll_ms: pollInterval,
    });
  }

  /** Idempotent: stops following the bus, waits for pending appends, closes an owned database. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  subscribe(stream: string): void {
    if (this.#streams.has(stream)) return;
    this.#streams.set(stream, busTime());
    this.#shardStreams[shardOf(stream, this.#shards)]++;
  }

  unsubscribe(stream: string): void {
    if (!this.#streams.delete(stream)) return;
    this.#shardStreams[shardOf(stream, this.#shards)]--;
  }

  /** Delivers locally at once, then appends for the other nodes. */
  async broadcast(msg: StreamMessage): Promise<void> {
    const writer = this.#running();
    this.#safely(() => this.#handler?.deliver(msg), "delivery", { stream: msg.stream });
    await writer.append(shardOf(msg.stream, this.#shards), encodeStreamMessage(msg), msg.stream);
  }

  /** Executes locally at once, then appends for the other nodes. */
  async broadcastCommand(cmd: RemoteCommand): Promise<void> {
    const writer = this.#running();
    this.#safely(() => this.#handler?.execute(cmd), "remote command", { command: cmd.command });
    await writer.append(COMMAND_SHARD, encodeCommand(cmd));
  }

  /**
   * Resolves once every message appended to the bus before the call (by any node) has been
   * handled here. For tests and tools; delivery does not need it.
   */
  async sync(): Promise<void> {
    await this.#writer?.drain();
    await this.#reader?.sync();
  }

  #running(): KvBusWriter {
    if (!this.#writer || this.#closed) throw new Error("kv pub/sub is not running");
    return this.#writer;
  }

  #accept(shard: ShardId, entry: BusEntry): boolean {
    if (entry.node === this.node) return false;
    if (shard === COMMAND_SHARD || entry.stream === undefined) return true;
    // Like any pub/sub, a subscription sees what is published after it, not the backlog a
    // reader that was not following this stream had yet to read.
    const since = this.#streams.get(entry.stream);
    return since !== undefined && (entry.t === undefined || entry.t >= since);
  }

  #handle(shard: ShardId, text: string): void {
    if (shard === COMMAND_SHARD) {
      const cmd = decodeCommand(text);
      this.#safely(() => this.#handler?.execute(cmd), "remote command", { command: cmd.command });
      return;
    }
    const msg = decodeStreamMessage(text);
    // Entries without an inline stream name are filtered here, after decoding.
    if (!this.#streams.has(msg.stream)) return;
    this.#safely(() => this.#handler?.deliver(msg), "delivery", { stream: msg.stream });
  }

  #safely(fn: () => void, what: string, fields: Record<string, unknown>): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error(`kv pub/sub ${what} failed`, { ...fields, error: err });
    }
  }

  async #shutdown(): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    this.#kv = undefined;
    await this.#reader?.close();
    await this.#writer?.drain();
    if (this.#owned) kv.kv.close();
  }
}
