import type { RedisSettings } from "../util/redis_settings.ts";
/**
 * Redis pub/sub between nodes (docs/protocol.md#pubsub-between-nodes): registered messages are PUBLISHed on a
 * channel named exactly the stream; each node SUBSCRIBEs to the streams it has local
 * subscribers for; remote commands travel on `__anycable_internal__`.
 *
 * Two connections: one in SUBSCRIBE mode (re-subscribes every current channel after a
 * reconnect) and one for PUBLISH, which refuses at once while Redis is down (the caller gets
 * a RedisUnavailableError rather than a publish delivered minutes later).
 *
 * `ready` is false from the moment the SUBSCRIBE connection drops until Redis has
 * acknowledged every re-subscription; the handler hears `linkLost` / `linkRestored`.
 */
import type { StreamMessage } from "../broker/broker.ts";
import { type Logger, silentLogger } from "../logger/logger.ts";
import { LIVENESS, RedisConnection, RedisUnavailableError } from "../util/redis_connection.ts";
import type { PubSub, PubSubHandler, RemoteCommand } from "./pubsub.ts";
import {
  decodeCommand,
  decodeStreamMessage,
  encodeCommand,
  encodeStreamMessage,
  INTERNAL_CHANNEL,
} from "./pubsub_codec.ts";

export interface RedisPubSubOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Sentinel, TLS and keepalive settings (see redis_settings.ts). */
  redis?: RedisSettings;
  /** Channel for remote commands; default `__anycable_internal__`. */
  internalChannel?: string;
  logger?: Logger;
}

export class RedisPubSub implements PubSub {
  readonly name = "redis";
  readonly #url: string;
  readonly #redis?: RedisSettings;
  readonly #internal: string;
  readonly #logger: Logger;
  readonly #streams = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  /** Streams whose UNSUBSCRIBE was lost with a dropped connection. */
  readonly #staleUnsubscribes = new Set<string>();
  #handler?: PubSubHandler;
  #pub?: RedisConnection;
  #sub?: RedisConnection;
  #closed = false;
  /** The SUBSCRIBE connection dropped and not every channel is subscribed again yet. */
  #restoring = false;
  /** Bumped on every drop, so a re-subscription that outlived its connection is ignored. */
  #generation = 0;
  #retryTimer?: ReturnType<typeof setTimeout>;

  constructor(opts: RedisPubSubOptions) {
    this.#url = opts.url;
    this.#redis = opts.redis;
    this.#internal = opts.internalChannel ?? INTERNAL_CHANNEL;
    this.#logger = (opts.logger ?? silentLogger).child({ pubsub: "redis" });
  }

  async start(handler: PubSubHandler): Promise<void> {
    this.#handler = handler;
    const pub = await RedisConnection.open({
      url: this.#url,
      settings: this.#redis,
      logger: this.#logger.child({ conn: "publish" }),
      failWhileDown: true,
      ...LIVENESS,
    });
    let sub: RedisConnection;
    try {
      sub = await RedisConnection.open({
        url: this.#url,
        settings: this.#redis,
        logger: this.#logger.child({ conn: "subscribe" }),
        ...LIVENESS,
      });
    } catch (err) {
      await pub.close();
      throw err;
    }
    if (this.#closed) {
      await Promise.all([pub.close(), sub.close()]);
      return;
    }
    this.#pub = pub;
    this.#sub = sub;
    sub.onDown(() => this.#lost());
    sub.onReconnect(() => this.#resubscribe(sub));
    await sub.subscribe([this.#internal], this.#onCommand);
    if (this.#streams.size > 0) await sub.subscribe([...this.#streams], this.#onMessage);
    this.#logger.info("pub/sub started", { redis: pub.target });
  }

  get ready(): boolean {
    return !this.#closed && !this.#restoring && this.#pub?.ready === true &&
      this.#sub?.ready === true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await Promise.all([this.#pub?.close(), this.#sub?.close()]);
    await Promise.allSettled([...this.#pending]);
  }

  subscribe(stream: string): void {
    if (this.#streams.has(stream)) return;
    this.#streams.add(stream);
    this.#staleUnsubscribes.delete(stream);
    const sub = this.#sub;
    if (sub !== undefined && !this.#closed) {
      this.#track(sub.subscribe([stream], this.#onMessage), "subscribe", stream);
    }
  }

  unsubscribe(stream: string): void {
    if (!this.#streams.delete(stream)) return;
    const sub = this.#sub;
    if (sub !== undefined && !this.#closed) {
      this.#track(sub.unsubscribe([stream]), "unsubscribe", stream, () => {
        if (!this.#streams.has(stream)) this.#staleUnsubscribes.add(stream);
      });
    }
  }

  /** Resolves once every subscribe/unsubscribe issued so far has been answered by Redis. */
  async sync(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  async broadcast(msg: StreamMessage): Promise<void> {
    await this.#publish(msg.stream, encodeStreamMessage(msg));
  }

  async broadcastCommand(cmd: RemoteCommand): Promise<void> {
    await this.#publish(this.#internal, encodeCommand(cmd));
  }

  async #publish(channel: string, payload: string): Promise<void> {
    const pub = this.#pub;
    if (pub === undefined || this.#closed) {
      throw new RedisUnavailableError("redis pub/sub is not running");
    }
    try {
      await pub.command(["PUBLISH", channel, payload]);
    } catch (err) {
      throw new RedisUnavailableError(`redis publish to ${channel} failed`, { cause: err });
    }
  }

  readonly #onMessage = (raw: string): void => {
    let msg: StreamMessage;
    try {
      msg = decodeStreamMessage(raw);
    } catch (err) {
      this.#logger.warn("dropping malformed pub/sub message", { error: err });
      return;
    }
    try {
      this.#handler?.deliver(msg);
    } catch (err) {
      this.#logger.error("pub/sub delivery failed", { stream: msg.stream, error: err });
    }
  };

  #lost(): void {
    if (this.#closed) return;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    if (this.#restoring) return;
    this.#restoring = true;
    try {
      this.#handler?.linkLost?.();
    } catch (err) {
      this.#logger.error("pub/sub link-lost handler failed", { error: err });
    }
  }

  /**
   * After a reconnect: SUBSCRIBE again to every current stream (node-redis restores only the
   * channels whose SUBSCRIBE had been acknowledged) and redo UNSUBSCRIBEs lost in the drop.
   * Once Redis has acknowledged them all, the link counts as restored.
   */
  #resubscribe(sub: RedisConnection): void {
    if (this.#closed) return;
    const generation = this.#generation;
    const streams = [...this.#streams];
    this.#logger.info("re-subscribing after reconnect", { streams: streams.length });
    const ops: Promise<void>[] = [sub.subscribe([this.#internal], this.#onCommand)];
    if (streams.length > 0) ops.push(sub.subscribe(streams, this.#onMessage));
    const channels = [this.#internal, ...streams];
    const stale = [...this.#staleUnsubscribes].filter((s) => !channels.includes(s));
    this.#staleUnsubscribes.clear();
    if (stale.length > 0) {
      this.#track(sub.unsubscribe(stale), "unsubscribe", stale.join(","), () => {
        for (const s of stale) if (!this.#streams.has(s)) this.#staleUnsubscribes.add(s);
      });
    }
    const done = Promise.all(ops).then(
      () => {
        if (this.#closed || generation !== this.#generation) return;
        this.#restoring = false;
        this.#logger.info("pub/sub subscriptions restored", { streams: streams.length });
        try {
          this.#handler?.linkRestored?.();
        } catch (err) {
          this.#logger.error("pub/sub link-restored handler failed", { error: err });
        }
      },
      (err) => {
        if (this.#closed || generation !== this.#generation) return;
        // Failed without a drop (a drop bumps the generation and reconnects): try again.
        this.#logger.warn("redis re-subscribe failed, retrying", { error: err });
        this.#retryTimer = setTimeout(() => this.#resubscribe(sub), 500);
      },
    );
    this.#pending.add(done);
    done.finally(() => this.#pending.delete(done));
  }

  readonly #onCommand = (raw: string): void => {
    let cmd: RemoteCommand;
    try {
      cmd = decodeCommand(raw);
    } catch (err) {
      this.#logger.warn("dropping malformed remote command", { error: err });
      return;
    }
    try {
      this.#handler?.execute(cmd);
    } catch (err) {
      this.#logger.error("remote command failed", { command: cmd.command, error: err });
    }
  };

  #track(op: Promise<void>, what: string, stream: string, onFailure?: () => void): void {
    const tracked = op.catch((err) => {
      if (this.#closed) return;
      // A drop fails in-flight (un)subscribes; the reconnect hook redoes them.
      this.#logger.warn(`redis ${what} failed, will retry after reconnect`, { stream, error: err });
      onFailure?.();
    });
    this.#pending.add(tracked);
    tracked.finally(() => this.#pending.delete(tracked));
  }
}
