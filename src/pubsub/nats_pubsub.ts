/**
 * NATS pub/sub between nodes (docs/protocol.md#pubsub-between-nodes): registered messages are published on a
 * subject named exactly the stream; each node subscribes to the streams it has local
 * subscribers for; remote commands travel on `__anycable_internal__`.
 *
 * While NATS is down, publishes are refused with NatsUnavailableError (nats.js would silently
 * drop them: it discards its outbound buffer when it redials).
 *
 * `ready` is false from a disconnect until the server has acknowledged (flush) the
 * subscriptions nats.js re-sends on reconnect; the handler hears `linkLost` / `linkRestored`.
 */
import type { Msg, NatsError, Subscription } from "nats";
import type { StreamMessage } from "../broker/broker.ts";
import { type Logger, silentLogger } from "../logger/logger.ts";
import { NatsLink, NatsUnavailableError } from "../util/nats_connection.ts";
import type { PubSub, PubSubHandler, RemoteCommand } from "./pubsub.ts";
import {
  decodeCommand,
  decodeStreamMessage,
  encodeCommand,
  encodeStreamMessage,
  INTERNAL_CHANNEL,
} from "./pubsub_codec.ts";

export class InvalidSubjectError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidSubjectError";
  }
}

export interface NatsPubSubOptions {
  /** `nats://host:port`, a comma-separated list, or an array of them. */
  servers: string | string[];
  /** Subject for remote commands; default `__anycable_internal__`. */
  internalChannel?: string;
  logger?: Logger;
  /** `--nats_dont_randomize_servers`: try the servers in the given order. */
  noRandomize?: boolean;
}

export class NatsPubSub implements PubSub {
  readonly name = "nats";
  readonly #servers: string | string[];
  readonly #noRandomize: boolean;
  readonly #internal: string;
  readonly #logger: Logger;
  readonly #subs = new Map<string, Subscription | null>();
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();
  #handler?: PubSubHandler;
  #link?: NatsLink;
  #closed = false;
  #restoring = false;
  #generation = 0;

  constructor(opts: NatsPubSubOptions) {
    this.#servers = opts.servers;
    this.#noRandomize = opts.noRandomize ?? false;
    this.#internal = opts.internalChannel ?? INTERNAL_CHANNEL;
    this.#logger = (opts.logger ?? silentLogger).child({ pubsub: "nats" });
  }

  async start(handler: PubSubHandler): Promise<void> {
    this.#handler = handler;
    const link = await NatsLink.open({
      servers: this.#servers,
      logger: this.#logger,
      name: "cableway-pubsub",
      noRandomize: this.#noRandomize,
    });
    if (this.#closed) {
      await link.close();
      return;
    }
    this.#link = link;
    link.onDisconnect(() => this.#lost());
    link.onReconnect(() => this.#restore(link));
    link.nc.subscribe(this.#internal, {
      callback: (err, msg) => this.#onCommand(err, msg),
    });
    for (const stream of this.#subs.keys()) this.#subs.set(stream, this.#subscribeNow(stream));
    await link.nc.flush();
    this.#logger.info("pub/sub started");
  }

  get ready(): boolean {
    const link = this.#link;
    return link !== undefined && !this.#closed && !this.#restoring && link.connected;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subs.clear();
    await this.#link?.close();
  }

  subscribe(stream: string): void {
    if (this.#subs.has(stream)) return;
    this.#subs.set(stream, this.#link && !this.#closed ? this.#subscribeNow(stream) : null);
  }

  unsubscribe(stream: string): void {
    const sub = this.#subs.get(stream);
    if (sub === undefined) return;
    this.#subs.delete(stream);
    try {
      sub?.unsubscribe();
    } catch (err) {
      this.#logger.debug("nats unsubscribe failed", { stream, error: err });
    }
  }

  /** Resolves once the server has processed every subscribe/unsubscribe sent so far. */
  async sync(): Promise<void> {
    const link = this.#link;
    if (link === undefined || link.closed) return;
    await link.nc.flush();
  }

  broadcast(msg: StreamMessage): Promise<void> {
    return this.#publish(msg.stream, encodeStreamMessage(msg));
  }

  broadcastCommand(cmd: RemoteCommand): Promise<void> {
    return this.#publish(this.#internal, encodeCommand(cmd));
  }

  #publish(subject: string, payload: string): Promise<void> {
    const link = this.#link;
    if (link === undefined || this.#closed || link.closed) {
      return Promise.reject(new NatsUnavailableError("nats pub/sub is not running"));
    }
    if (!isValidSubject(subject)) {
      return Promise.reject(new InvalidSubjectError(`not a valid NATS subject: ${subject}`));
    }
    if (!link.connected) {
      return Promise.reject(new NatsUnavailableError(`nats is down; not published to ${subject}`));
    }
    try {
      link.nc.publish(subject, this.#encoder.encode(payload));
    } catch (err) {
      return Promise.reject(
        new NatsUnavailableError(`nats publish to ${subject} failed`, { cause: err }),
      );
    }
    return Promise.resolve();
  }

  #lost(): void {
    if (this.#closed) return;
    this.#generation++;
    if (this.#restoring) return;
    this.#restoring = true;
    try {
      this.#handler?.linkLost?.();
    } catch (err) {
      this.#logger.error("pub/sub link-lost handler failed", { error: err });
    }
  }

  /** After a reconnect: once the server answered a PING sent after the re-sent SUBs. */
  #restore(link: NatsLink): void {
    if (this.#closed || !this.#restoring) return;
    const generation = this.#generation;
    link.nc.flush().then(
      () => {
        if (this.#closed || generation !== this.#generation || !link.connected) return;
        this.#restoring = false;
        this.#logger.info("pub/sub subscriptions restored", { streams: this.#subs.size });
        try {
          this.#handler?.linkRestored?.();
        } catch (err) {
          this.#logger.error("pub/sub link-restored handler failed", { error: err });
        }
      },
      (err) => {
        if (this.#closed || generation !== this.#generation) return;
        // Still connected (a drop bumps the generation, the next reconnect retries): again.
        this.#logger.warn("nats flush after reconnect failed, retrying", { error: err });
        setTimeout(() => {
          if (generation === this.#generation && link.connected) this.#restore(link);
        }, 500);
      },
    );
  }

  #subscribeNow(stream: string): Subscription | null {
    if (!isValidSubject(stream)) {
      this.#logger.error("stream name is not a valid NATS subject; not subscribed", { stream });
      return null;
    }
    try {
      return this.#link!.nc.subscribe(stream, {
        callback: (err, msg) => this.#onMessage(err, msg),
      });
    } catch (err) {
      this.#logger.error("nats subscribe failed", { stream, error: err });
      return null;
    }
  }

  #onMessage(err: NatsError | null, msg: Msg): void {
    if (err) {
      this.#logger.warn("nats subscription error", { error: err });
      return;
    }
    let decoded: StreamMessage;
    try {
      decoded = decodeStreamMessage(this.#decoder.decode(msg.data));
    } catch (e) {
      this.#logger.warn("dropping malformed pub/sub message", { error: e });
      return;
    }
    try {
      this.#handler?.deliver(decoded);
    } catch (e) {
      this.#logger.error("pub/sub delivery failed", { stream: decoded.stream, error: e });
    }
  }

  #onCommand(err: NatsError | null, msg: Msg): void {
    if (err) {
      this.#logger.warn("nats subscription error", { error: err });
      return;
    }
    let cmd: RemoteCommand;
    try {
      cmd = decodeCommand(this.#decoder.decode(msg.data));
    } catch (e) {
      this.#logger.warn("dropping malformed remote command", { error: e });
      return;
    }
    try {
      this.#handler?.execute(cmd);
    } catch (e) {
      this.#logger.error("remote command failed", { command: cmd.command, error: e });
    }
  }
}

/** Non-empty dot-separated tokens, no whitespace, no wildcards. */
function isValidSubject(subject: string): boolean {
  if (subject === "" || /[\s*>]/.test(subject)) return false;
  return subject.split(".").every((token) => token !== "");
}
