import type { RedisSettings } from "../util/redis_settings.ts";
/**
 * Legacy Redis pub/sub broadcaster (docs/protocol.md#redis-broadcast): SUBSCRIBE to `__anycable__`;
 * every node receives every publication and delivers it locally (fan-out, no broker).
 */
import { type Logger, silentLogger } from "../logger/logger.ts";
import { LIVENESS, RedisConnection } from "../util/redis_connection.ts";
import { type Broadcaster, type BroadcastHandler, InvalidBroadcastError } from "./broadcaster.ts";

export interface RedisBroadcasterOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Sentinel, TLS and keepalive settings (see redis_settings.ts). */
  redis?: RedisSettings;
  /** Pub/sub channel; default `__anycable__`. */
  channel?: string;
  logger?: Logger;
}

export class RedisBroadcaster implements Broadcaster {
  readonly name = "redis";
  readonly fanout = true;
  readonly #url: string;
  readonly #redis?: RedisSettings;
  readonly #channel: string;
  readonly #logger: Logger;
  #conn?: RedisConnection;
  #closed = false;
  /** Publications are handed over one at a time, in arrival order. */
  #chain: Promise<void> = Promise.resolve();

  constructor(opts: RedisBroadcasterOptions) {
    this.#url = opts.url;
    this.#redis = opts.redis;
    this.#channel = opts.channel ?? "__anycable__";
    this.#logger = (opts.logger ?? silentLogger).child({ broadcaster: "redis" });
  }

  async start(handler: BroadcastHandler): Promise<void> {
    const conn = await RedisConnection.open({
      url: this.#url,
      settings: this.#redis,
      logger: this.#logger,
      ...LIVENESS,
    });
    if (this.#closed) {
      await conn.close();
      return;
    }
    this.#conn = conn;
    const listener = (message: string) => {
      this.#chain = this.#chain.then(() => this.#handle(handler, message));
    };
    await conn.subscribe([this.#channel], listener);
    // node-redis restores acknowledged subscriptions itself; this makes sure of it.
    conn.onReconnect(() => {
      conn.subscribe([this.#channel], listener).catch((err) => {
        if (!this.#closed) this.#logger.warn("redis re-subscribe failed", { error: err });
      });
    });
    this.#logger.info("subscribed to broadcasts", {
      channel: this.#channel,
      redis: conn.target,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#conn?.close();
    await this.#chain;
  }

  async #handle(handler: BroadcastHandler, body: string): Promise<void> {
    if (this.#closed) return;
    try {
      await handler.handleBroadcast(body, { fanout: true });
    } catch (err) {
      if (err instanceof InvalidBroadcastError) {
        this.#logger.warn("invalid broadcast message", { error: err });
      } else {
        this.#logger.error("failed to handle broadcast", { error: err });
      }
    }
  }
}
