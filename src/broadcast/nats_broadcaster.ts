/**
 * NATS broadcaster (docs/protocol.md#nats-broadcast): subscribes to subject `__anycable__`; every node
 * receives every publication and delivers it locally (fan-out, no broker).
 */
import type { Subscription } from "nats";
import { type Logger, silentLogger } from "../logger/logger.ts";
import { NatsLink } from "../util/nats_connection.ts";
import { type Broadcaster, type BroadcastHandler, InvalidBroadcastError } from "./broadcaster.ts";

export interface NatsBroadcasterOptions {
  /** `nats://host:port`, a comma-separated list, or an array of them. */
  servers: string | string[];
  /** Subject; default `__anycable__`. */
  channel?: string;
  logger?: Logger;
  /** `--nats_dont_randomize_servers`: try the servers in the given order. */
  noRandomize?: boolean;
}

export class NatsBroadcaster implements Broadcaster {
  readonly name = "nats";
  readonly fanout = true;
  readonly #servers: string | string[];
  readonly #noRandomize: boolean;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #decoder = new TextDecoder();
  #link?: NatsLink;
  #sub?: Subscription;
  #closed = false;
  /** Publications are handed over one at a time, in arrival order. */
  #chain: Promise<void> = Promise.resolve();

  constructor(opts: NatsBroadcasterOptions) {
    this.#servers = opts.servers;
    this.#noRandomize = opts.noRandomize ?? false;
    this.#channel = opts.channel ?? "__anycable__";
    this.#logger = (opts.logger ?? silentLogger).child({ broadcaster: "nats" });
  }

  async start(handler: BroadcastHandler): Promise<void> {
    const link = await NatsLink.open({
      servers: this.#servers,
      logger: this.#logger,
      name: "cableway-broadcaster",
      noRandomize: this.#noRandomize,
    });
    if (this.#closed) {
      await link.close();
      return;
    }
    this.#link = link;
    this.#sub = link.nc.subscribe(this.#channel, {
      callback: (err, msg) => {
        if (err) {
          this.#logger.warn("nats subscription error", { error: err });
          return;
        }
        const body = this.#decoder.decode(msg.data);
        this.#chain = this.#chain.then(() => this.#handle(handler, body));
      },
    });
    await link.nc.flush();
    this.#logger.info("subscribed to broadcasts", { subject: this.#channel });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#sub?.unsubscribe();
    } catch {
      // the connection is already gone
    }
    await this.#link?.close();
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
