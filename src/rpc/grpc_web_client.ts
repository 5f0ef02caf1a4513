/**
 * AnyCable RPC over gRPC-web with `fetch`: unary calls to
 * `<base>/anycable.RPC/{Connect,Command,Disconnect}` over HTTP/1.1 or HTTP/2, messages from
 * proto/rpc.proto, `sid`/`protov` metadata, `grpc-timeout` + CallSignal deadlines. The status
 * comes from the trailer frame at the end of the body, or from the response headers for a
 * trailers-only answer. Binary (`application/grpc-web+proto`) or text
 * (`application/grpc-web-text`, base64) requests; either kind of response is read. Works
 * wherever `fetch` does (Deno Deploy included): no raw sockets, no `node:http2`.
 */
import { VERSION } from "../version.ts";
import { concatBytes } from "../util/concat_bytes.ts";
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
  MAX_MESSAGE_BYTES,
} from "./grpc_framing.ts";
import { GrpcCode, grpcCodeFromHttp, grpcStatusError } from "./grpc_status.ts";
import {
  decodeBase64Chunks,
  encodeBase64,
  type GrpcWebBody,
  parseGrpcWebBody,
} from "./grpc_web_framing.ts";
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
import { isTlsError } from "./rpc_tls.ts";
import { type CallSignal, withRequestDeadline } from "./call_signal.ts";

export type GrpcWebMode = "binary" | "text";

export interface GrpcWebRpcClientOptions {
  /** `http(s)://host:port[/prefix]`; a bare `host:port` gets `http://` (`https://` if `tls`). */
  url: string;
  /** Per-request timeout, ms (sent as `grpc-timeout` and enforced locally). */
  requestTimeout: number;
  /** Request encoding: `binary` (application/grpc-web+proto) or `text` (base64). */
  mode: GrpcWebMode;
  /** Use https:// for a host given without a scheme. */
  tls?: boolean;
  /** A fetch client (e.g. one trusting an extra root CA). */
  client?: Deno.HttpClient;
}

type Method = "Connect" | "Command" | "Disconnect";

const CONTENT_TYPE = { binary: "application/grpc-web+proto", text: "application/grpc-web-text" };
/** Base64 text is 4/3 the size of the bytes; allow for the trailer frame too. */
const MAX_BODY_BYTES = Math.ceil(MAX_MESSAGE_BYTES * 4 / 3) + 64 * 1024;

/** Normalizes `--rpc_host` for gRPC-web into a base URL without a trailing slash. */
export function grpcWebBaseUrl(host: string, tls = false): string {
  const raw = host.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)
    ? raw
    : `${tls ? "https" : "http"}://${raw}`;
  const url = new URL(withScheme);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`gRPC-web needs an http(s):// rpc_host, got ${JSON.stringify(host)}`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

export class GrpcWebRpcClient implements RpcClient {
  readonly name = "grpc-web";
  readonly base: string;
  readonly #timeout: number;
  readonly #mode: GrpcWebMode;
  readonly #client?: Deno.HttpClient;

  constructor(opts: GrpcWebRpcClientOptions) {
    this.base = grpcWebBaseUrl(opts.url, opts.tls);
    this.#timeout = opts.requestTimeout;
    this.#mode = opts.mode;
    this.#client = opts.client;
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

  close(): Promise<void> {
    this.#client?.close();
    return Promise.resolve();
  }

  #unary<T>(
    method: Method,
    message: Uint8Array,
    decode: (bytes: Uint8Array) => T,
    meta: CallMeta,
  ): Promise<T> {
    const name = method.toLowerCase();
    return withRequestDeadline(
      meta,
      this.#timeout,
      (own, signal) => this.#call(method, name, message, decode, meta, own, signal),
    );
  }

  async #call<T>(
    method: Method,
    name: string,
    message: Uint8Array,
    decode: (bytes: Uint8Array) => T,
    meta: CallMeta,
    own: CallSignal | undefined,
    signal: AbortSignal,
  ): Promise<T> {
    const timedOut = (cause?: unknown) =>
      new RpcTimeoutError(`${name}: no answer within ${this.#timeout} ms`, { cause });
    // The caller's own signal (session gone, call budget) is passed through as an abort.
    const aborted = (cause: unknown) =>
      own?.timedOut || !meta.signal?.aborted ? timedOut(cause) : meta.signal.reason ?? cause;

    const frame = encodeGrpcFrame(message);
    const body: BodyInit = this.#mode === "text"
      ? encodeBase64(frame)
      : frame as Uint8Array<ArrayBuffer>;
    const contentType = CONTENT_TYPE[this.#mode];
    let res: Response;
    try {
      res = await fetch(`${this.base}/anycable.RPC/${method}`, {
        method: "POST",
        headers: {
          "content-type": contentType,
          accept: contentType,
          "x-grpc-web": "1",
          "x-user-agent": `cableway/${VERSION}`,
          "grpc-timeout": formatGrpcTimeout(this.#timeout),
          sid: meta.sid,
          protov: "v1",
        },
        body,
        signal,
        client: this.#client,
      });
    } catch (err) {
      if (signal.aborted) throw aborted(err);
      if (isTlsError(err)) {
        throw new RpcResponseError(
          `${name}: TLS handshake with ${this.base} failed: ${errorText(err)}`,
          { cause: err },
        );
      }
      throw new RpcUnavailableError(
        `${name}: backend ${this.base} unreachable: ${errorText(err)}`,
        { cause: err },
      );
    }

    let raw: Uint8Array;
    try {
      raw = await readBody(res, MAX_BODY_BYTES);
    } catch (err) {
      if (signal.aborted) throw aborted(err);
      if (err instanceof RpcResponseError) throw new RpcResponseError(`${name}: ${err.message}`);
      throw new RpcUnavailableError(`${name}: response body cut short: ${errorText(err)}`, {
        cause: err,
      });
    }

    const headerStatus = res.headers.get("grpc-status");
    if (res.status !== 200) {
      if (headerStatus !== null) {
        throw this.#statusError(name, Number(headerStatus), res.headers.get("grpc-message"));
      }
      throw grpcStatusError(
        name,
        grpcCodeFromHttp(res.status),
        `HTTP ${res.status} from ${this.base}`,
      );
    }
    // Trailers-only: the whole status is in the headers (and the body is empty).
    if (headerStatus !== null && raw.length === 0) {
      const code = Number(headerStatus);
      if (code !== GrpcCode.OK) {
        throw this.#statusError(name, code, res.headers.get("grpc-message"));
      }
      throw new RpcResponseError(`${name}: OK status without a response message`);
    }
    const type = (res.headers.get("content-type") ?? "").toLowerCase();
    if (!type.startsWith("application/grpc-web")) {
      throw new RpcResponseError(
        `${name}: unexpected content-type ${JSON.stringify(type)} from ${this.base}`,
      );
    }
    if (type.startsWith("application/grpc-web+json")) {
      throw new RpcResponseError(`${name}: JSON gRPC-web responses are not supported`);
    }

    let parsed: GrpcWebBody;
    try {
      const bytes = type.startsWith("application/grpc-web-text")
        ? decodeBase64Chunks(new TextDecoder().decode(raw))
        : raw;
      parsed = parseGrpcWebBody(bytes);
    } catch (err) {
      throw new RpcResponseError(`${name}: ${errorText(err)}`, { cause: err });
    }
    const status = parsed.trailers?.get("grpc-status") ?? headerStatus;
    if (status === null || status === undefined) {
      throw new RpcResponseError(`${name}: response ended without grpc-status`);
    }
    const code = Number(status);
    if (code !== GrpcCode.OK) {
      const text = parsed.trailers?.get("grpc-message") ?? res.headers.get("grpc-message");
      throw this.#statusError(name, code, text);
    }
    if (parsed.messages.length !== 1) {
      throw new RpcResponseError(
        `${name}: expected one response message, got ${parsed.messages.length}`,
      );
    }
    try {
      return decode(parsed.messages[0]);
    } catch (err) {
      throw new RpcResponseError(`${name}: undecodable response: ${errorText(err)}`, {
        cause: err,
      });
    }
  }

  #statusError(name: string, code: number, message: string | null | undefined): Error {
    if (!Number.isInteger(code) || code < 0) {
      return new RpcResponseError(`${name}: malformed grpc-status`);
    }
    return grpcStatusError(name, code, decodeGrpcMessage(message ?? undefined));
  }
}

/** Reads the whole body, refusing more than `limit` bytes. */
async function readBody(res: Response, limit: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new RpcResponseError(`response body exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return concatBytes(chunks, total);
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}
