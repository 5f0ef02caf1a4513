/**
 * The previous gRPC client on `node:http2`, kept only so the bench can compare the HTTP/2
 * client in src/rpc against it. Not used by the server: Deno's node:http2 can abort the
 * process when a backend sends GOAWAY.
 *
 * AnyCable RPC over native gRPC: unary calls to
 * `/anycable.RPC/{Connect,Command,Disconnect}` as HTTP/2 (h2c) streams via `node:http2`,
 * with gRPC framing, `sid`/`protov` metadata, `grpc-timeout` + AbortSignal deadlines and the
 * status taken from the trailers. Endpoints from `grpc-list://` are used round-robin.
 */
import * as http2 from "node:http2";
import { VERSION } from "../../src/version.ts";
import { GrpcChannel, GrpcChannelClosedError } from "./grpc_channel.ts";
import {
  decodeCommandResponse,
  decodeConnectResponse,
  decodeDisconnectResponse,
  encodeCommandRequest,
  encodeConnectRequest,
  encodeDisconnectRequest,
} from "../../src/rpc/grpc_convert.ts";
import {
  decodeGrpcMessage,
  encodeGrpcFrame,
  formatGrpcTimeout,
  GrpcFrameReader,
} from "../../src/rpc/grpc_framing.ts";
import { GrpcCode, grpcCodeFromHttp, grpcStatusError } from "../../src/rpc/grpc_status.ts";
import { parseGrpcTarget } from "../../src/rpc/grpc_target.ts";
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
} from "../../src/rpc/rpc_client.ts";

export interface GrpcRpcClientOptions {
  /** `host:port`, `dns:///host:port` or `grpc-list://h1:p1,h2:p2`. */
  host: string;
  /** Per-request timeout, ms (sent as `grpc-timeout` and enforced locally). */
  requestTimeout: number;
}

type Method = "Connect" | "Command" | "Disconnect";

const {
  HTTP2_HEADER_METHOD,
  HTTP2_HEADER_PATH,
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  HTTP2_HEADER_TE,
  HTTP2_HEADER_USER_AGENT,
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
} = http2.constants;

export class NodeHttp2GrpcRpcClient implements RpcClient {
  readonly name = "grpc";
  readonly #channels: GrpcChannel[];
  readonly #timeout: number;
  #next = 0;

  constructor(opts: GrpcRpcClientOptions) {
    this.#channels = parseGrpcTarget(opts.host).map((e) => new GrpcChannel(e));
    this.#timeout = opts.requestTimeout;
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
    const timeout = AbortSignal.timeout(this.#timeout);
    const signal = meta.signal ? AbortSignal.any([meta.signal, timeout]) : timeout;
    const timedOut = () =>
      new RpcTimeoutError(
        timeout.aborted
          ? `${name}: no answer within ${this.#timeout} ms`
          : `${name}: call aborted (deadline)`,
        { cause: signal.reason },
      );
    if (signal.aborted) return Promise.reject(timedOut());

    const channel = this.#channels[this.#next++ % this.#channels.length];
    let session: http2.ClientHttp2Session;
    try {
      session = channel.session();
    } catch (err) {
      const text = `${name}: ${errorText(err)}`;
      return Promise.reject(
        err instanceof GrpcChannelClosedError
          ? new RpcResponseError(text, { cause: err })
          : new RpcUnavailableError(text, { cause: err }),
      );
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        [HTTP2_HEADER_METHOD]: "POST",
        [HTTP2_HEADER_PATH]: `/anycable.RPC/${method}`,
        [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        [HTTP2_HEADER_TE]: "trailers",
        [HTTP2_HEADER_USER_AGENT]: `cableway/${VERSION}`,
        "grpc-timeout": formatGrpcTimeout(this.#timeout),
        "grpc-accept-encoding": "identity",
        sid: meta.sid,
        protov: "v1",
      });
    } catch (err) {
      // E.g. the session is going away or ran out of stream ids: dial afresh next time.
      channel.reset(session);
      return Promise.reject(
        new RpcUnavailableError(
          `${name}: cannot open a stream to ${channel.endpoint.origin}: ${errorText(err)}`,
          { cause: err },
        ),
      );
    }

    return new Promise<T>((resolve, reject) => {
      const reader = new GrpcFrameReader();
      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      let streamError: unknown;
      let settled = false;

      const onAbort = () => fail(timedOut());
      const cleanup = () => {
        signal.removeEventListener("abort", onAbort);
      };
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
        reject(err);
      };
      const succeed = (value: T) => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve(value);
      };

      signal.addEventListener("abort", onAbort, { once: true });

      stream.on("response", (h) => {
        headers = h;
      });
      stream.on("trailers", (t) => {
        trailers = t;
      });
      stream.on("data", (chunk: Uint8Array) => {
        try {
          reader.push(chunk);
        } catch (err) {
          fail(new RpcResponseError(`${name}: ${errorText(err)}`, { cause: err }));
        }
      });
      stream.on("error", (err) => {
        streamError = err;
      });
      stream.on("close", () => {
        if (settled) return;
        if (signal.aborted) return fail(timedOut());
        const status = trailers?.["grpc-status"] ?? headers?.["grpc-status"];
        if (status === undefined) {
          return fail(
            this.#transportError(name, channel, session, stream, headers, streamError),
          );
        }
        const code = Number(status);
        if (code !== GrpcCode.OK) {
          const message = trailers?.["grpc-message"] ?? headers?.["grpc-message"];
          return fail(grpcStatusError(name, code, decodeGrpcMessage(headerText(message))));
        }
        if (reader.messages.length !== 1 || reader.leftover !== 0) {
          return fail(
            new RpcResponseError(
              `${name}: expected one response message, got ${reader.messages.length}` +
                (reader.leftover ? ` and ${reader.leftover} stray bytes` : ""),
            ),
          );
        }
        try {
          succeed(decode(reader.messages[0]));
        } catch (err) {
          fail(
            new RpcResponseError(`${name}: undecodable response: ${errorText(err)}`, {
              cause: err,
            }),
          );
        }
      });

      stream.end(encodeGrpcFrame(body));
    });
  }

  /** The error for a stream that closed without a grpc-status. */
  #transportError(
    name: string,
    channel: GrpcChannel,
    session: http2.ClientHttp2Session,
    stream: http2.ClientHttp2Stream,
    headers: http2.IncomingHttpHeaders | undefined,
    cause: unknown,
  ): Error {
    const origin = channel.endpoint.origin;
    const httpStatus = Number(headers?.[HTTP2_HEADER_STATUS] ?? 0);
    if (headers && httpStatus !== 200) {
      const code = grpcCodeFromHttp(httpStatus);
      return grpcStatusError(name, code, `HTTP ${httpStatus} from ${origin}`);
    }
    const rst = stream.rstCode;
    if (rst === NGHTTP2_REFUSED_STREAM || rst === NGHTTP2_ENHANCE_YOUR_CALM) {
      return new RpcUnavailableError(`${name}: ${origin} refused the stream (RST ${rst})`, {
        cause,
      });
    }
    const dead = channel.isDead(session);
    if (dead || !headers) {
      if (dead) channel.reset(session);
      return new RpcUnavailableError(
        `${name}: backend ${origin} unreachable${cause ? `: ${errorText(cause)}` : ""}`,
        { cause },
      );
    }
    return new RpcResponseError(
      `${name}: stream ended without grpc-status${rst ? ` (RST ${rst})` : ""}`,
      { cause },
    );
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
