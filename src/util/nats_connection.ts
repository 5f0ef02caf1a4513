/**
 * One NATS connection (nats.js) with endless reconnection and the "nats unavailable, retrying"
 * / "nats connection restored" log lines shared by every NATS adapter. nats.js re-subscribes
 * by itself after a reconnect; publishes made while disconnected are dropped by nats.js (it
 * resets its outbound buffer on every dial), so callers check `connected` and refuse instead.
 */
import type { NatsConnection, Status } from "nats";
import { connectGuarded } from "./nats_transport.ts";
import type { Logger } from "../logger/logger.ts";

const PING_INTERVAL_MS = 2000;
const MAX_PINGS_OUT = 3;

export class NatsUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NatsUnavailableError";
  }
}

export interface NatsLinkOptions {
  /** `nats://host:port`, a comma-separated list, or an array of them. */
  servers: string | string[];
  logger: Logger;
  /** Client name shown by the server. */
  name?: string;
  /** Bound on the first connection. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Wait between reconnect attempts. Default 500 ms. */
  reconnectWaitMs?: number;
  /** `--nats_dont_randomize_servers`: try the servers in the given order. */
  noRandomize?: boolean;
}

export class NatsLink {
  readonly nc: NatsConnection;
  readonly #logger: Logger;
  readonly #status: AsyncIterable<Status> & { stop?: () => void };
  readonly #monitor: Promise<void>;
  #closed = false;
  #connected = true;
  readonly #disconnectHooks: (() => void)[] = [];
  readonly #reconnectHooks: (() => void)[] = [];

  private constructor(nc: NatsConnection, logger: Logger) {
    this.nc = nc;
    this.#logger = logger;
    this.#status = nc.status();
    this.#monitor = this.#watch();
    // nats.js does not end status iterators when the connection closes.
    nc.closed().then(() => this.#status.stop?.(), () => this.#status.stop?.());
  }

  /** Connects; rejects with NatsUnavailableError when NATS cannot be reached. */
  static async open(opts: NatsLinkOptions): Promise<NatsLink> {
    const servers = serverList(opts.servers);
    const logger = opts.logger.child({ nats: servers.map(describeServer).join(",") });
    try {
      const nc = await connectGuarded({
        servers,
        name: opts.name ?? "cableway",
        timeout: opts.connectTimeoutMs ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: opts.reconnectWaitMs ?? 500,
        reconnectJitter: 100,
        // Liveness: a link that died without a reset is dropped (then redialed) after
        // MAX_PINGS_OUT unanswered PINGs, i.e. within ~8 s rather than nats.js's 4 minutes.
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: MAX_PINGS_OUT,
        ignoreClusterUpdates: false,
        noRandomize: opts.noRandomize ?? false,
      });
      return new NatsLink(nc, logger);
    } catch (err) {
      throw new NatsUnavailableError(
        `could not connect to nats at ${servers.map(describeServer).join(",")}`,
        { cause: err },
      );
    }
  }

  /** False between a disconnect and the following reconnect. */
  get connected(): boolean {
    return this.#connected && !this.closed;
  }

  /** Runs `hook` when the connection drops (once per outage). */
  onDisconnect(hook: () => void): void {
    this.#disconnectHooks.push(hook);
  }

  /** Runs `hook` when the connection is back (nats.js has re-sent its subscriptions). */
  onReconnect(hook: () => void): void {
    this.#reconnectHooks.push(hook);
  }

  get closed(): boolean {
    return this.#closed || this.nc.isClosed();
  }

  /** Idempotent. Flushes what can be flushed, then closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.nc.isClosed()) {
      await this.nc.close().catch(() => {});
    }
    this.#status.stop?.();
    await this.#monitor;
  }

  async #watch(): Promise<void> {
    let down = false;
    try {
      for await (const status of this.#status) {
        switch (status.type) {
          case "disconnect":
            this.#connected = false;
            if (!down && !this.#closed) {
              down = true;
              this.#logger.warn("nats unavailable, retrying", { server: String(status.data) });
              this.#runHooks(this.#disconnectHooks, "disconnect");
            }
            break;
          case "reconnect":
            this.#connected = true;
            if (down) {
              down = false;
              this.#logger.info("nats connection restored", { server: String(status.data) });
            }
            this.#runHooks(this.#reconnectHooks, "reconnect");
            break;
          case "error":
            this.#logger.warn("nats error", { error: String(status.data) });
            break;
          default:
            this.#logger.debug("nats status", { type: status.type, data: String(status.data) });
        }
      }
    } catch (err) {
      this.#logger.debug("nats status stream ended", { error: err });
    }
  }

  #runHooks(hooks: (() => void)[], what: string): void {
    if (this.#closed) return;
    for (const hook of hooks) {
      try {
        hook();
      } catch (err) {
        this.#logger.error(`nats ${what} hook failed`, { error: err });
      }
    }
  }
}

function serverList(servers: string | string[]): string[] {
  const list = Array.isArray(servers) ? servers : servers.split(",");
  return list.map((s) => s.trim()).filter((s) => s !== "");
}

function describeServer(server: string): string {
  try {
    const u = new URL(server.includes("://") ? server : `nats://${server}`);
    return `${u.hostname}:${u.port || "4222"}`;
  } catch {
    return "nats";
  }
}
