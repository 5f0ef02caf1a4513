/**
 * One backend endpoint: a lazily dialed, shared HTTP/2 connection (h2c, or TLS with ALPN h2)
 * that is replaced once it fails, is closed or receives a GOAWAY. Calls multiplex as streams
 * on it. GOAWAYs are logged here; a failed connection is a warning the first time, and while
 * the backend stays unreachable each further failed dial is a debug line (retries dial again),
 * until a connection works again ("gRPC connection restored").
 */
import type { Logger } from "../logger/logger.ts";
import { errorCodeName } from "./h2_frames.ts";
import { H2Connection, type H2TlsOptions } from "./h2_connection.ts";
import type { GrpcEndpoint } from "./grpc_target.ts";

/** The channel was closed by `close()`; no more connections are dialed. */
export class GrpcChannelClosedError extends Error {
  constructor(origin: string) {
    super(`gRPC channel to ${origin} is closed`);
    this.name = "GrpcChannelClosedError";
  }
}

export interface GrpcChannelOptions {
  /** TLS settings; plain h2c when absent. */
  tls?: H2TlsOptions;
  /** Budget for connecting and the backend's HTTP/2 SETTINGS, ms. */
  connectTimeout: number;
  logger?: Logger;
}

export class GrpcChannel {
  readonly endpoint: GrpcEndpoint;
  /** `http://host:port` or `https://host:port`, for logs and errors. */
  readonly origin: string;
  readonly #opts: GrpcChannelOptions;
  #conn: H2Connection | undefined;
  readonly #all = new Set<H2Connection>();
  #closed = false;
  /** The last connection failed and none has worked since. */
  #failing = false;
  /** Connections dialed so far (for tests and logs). */
  dials = 0;

  constructor(endpoint: GrpcEndpoint, opts: GrpcChannelOptions) {
    this.endpoint = endpoint;
    this.#opts = opts;
    this.origin = opts.tls ? endpoint.origin.replace(/^http:/, "https:") : endpoint.origin;
  }

  /** The live connection, dialing a new one when there is none that takes new streams. */
  connection(): H2Connection {
    if (this.#closed) throw new GrpcChannelClosedError(this.origin);
    const current = this.#conn;
    if (current?.usable) return current;
    this.dials++;
    const logger = this.#opts.logger;
    const conn: H2Connection = new H2Connection({
      host: this.endpoint.host,
      port: this.endpoint.port,
      tls: this.#opts.tls,
      connectTimeout: this.#opts.connectTimeout,
      onReady: () => {
        if (!this.#failing) return;
        this.#failing = false;
        logger?.info("gRPC connection restored", { backend: this.origin });
      },
      onGoaway: ({ lastStreamId, code, debug }) => {
        if (this.#conn === conn) this.#conn = undefined;
        logger?.info("gRPC backend sent GOAWAY", {
          backend: this.origin,
          code: errorCodeName(code),
          last_stream_id: lastStreamId,
          ...(debug ? { debug } : {}),
        });
      },
      onClose: (reason, graceful) => {
        this.#all.delete(conn);
        if (this.#conn === conn) this.#conn = undefined;
        if (this.#closed || graceful) return;
        const fields = { backend: this.origin, error: reason.message };
        if (this.#failing) logger?.debug("gRPC connection failed", fields);
        else logger?.warn("gRPC connection failed", fields);
        this.#failing = true;
      },
    });
    this.#all.add(conn);
    this.#conn = conn;
    return conn;
  }

  /** Closes every connection (in-flight streams are cancelled) and refuses new calls. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#conn = undefined;
    await Promise.all([...this.#all].map((c) => c.close(`gRPC channel to ${this.origin} closed`)));
  }
}
