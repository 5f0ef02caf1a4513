import type { Broker, StreamMessage } from "../broker/broker.ts";
import {
  type BroadcastHandler,
  InvalidBroadcastError,
  NOT_JSON,
} from "../broadcast/broadcaster.ts";
import type { Hub } from "../hub/hub.ts";
import type { Logger } from "../logger/logger.ts";
import {
  type PubSub,
  type PubSubHandler,
  PubSubUnavailableError,
  type RemoteCommand,
} from "../pubsub/pubsub.ts";

export interface PublisherStats {
  broadcasts: number;
  failedBroadcasts: number;
}

/**
 * The broadcast pipeline: parse a publication, register it with the broker (single-delivery
 * intakes only), and hand it to the pub/sub. Per stream, registration and hand-off happen in
 * publication order.
 *
 * Nothing is registered or handed over while `ready()` is false (the pub/sub link is down or
 * this node is still catching up after a drop): the publication is refused with
 * PubSubUnavailableError (HTTP 501) rather than accepted and missed by subscribers.
 */
export class Publisher implements BroadcastHandler {
  readonly #broker: Broker;
  readonly #pubsub: PubSub;
  readonly #hub: Hub;
  readonly #local: PubSubHandler;
  readonly #logger: Logger;
  readonly #ready: () => boolean;
  readonly #chains = new Map<string, Promise<void>>();
  readonly stats: PublisherStats = { broadcasts: 0, failedBroadcasts: 0 };

  constructor(
    opts: {
      broker: Broker;
      pubsub: PubSub;
      hub: Hub;
      local: PubSubHandler;
      logger: Logger;
      /** Whether publications can be accepted now; default: the pub/sub's `ready`. */
      ready?: () => boolean;
    },
  ) {
    const pubsub = opts.pubsub;
    this.#ready = opts.ready ?? (() => pubsub.ready);
    this.#broker = opts.broker;
    this.#pubsub = opts.pubsub;
    this.#hub = opts.hub;
    this.#local = opts.local;
    this.#logger = opts.logger;
  }

  handleBroadcast(body: string, opts: { fanout: boolean }): Promise<void> {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      value = NOT_JSON;
    }
    return this.handleBroadcastValue(value, opts);
  }

  /**
   * Not async: a single publication, the usual body, resolves with the pub/sub's own promise
   * (one promise and no extra hop per broadcast). Failures are rejections, never throws.
   */
  handleBroadcastValue(value: unknown, opts: { fanout: boolean }): Promise<void> {
    let parsed: StreamMessage[] | RemoteCommand;
    try {
      if (value === NOT_JSON) throw new InvalidBroadcastError("body is not valid JSON");
      parsed = publicationOf(value);
    } catch (err) {
      this.stats.failedBroadcasts++;
      return Promise.reject(err);
    }
    try {
      if (!Array.isArray(parsed)) return this.#command(parsed, opts);
      this.stats.broadcasts += parsed.length;
      if (opts.fanout) {
        for (const msg of parsed) this.#hub.broadcast(msg);
        return DONE;
      }
      if (parsed.length === 1) return this.publish(parsed[0]);
      return Promise.all(parsed.map((msg) => this.publish(msg))).then(() => {});
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #command(cmd: RemoteCommand, opts: { fanout: boolean }): Promise<void> {
    this.#logger.debug("remote command", { command: cmd.command });
    if (opts.fanout) this.#local.execute(cmd);
    else if (!this.#ready()) throw notReady(); // this node would miss its own command
    else await this.#pubsub.broadcastCommand(cmd);
  }

  /** Registers (unless transient) and distributes one message, in order per stream. */
  publish(msg: StreamMessage): Promise<void> {
    const unregistered = msg.meta?.transient || !this.#broker.persistent;
    if (!this.#ready()) return Promise.reject(notReady());
    const pending = this.#chains.get(msg.stream);
    // Nothing to register and nothing queued for this stream: hand it over directly
    // (the hot path without a broker; pub/subs keep the order of their calls).
    if (unregistered && !pending) return this.#pubsub.broadcast(msg);
    const prev = pending ?? Promise.resolve();
    const next = prev.catch(() => {}).then(async () => {
      // Checked again here: the link may have dropped while this waited in line.
      if (!this.#ready()) throw notReady();
      const registered = unregistered ? msg : await this.#broker.store(msg);
      await this.#pubsub.broadcast(registered);
    });
    this.#chains.set(msg.stream, next);
    next.finally(() => {
      if (this.#chains.get(msg.stream) === next) this.#chains.delete(msg.stream);
    }).catch(() => {});
    return next;
  }
}

const DONE: Promise<void> = Promise.resolve();

function notReady(): PubSubUnavailableError {
  return new PubSubUnavailableError("pub/sub is reconnecting or catching up; retry");
}

/**
 * docs/protocol.md#publication-format parsing order, for a body already parsed as JSON: object
 * with a stream -> array -> object with a command. `data` that is not a string is accepted and
 * JSON-encoded.
 */
export function publicationOf(value: unknown): StreamMessage[] | RemoteCommand {
  if (isRecord(value) && typeof value.stream === "string" && value.stream !== "") {
    return [toMessage(value, 0)];
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw new InvalidBroadcastError("empty batch");
    return value.map((item, i) => {
      if (!isRecord(item) || typeof item.stream !== "string" || item.stream === "") {
        throw new InvalidBroadcastError(`batch item ${i} has no stream`);
      }
      return toMessage(item, i);
    });
  }
  if (isRecord(value) && typeof value.command === "string" && value.command !== "") {
    if (value.command !== "disconnect") {
      throw new InvalidBroadcastError(`unknown command: ${value.command}`);
    }
    const payload = value.payload;
    if (!isRecord(payload) || typeof payload.identifier !== "string") {
      throw new InvalidBroadcastError("disconnect needs payload.identifier");
    }
    return {
      command: "disconnect",
      payload: {
        identifier: payload.identifier,
        reconnect: typeof payload.reconnect === "boolean" ? payload.reconnect : true,
      },
    };
  }
  throw new InvalidBroadcastError("expected a publication, a batch or a command");
}

function toMessage(item: Record<string, unknown>, i: number): StreamMessage {
  const data = item.data;
  if (data === undefined) throw new InvalidBroadcastError(`publication ${i} has no data`);
  const msg: StreamMessage = {
    stream: item.stream as string,
    data: typeof data === "string" ? data : JSON.stringify(data),
  };
  if (isRecord(item.meta)) {
    const meta: StreamMessage["meta"] = {};
    if (typeof item.meta.exclude_socket === "string" && item.meta.exclude_socket) {
      meta.exclude_socket = item.meta.exclude_socket;
    }
    if (item.meta.transient === true) meta.transient = true;
    if (typeof item.meta.broadcast_type === "string" && item.meta.broadcast_type) {
      meta.broadcast_type = item.meta.broadcast_type;
    }
    if (Object.keys(meta).length) msg.meta = meta;
  }
  return msg;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
