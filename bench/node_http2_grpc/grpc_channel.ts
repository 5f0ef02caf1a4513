/**
 * One backend endpoint: a lazily dialed, shared HTTP/2 (h2c) session that is replaced once it
 * dies (connection error, GOAWAY, close). Calls multiplex as streams on it.
 */
import * as http2 from "node:http2";
import type { GrpcEndpoint } from "../../src/rpc/grpc_target.ts";

/** The channel was closed by `close()`; no more sessions are dialed. */
export class GrpcChannelClosedError extends Error {
  constructor(origin: string) {
    super(`gRPC channel to ${origin} is closed`);
    this.name = "GrpcChannelClosedError";
  }
}

export class GrpcChannel {
  readonly endpoint: GrpcEndpoint;
  #session: http2.ClientHttp2Session | undefined;
  #closed = false;
  readonly #failed = new WeakSet<http2.ClientHttp2Session>();
  /** Sessions dialed so far (for tests and logs). */
  dials = 0;

  constructor(endpoint: GrpcEndpoint) {
    this.endpoint = endpoint;
  }

  /** The live session, dialing a new one when there is none. */
  session(): http2.ClientHttp2Session {
    if (this.#closed) throw new GrpcChannelClosedError(this.endpoint.origin);
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.endpoint.origin);
    this.dials++;
    const forget = () => {
      this.#failed.add(session);
      if (this.#session === session) this.#session = undefined;
    };
    // Without an error listener a refused connection would be an uncaught exception; the
    // streams on the session see the failure themselves.
    session.on("error", forget);
    session.on("goaway", forget);
    session.on("close", forget);
    this.#session = session;
    return session;
  }

  /** Whether `session` errored, got a GOAWAY or closed (its streams failed for transport reasons). */
  isDead(session: http2.ClientHttp2Session): boolean {
    return this.#failed.has(session) || session.destroyed || session.closed;
  }

  /** Drops the session after a transport failure so the next call dials afresh. */
  reset(session: http2.ClientHttp2Session): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    if (!session.destroyed) session.destroy();
  }

  /** Closes the session (in-flight streams are cancelled) and refuses new calls. */
  close(): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    if (!session || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      session.once("close", () => resolve());
      session.destroy();
    });
  }
}
