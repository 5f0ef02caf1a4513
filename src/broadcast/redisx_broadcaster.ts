import type { RedisSettings } from "../util/redis_settings.ts";
/**
 * Redis Streams broadcaster (`redisx`, docs/protocol.md#redisx-broadcast): one node of the cluster
 * consumes each `XADD __anycable__ * payload <json>` entry through consumer group `bx`, hands
 * it to the broker path (`fanout: false`) and only then XACKs + XDELs it. An entry whose
 * handling failed (e.g. 501: the pub/sub is reconnecting) stays pending and is never acked:
 * this consumer stops at it, backs off and retries its own pending entries first (XREADGROUP
 * from id 0), so entries keep their order. Entries left pending by a node that died are
 * XAUTOCLAIMed by another once idle for `claimIdleMs`.
 */
import { type Logger, silentLogger } from "../logger/logger.ts";
import {
  isReplyError,
  LIVENESS,
  RedisConnection,
  type RedisReply,
} from "../util/redis_connection.ts";
import { type Broadcaster, type BroadcastHandler, InvalidBroadcastError } from "./broadcaster.ts";

export interface RedisStreamsBroadcasterOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Sentinel, TLS and keepalive settings (see redis_settings.ts). */
  redis?: RedisSettings;
  /** Stream key; default `__anycable__`. */
  stream?: string;
  /** Consumer group; default `bx`. */
  group?: string;
  /** This node's consumer name; default a random per-instance id. */
  consumer?: string;
  logger?: Logger;
  /** XREADGROUP BLOCK; default 2000 ms. */
  blockMs?: number;
  /** Pending entries idle longer than this are claimed; default 2000 ms. */
  claimIdleMs?: number;
  /** Entries per read; default 10. */
  batchSize?: number;
}

interface StreamEntry {
  id: string;
  payload: string | null;
}

export class RedisStreamsBroadcaster implements Broadcaster {
  readonly name = "redisx";
  readonly fanout = false;
  readonly #url: string;
  readonly #redis?: RedisSettings;
  readonly #stream: string;
  readonly #group: string;
  readonly #consumer: string;
  readonly #logger: Logger;
  readonly #blockMs: number;
  readonly #claimIdleMs: number;
  readonly #batch: number;
  readonly #abort = new AbortController();
  #conn?: RedisConnection;
  #loop?: Promise<void>;
  #closed = false;
  #lastClaim = 0;
  /** A handling failed: re-read this consumer's pending entries before new ones. */
  #backlog = false;

  constructor(opts: RedisStreamsBroadcasterOptions) {
    this.#url = opts.url;
    this.#redis = opts.redis;
    this.#stream = opts.stream ?? "__anycable__";
    this.#group = opts.group ?? "bx";
    this.#consumer = opts.consumer ?? `cableway-${crypto.randomUUID().slice(0, 8)}`;
    this.#blockMs = opts.blockMs ?? 2000;
    this.#claimIdleMs = opts.claimIdleMs ?? 2000;
    this.#batch = opts.batchSize ?? 10;
    this.#logger = (opts.logger ?? silentLogger).child({
      broadcaster: "redisx",
      consumer: this.#consumer,
    });
  }

  /** This instance's consumer name in the group. */
  get consumer(): string {
    return this.#consumer;
  }

  async start(handler: BroadcastHandler): Promise<void> {
    const conn = await RedisConnection.open({
      url: this.#url,
      settings: this.#redis,
      logger: this.#logger,
      pingIntervalMs: LIVENESS.pingIntervalMs,
      // XREADGROUP BLOCK keeps the socket quiet for up to blockMs.
      idleTimeoutMs: LIVENESS.idleTimeoutMs + this.#blockMs,
    });
    if (this.#closed) {
      await conn.close();
      return;
    }
    this.#conn = conn;
    await this.#ensureGroup(conn);
    this.#lastClaim = Date.now();
    this.#loop = this.#run(conn, handler);
    this.#logger.info("consuming broadcasts", {
      stream: this.#stream,
      group: this.#group,
      redis: conn.target,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await this.#conn?.close();
    await this.#loop;
  }

  async #run(conn: RedisConnection, handler: BroadcastHandler): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        if (Date.now() - this.#lastClaim >= this.#claimIdleMs) {
          await this.#claimStale(conn, handler);
          this.#lastClaim = Date.now();
        }
        const backlog = this.#backlog;
        const reply = await conn.command([
          "XREADGROUP",
          "GROUP",
          this.#group,
          this.#consumer,
          "COUNT",
          this.#batch,
          ...(backlog ? [] : ["BLOCK", this.#blockMs]),
          "STREAMS",
          this.#stream,
          backlog ? "0" : ">",
        ]);
        const entries = parseReadReply(reply);
        if (backlog && entries.length === 0) this.#backlog = false;
        if (!await this.#process(conn, handler, entries)) {
          failures++;
          await abortableDelay(Math.min(50 * 2 ** Math.min(failures, 5), 1000), this.#abort.signal);
          continue;
        }
        failures = 0;
      } catch (err) {
        if (this.#closed) break;
        if (isReplyError(err, "NOGROUP")) {
          // Redis lost the stream (restart without persistence, FLUSHALL): recreate the group.
          // From "0", not "$": entries added since the restart are consumed too (consumed
          // entries are XDELed, so whatever the stream still holds is unconsumed).
          this.#logger.warn("redisx consumer group missing, recreating", { error: err });
          await this.#ensureGroup(conn, "0").catch(() => {});
          continue;
        }
        failures++;
        const backoff = Math.min(100 * 2 ** Math.min(failures, 5), 2000);
        if (conn.ready) {
          this.#logger.error("redisx read failed", { error: err, retry_ms: backoff });
        }
        // A dropped connection fails the in-flight read; later commands wait for the
        // reconnect, so this pause only keeps unexpected errors from spinning.
        await abortableDelay(backoff, this.#abort.signal);
      }
    }
  }

  async #ensureGroup(conn: RedisConnection, from = "$"): Promise<void> {
    try {
      await conn.command(["XGROUP", "CREATE", this.#stream, this.#group, from, "MKSTREAM"]);
    } catch (err) {
      if (!isReplyError(err, "BUSYGROUP")) throw err;
    }
  }

  /** XAUTOCLAIMs entries left pending (by a failed attempt or a dead node) and handles them. */
  async #claimStale(conn: RedisConnection, handler: BroadcastHandler): Promise<void> {
    let cursor = "0-0";
    for (let round = 0; round < 100 && !this.#closed; round++) {
      const reply = await conn.command([
        "XAUTOCLAIM",
        this.#stream,
        this.#group,
        this.#consumer,
        this.#claimIdleMs,
        cursor,
        "COUNT",
        this.#batch,
      ]);
      if (!Array.isArray(reply) || reply.length < 2) return;
      const entries = parseEntries(reply[1]);
      if (entries.length > 0) {
        this.#logger.debug("claimed pending broadcasts", { count: entries.length });
      }
      if (!await this.#process(conn, handler, entries)) return;
      cursor = typeof reply[0] === "string" ? reply[0] : "0-0";
      if (cursor === "0-0") return;
    }
  }

  /**
   * Handles entries in order; stops at the first that could not be handled (it stays
   * pending, as do the ones after it) and returns false.
   */
  async #process(
    conn: RedisConnection,
    handler: BroadcastHandler,
    entries: StreamEntry[],
  ): Promise<boolean> {
    for (const entry of entries) {
      if (this.#closed) return true;
      if (entry.payload === null) {
        this.#logger.warn("redisx entry without payload dropped", { id: entry.id });
        await this.#ack(conn, entry.id);
        continue;
      }
      try {
        await handler.handleBroadcast(entry.payload, { fanout: false });
      } catch (err) {
        if (!(err instanceof InvalidBroadcastError)) {
          // Left pending: XAUTOCLAIM retries it once idle.
          this.#logger.warn("failed to handle broadcast, will retry", {
            id: entry.id,
            error: err,
          });
          this.#backlog = true;
          return false;
        }
        this.#logger.warn("invalid broadcast message", { id: entry.id, error: err });
      }
      await this.#ack(conn, entry.id);
    }
    return true;
  }

  async #ack(conn: RedisConnection, id: string): Promise<void> {
    await conn.command(["XACK", this.#stream, this.#group, id]);
    await conn.command(["XDEL", this.#stream, id]);
  }
}

/** XREADGROUP reply: null on timeout, else [[stream, entries]]. */
function parseReadReply(reply: RedisReply): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const streamReply of reply) {
    if (Array.isArray(streamReply) && streamReply.length >= 2) {
      out.push(...parseEntries(streamReply[1]));
    }
  }
  return out;
}

/** [[id, [field, value, ...] | null], ...] */
function parseEntries(reply: RedisReply): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || typeof item[0] !== "string") continue;
    const fields = item[1];
    let payload: string | null = null;
    if (Array.isArray(fields)) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const value = fields[i + 1];
        if (fields[i] === "payload" && typeof value === "string") payload = value;
      }
    }
    out.push({ id: item[0], payload });
  }
  return out;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
