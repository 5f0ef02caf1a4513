/**
 * One Redis connection (node-redis, RESP2) with reconnection backoff and the "redis
 * unavailable, retrying" / "redis connection restored" log lines shared by every Redis adapter.
 */
import { createClient, createSentinel, ErrorReply } from "redis";
import type { Logger } from "../logger/logger.ts";
import { parseSentinel, readTlsFiles, type RedisSettings } from "./redis_settings.ts";

export class RedisUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisUnavailableError";
  }
}

/**
 * The liveness check every Cableway Redis connection uses: PING each second, drop the socket
 * after 5 s without any traffic (a connection running a blocking command adds its block time).
 */
export const LIVENESS = { pingIntervalMs: 1000, idleTimeoutMs: 5000 } as const;

/** A raw RESP2 reply as node-redis returns it for `sendCommand`. */
export type RedisReply = string | number | null | RedisReply[];

export type RedisMessageListener = (message: string, channel: string) => void;

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
  /**
   * true: commands issued while disconnected are refused at once (ClientOfflineError);
   * false (default): they wait and run after the reconnect.
   */
  failWhileDown?: boolean;
  /** Bound on the first connection in `open()`. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect backoff. Default 2000 ms. */
  maxBackoffMs?: number;
  /** Sentinel, TLS, keepalive. */
  settings?: RedisSettings;
  /**
   * Liveness check for a connection that may sit idle (SUBSCRIBE): a PING every
   * `pingIntervalMs`, and the socket is dropped (then reconnected) when nothing moved on it
   * for `idleTimeoutMs`, so a link that died silently is noticed in seconds, not when TCP
   * gives up. Both off by default.
   */
  pingIntervalMs?: number;
  idleTimeoutMs?: number;
}

/** The subset of node-redis' client this module uses (its generic types are unwieldy). */
interface NodeRedisClient {
  connect(): Promise<unknown>;
  sendCommand(args: readonly string[]): Promise<unknown>;
  subscribe(channels: string[], listener: RedisMessageListener): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  destroy(): void;
  on(event: "error", cb: (err: Error) => void): unknown;
  on(event: "ready" | "end", cb: () => void): unknown;
}

export class RedisConnection {
  readonly #client: NodeRedisClient;
  readonly #logger: Logger;
  readonly #target: string;
  #ready = false;
  #down = false;
  #closed = false;
  #lastError?: Error;
  #everReady = false;
  #reconnectHooks: (() => void)[] = [];
  #downHooks: (() => void)[] = [];
  #waiters: { resolve(): void; reject(err: Error): void }[] = [];

  private constructor(opts: RedisConnectionOptions) {
    this.#target = describeUrl(opts.url, Boolean(opts.settings?.sentinels?.length));
    this.#logger = opts.logger.child({ redis: this.#target });
    this.#client = createNodeClient(opts);
    this.#client.on("error", (err) => this.#onError(err));
    this.#client.on("ready", () => this.#onReady());
  }

  /** Connects; rejects with RedisUnavailableError when Redis cannot be reached in time. */
  static async open(opts: RedisConnectionOptions): Promise<RedisConnection> {
    const conn = new RedisConnection(opts);
    const timeoutMs = opts.connectTimeoutMs ?? 5000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RedisUnavailableError(
              `could not connect to redis at ${conn.#target} within ${timeoutMs} ms`,
              { cause: conn.#lastError },
            ),
          ),
        timeoutMs,
      );
    });
    const connecting = conn.#client.connect();
    connecting.catch(() => {}); // settled by destroy() on failure; the race reports it
    try {
      await Promise.race([connecting, timeout]);
    } catch (err) {
      await conn.close();
      if (err instanceof RedisUnavailableError) throw err;
      throw new RedisUnavailableError(`could not connect to redis at ${conn.#target}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    return conn;
  }

  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /** host:port (never the password), for logs and errors. */
  get target(): string {
    return this.#target;
  }

  /** Sends one raw command; arguments are stringified. */
  async command(args: readonly (string | number)[]): Promise<RedisReply> {
    return await this.#client.sendCommand(args.map(String)) as RedisReply;
  }

  /** SUBSCRIBE; node-redis re-subscribes every channel by itself after a reconnect. */
  subscribe(channels: string[], listener: RedisMessageListener): Promise<void> {
    return this.#client.subscribe(channels, listener);
  }

  unsubscribe(channels: string[]): Promise<void> {
    return this.#client.unsubscribe(channels);
  }

  /** Runs `hook` every time the connection is ready again after a drop (not the first time). */
  onReconnect(hook: () => void): void {
    this.#reconnectHooks.push(hook);
  }

  /** Runs `hook` every time a ready connection drops (once per outage). */
  onDown(hook: () => void): void {
    this.#downHooks.push(hook);
  }

  /** Resolves when the connection is (again) ready; rejects once it is closed. */
  whenReady(): Promise<void> {
    if (this.#closed) return Promise.reject(new RedisUnavailableError("connection closed"));
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Idempotent; pending commands are rejected. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#ready = false;
    try {
      this.#client.destroy();
    } catch {
      // already torn down
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new RedisUnavailableError("connection closed"));
    return Promise.resolve();
  }

  #onError(err: Error): void {
    this.#lastError = err;
    if (this.#closed) return;
    const wasReady = this.#ready;
    this.#ready = false;
    if (wasReady) this.#runHooks(this.#downHooks, "down");
    if (this.#down) {
      this.#logger.debug("redis still unavailable", { error: err });
      return;
    }
    this.#down = true;
    this.#logger.warn("redis unavailable, retrying", { error: err });
  }

  #onReady(): void {
    if (this.#closed) return;
    this.#ready = true;
    const reconnected = this.#everReady;
    this.#everReady = true;
    if (this.#down) {
      this.#down = false;
      this.#logger.info("redis connection restored");
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
    if (reconnected) this.#runHooks(this.#reconnectHooks, "reconnect");
  }

  #runHooks(hooks: (() => void)[], what: string): void {
    for (const hook of hooks) {
      try {
        hook();
      } catch (err) {
        this.#logger.error(`redis ${what} hook failed`, { error: err });
      }
    }
  }
}

/**
 * A node-redis client for the options: a plain client, TLS for `rediss://`, or a Sentinel
 * client whose master is the URL's host name (its database and password kept).
 */
function createNodeClient(opts: RedisConnectionOptions): NodeRedisClient {
  const settings = opts.settings ?? {};
  const maxBackoff = opts.maxBackoffMs ?? 2000;
  const url = new URL(opts.url);
  const secure = url.protocol === "rediss:";
  const tlsFiles = secure && settings.tls ? readTlsFiles(settings.tls) : {};
  if (secure) guardRepeatedTlsAlerts();
  const socket = {
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    ...(opts.idleTimeoutMs ? { socketTimeout: opts.idleTimeoutMs } : {}),
    reconnectStrategy: (retries: number) =>
      Math.min(50 * 2 ** retries, maxBackoff) + Math.floor(Math.random() * 50),
    ...(secure
      ? {
        tls: true as const,
        rejectUnauthorized: settings.tls?.verify ?? false,
        ...tlsFiles,
      }
      : {}),
  };
  // The liveness check's PING (pub/sub links) and --redis_keepalive_interval: the shorter wins.
  const intervals = [
    opts.pingIntervalMs,
    settings.keepaliveInterval ? settings.keepaliveInterval * 1000 : undefined,
  ].filter((v): v is number => v !== undefined && v > 0);
  const pingInterval = intervals.length ? Math.min(...intervals) : undefined;
  if (!settings.sentinels?.length) {
    return createClient({
      url: opts.url,
      RESP: 2,
      disableOfflineQueue: opts.failWhileDown ?? false,
      pingInterval,
      socket,
    }) as unknown as NodeRedisClient;
  }
  const db = Number(url.pathname.slice(1) || "0");
  const nodes = settings.sentinels.map(parseSentinel);
  const sentinel = createSentinel({
    name: decodeURIComponent(url.hostname),
    sentinelRootNodes: nodes.map(({ host, port }) => ({ host, port })),
    scanInterval: (settings.sentinelDiscoveryInterval ?? 30) * 1000,
    RESP: 2,
    nodeClientOptions: {
      username: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
      database: Number.isInteger(db) ? db : 0,
      disableOfflineQueue: opts.failWhileDown ?? false,
      pingInterval,
      socket,
    },
    sentinelClientOptions: {
      password: nodes.find((n) => n.password)?.password,
      socket: { connectTimeout: opts.connectTimeoutMs ?? 5000 },
    },
  });
  return {
    connect: () => sentinel.connect(),
    sendCommand: (args) => sentinel.sendCommand(false, args as string[]),
    subscribe: (channels, listener) => sentinel.subscribe(channels, listener).then(() => {}),
    unsubscribe: (channels) => sentinel.unsubscribe(channels).then(() => {}),
    destroy: () => {
      sentinel.destroy().catch(() => {});
    },
    on: ((event: string, cb: (arg?: unknown) => void) => sentinel.on(event, cb)) as NodeRedisClient[
      "on"
    ],
  };
}

let tlsGuarded = false;

/**
 * Deno's node:tls reports a fatal alert from the server (e.g. "CertificateRequired" when Redis
 * wants a client certificate) twice; node-redis handles the first (the connection is retried
 * and logged as unavailable) and has stopped listening for the second, which would end the
 * process as an uncaught error. Only that repeated report is swallowed.
 */
function guardRepeatedTlsAlerts(): void {
  if (tlsGuarded) return;
  tlsGuarded = true;
  globalThis.addEventListener("error", (event) => {
    const err = (event as ErrorEvent).error;
    if (
      err instanceof Error && err.message.startsWith("received fatal alert") &&
      String(err.stack).includes("tls_wrap")
    ) {
      event.preventDefault();
    }
  });
}

/** True for an error reply sent by Redis (as opposed to a connection failure). */
export function isServerError(err: unknown): boolean {
  return err instanceof ErrorReply;
}

/** True for a Redis error reply whose code is `code` (e.g. "NOGROUP", "BUSYGROUP"). */
export function isReplyError(err: unknown, code: string): boolean {
  return err instanceof ErrorReply && err.message.startsWith(`${code} `);
}

function describeUrl(url: string, sentinels = false): string {
  try {
    const u = new URL(url);
    if (sentinels) return `sentinel master ${u.hostname}${u.pathname.length > 1 ? u.pathname : ""}`;
    return `${u.hostname}:${u.port || "6379"}${u.pathname.length > 1 ? u.pathname : ""}`;
  } catch {
    return "redis";
  }
}
