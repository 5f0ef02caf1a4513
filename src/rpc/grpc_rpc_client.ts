/**
 * AnyCable RPC over native gRPC: unary calls to `/anycable.RPC/{Connect,Command,Disconnect}`
 * as HTTP/2 streams on Cableway's own HTTP/2 client (h2_connection.ts; h2c with prior
 * knowledge, or TLS with ALPN h2), with gRPC framing, `sid`/`protov` metadata, `grpc-timeout`
 * + CallSignal deadlines and the status taken from the trailers. Endpoints from
 * `grpc-list://` are used round-robin.
 *
 * Failures map onto the RPC errors the caller retries or not: a connection that cannot be
 * made or breaks, a stream the backend refuses or resets, and a GOAWAY before the stream was
 * processed are `RpcUnavailableError` (retried with backoff within the call budget); the
 * deadline is `RpcTimeoutError`; a malformed answer is `RpcResponseError`.
 *
 * Why not `fetch` with an HTTP/2-only `Deno.createHttpClient`: it reaches the backend, but a
 * `Response` exposes no trailers, so the `grpc-status` of every successful call (and of any
 * error sent after a message) cannot be read; only trailers-only errors show in the headers.
 */
import type { Logger } from "../logger/logger.ts";
import { causeText } from "../util/cause_text.ts";
import { VERSION } from "../version.ts";
import { type CallSignal, withRequestDeadline } from "./call_signal.ts";
import { GrpcChannel, GrpcChannelClosedError } from "./grpc_channel.ts";
import {
  decodeCommandResponse,
  decodeConnectResponse,
  decodeDisconnectResponse,
  encodeCommandRequest,
  encodeConnectRequest,
  encodeDisconnectRequest,
} from "./grpc_convert.ts";
import {
  decodeGrpcMessage,
  encodeGrpcFrame,
  formatGrpcTimeout,
  GrpcFrameReader,
} from "./grpc_framing.ts";
import { GrpcCode, grpcCodeFromHttp, grpcStatusError } from "./grpc_status.ts";
import { parseGrpcTarget } from "./grpc_target.ts";
import { ErrorCode } from "./h2_frames.ts";
import { H2ConnectionError, H2StreamError, type H2TlsOptions } from "./h2_connection.ts";
import { encodeHeaders, type HeaderField } from "./hpack.ts";
import {
  type CallMeta,
  type CommandRequest,
  type CommandResponse,
  type ConnectRequest,
  type ConnectResponse,
  type DisconnectRequest,
  type DisconnectResponse,
  type RpcClient,
  RpcResponseError,
  RpcTimeoutError,
  RpcUnavailableError,
} from "./rpc_client.ts";

export interface GrpcRpcClientOptions {
  /** `host:port`, `dns:///host:port` or `grpc-list://h1:p1,h2:p2`. */
  host: string;
  /** Per-request timeout, ms (sent as `grpc-timeout` and enforced locally). */
  requestTimeout: number;
  /** TLS (ALPN h2) instead of h2c; `caCerts` replace the system roots. */
  tls?: H2TlsOptions;
  /** Budget for connecting and the backend's HTTP/2 SETTINGS, ms (default: half the request timeout, 1-5 s). */
  connectTimeout?: number;
  logger?: Logger;
  /** `--rpc_max_call_recv_size`: largest response message (bytes). */
  maxRecvSize?: number;
  /** `--rpc_max_call_send_size`: largest request message (bytes). */
  maxSendSize?: number;
}

type Method = "Connect" | "Command" | "Disconnect";

export class GrpcRpcClient implements RpcClient {
  readonly name = "grpc";
  readonly #channels: GrpcChannel[];
  readonly #timeout: number;
  readonly #scheme: string;
  readonly #maxRecv?: number;
  readonly #maxSend: number;
  /** HPACK blocks of the fields every call of a method repeats, by endpoint and method. */
  readonly #fixedHeaders = new Map<string, Uint8Array>();
  #next = 0;

  constructor(opts: GrpcRpcClientOptions) {
    // Shorter than a call, so a backend that accepts TCP but never speaks HTTP/2 fails the
    // connection (retried) before the call's own deadline (not retried).
    const connectTimeout = opts.connectTimeout ??
      Math.min(5000, Math.max(1000, opts.requestTimeout / 2));
    this.#channels = parseGrpcTarget(opts.host).map((e) =>
      new GrpcChannel(e, { tls: opts.tls, connectTimeout, logger: opts.logger })
    );
    this.#timeout = opts.requestTimeout;
    this.#scheme = opts.tls ? "https" : "http";
    this.#maxRecv = opts.maxRecvSize;
    this.#maxSend = opts.maxSendSize ?? Infinity;
  }

  /** The channels, in round-robin order (for diagnostics and tests). */
  get channels(): readonly GrpcChannel[] {
    return this.#channels;
  }

  connect(req: ConnectRequest, meta: CallMeta): Promise<ConnectResponse> {
    return this.#unary("Connect", encodeConnectRequest(req), decodeConnectResponse, meta);
  }

  command(req: CommandRequest, meta: CallMeta): Promise<CommandResponse> {
    return this.#unary("Command", encodeCommandRequest(req), decodeCommandResponse, meta);
  }

  disconnect(req: DisconnectRequest, meta: CallMeta): Promise<DisconnectResponse> {
    return this.#unary("Disconnect", encodeDisconnectRequest(req), decodeDisconnectResponse, meta);
  }

  async close(): Promise<void> {
    await Promise.all(this.#channels.map((c) => c.close()));
  }

  #unary<T>(
    method: Method,
    body: Uint8Array,
    decode: (bytes: Uint8Array) => T,
    meta: CallMeta,
  ): Promise<T> {
    const name = method.toLowerCase();
    return withRequestDeadline(
      meta,
      this.#timeout,
      (own, signal) => this.#call(method, name, body, decode, meta.sid, own, signal),
    );
  }

  async #call<T>(
    method: Method,
    name: string,
    body: Uint8Array,
    decode: (bytes: Uint8Array) => T,
    sid: string,
    own: CallSignal | undefined,
    signal: AbortSignal,
  ): Promise<T> {
    const timedOut = () =>
      new RpcTimeoutError(
        own?.timedOut
          ? `${name}: no answer within ${this.#timeout} ms`
          : `${name}: call aborted (deadline)`,
        { cause: signal.reason },
      );
    if (signal.aborted) throw timedOut();
    if (body.length > this.#maxSend) {
      throw new RpcResponseError(
        `${name}: request of ${body.length} bytes exceeds --rpc_max_call_send_size (${this.#maxSend})`,
      );
    }

    const channel = this.#channels[this.#next++ % this.#channels.length];
    let conn;
    try {
      conn = channel.connection();
    } catch (err) {
      throw err instanceof GrpcChannelClosedError
        ? new RpcResponseError(`${name}: ${err.message}`, { cause: err })
        : new RpcUnavailableError(`${name}: ${errorText(err)}`, { cause: err });
    }
    let res;
    try {
      res = await conn.request(
        this.#headerBlock(channel, method, sid),
        encodeGrpcFrame(body),
        signal,
      );
    } catch (err) {
      if (signal.aborted) {
        // Only our own deadline says something about the backend (not a caller's cancel).
        if (!own?.timedOut) throw timedOut();
        if (!conn.ready) {
          // Not even HTTP/2 SETTINGS within a call's deadline: the next call dials afresh.
          conn.abandon(`no HTTP/2 SETTINGS within a call's deadline (${this.#timeout} ms)`);
        } else {
          // The backend may be wedged rather than slow: a PING tells which, and a connection
          // that does not answer it is dropped so the next call dials afresh.
          conn.ping(Math.min(5000, Math.max(1000, this.#timeout)));
        }
        throw timedOut();
      }
      throw this.#transportError(name, target(channel.endpoint), err);
    }

    const head = lastValues(res.headers);
    const tail = res.trailers ? lastValues(res.trailers) : undefined;
    const status = tail?.get("grpc-status") ?? head.get("grpc-status");
    if (status === undefined) {
      const httpStatus = Number(head.get(":status") ?? 0);
      if (httpStatus !== 200) {
        throw grpcStatusError(
          name,
          grpcCodeFromHttp(httpStatus),
          `HTTP ${httpStatus} from gRPC backend ${target(channel.endpoint)}`,
        );
      }
      throw new RpcResponseError(`${name}: stream ended without grpc-status`);
    }
    const code = Number(status);
    if (code !== GrpcCode.OK) {
      const message = tail?.get("grpc-message") ?? head.get("grpc-message");
      throw grpcStatusError(name, code, decodeGrpcMessage(message));
    }
    const reader = new GrpcFrameReader(this.#maxRecv);
    try {
      reader.push(res.body);
    } catch (err) {
      throw new RpcResponseError(`${name}: ${errorText(err)}`, { cause: err });
    }
    if (reader.messages.length !== 1 || reader.leftover !== 0) {
      throw new RpcResponseError(
        `${name}: expected one response message, got ${reader.messages.length}` +
          (reader.leftover ? ` and ${reader.leftover} stray bytes` : ""),
      );
    }
    try {
      return decode(reader.messages[0]);
    } catch (err) {
      throw new RpcResponseError(`${name}: undecodable response: ${errorText(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * The request's header block: the fields every call to this endpoint and method repeats,
   * encoded once (literals without indexing do not depend on the connection), then `sid`.
   */
  #headerBlock(channel: GrpcChannel, method: string, sid: string): Uint8Array {
    const { host, port } = channel.endpoint;
    const key = `${host}:${port}/${method}`;
    let fixed = this.#fixedHeaders.get(key);
    if (fixed === undefined) {
      fixed = encodeHeaders([
        [":method", "POST"],
        [":scheme", this.#scheme],
        [":path", `/anycable.RPC/${method}`],
        [":authority", `${host.includes(":") ? `[${host}]` : host}:${port}`],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["user-agent", `cableway/${VERSION}`],
        ["grpc-timeout", formatGrpcTimeout(this.#timeout)],
        ["grpc-accept-encoding", "identity"],
        ["protov", "v1"],
      ]).slice();
      this.#fixedHeaders.set(key, fixed);
    }
    return encodeHeaders([["sid", sid]], fixed);
  }

  /** The error for a call whose stream or connection failed before a complete answer. */
  #transportError(name: string, backend: string, err: unknown): Error {
    if (err instanceof H2StreamError) {
      if (err.local) {
        return new RpcResponseError(`${name}: ${err.message}`, { cause: err });
      }
      // The backend refused or reset the stream (REFUSED_STREAM, ENHANCE_YOUR_CALM, a GOAWAY
      // before it was processed, or a reset while busy): worth another try.
      const calm = err.code === ErrorCode.ENHANCE_YOUR_CALM;
      return new RpcUnavailableError(
        `${name}: ${err.message}`,
        calm ? { cause: err, retryBase: 200 } : { cause: err },
      );
    }
    if (err instanceof H2ConnectionError) {
      return new RpcUnavailableError(
        `${name}: gRPC backend ${backend} unreachable: ${causeText(err)}`,
        { cause: err },
      );
    }
    return new RpcUnavailableError(`${name}: gRPC backend ${backend}: ${causeText(err)}`, {
      cause: err,
    });
  }
}

/** Header name → value (the last one when repeated). */
function lastValues(fields: HeaderField[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const [n, v] of fields) map.set(n, v);
  return map;
}

/** `host:port` as an operator writes it (the error names the backend by it). */
function target(endpoint: { host: string; port: number }): string {
  const { host, port } = endpoint;
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
