import { causeText } from "../util/cause_text.ts";
import {
  type CallMeta,
  type CommandRequest,
  type CommandResponse,
  type ConnectRequest,
  type ConnectResponse,
  type DisconnectRequest,
  type DisconnectResponse,
  normalizeStatus,
  type RpcClient,
  RpcResponseError,
  RpcTimeoutError,
  RpcUnavailableError,
} from "./rpc_client.ts";
import { isTlsError } from "./rpc_tls.ts";
import { type CallSignal, requestDeadline } from "./call_signal.ts";
import { utf8Length } from "../util/utf8_length.ts";
import {
  Http1Client,
  type Http1Response,
  Http1ResponseError,
  Http1TooLargeError,
} from "./http1_client.ts";
import { concatBytes } from "../util/concat_bytes.ts";

export interface HttpRpcClientOptions {
  /** Base URL; calls go to `<base>/connect`, `<base>/command`, `<base>/disconnect`. */
  url: string;
  /** Bearer key; none sent when empty. */
  secret: string;
  /** Per-request timeout, ms. */
  requestTimeout: number;
  /** A fetch client (e.g. one trusting an extra root CA for https://). */
  client?: Deno.HttpClient;
  /** `--rpc_max_call_recv_size`: largest response body accepted (bytes). */
  maxRecvSize?: number;
  /** `--rpc_max_call_send_size`: largest request body sent (bytes). */
  maxSendSize?: number;
  /**
   * `--rpc_http_client`: "native" (default) calls over Cableway's own HTTP/1.1 keep-alive
   * connections (src/rpc/http1_client.ts); "fetch" uses the runtime's fetch.
   */
  transport?: "native" | "fetch";
  /** Extra root certificates (PEM) for https with the native transport. */
  caCerts?: string[];
}

/** AnyCable RPC over HTTP JSON (docs/protocol.md#http-rpc). */
export class HttpRpcClient implements RpcClient {
  readonly name = "http";
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeout: number;
  readonly #client?: Deno.HttpClient;
  readonly #maxRecv: number;
  readonly #maxSend: number;
  readonly #http1?: Http1Client;
  /** The URL path of the calls (`<path>/connect` …), for the native transport. */
  readonly #path: string;

  constructor(opts: HttpRpcClientOptions) {
    this.#maxRecv = opts.maxRecvSize ?? Infinity;
    this.#maxSend = opts.maxSendSize ?? Infinity;
    this.#base = opts.url.replace(/\/+$/, "");
    this.#headers = { "content-type": "application/json", "x-anycable-meta-protov": "v1" };
    if (opts.secret) this.#headers["authorization"] = `Bearer ${opts.secret}`;
    this.#timeout = opts.requestTimeout;
    this.#client = opts.client;
    const url = new URL(this.#base);
    this.#path = url.pathname.replace(/\/+$/, "");
    if ((opts.transport ?? "native") === "native") {
      this.#http1 = new Http1Client({ origin: url.origin, caCerts: opts.caCerts });
    }
  }

  async connect(req: ConnectRequest, meta: CallMeta): Promise<ConnectResponse> {
    const res = await this.#post("connect", req, meta);
    return { ...res, status: normalizeStatus(res.status) } as ConnectResponse;
  }

  async command(req: CommandRequest, meta: CallMeta): Promise<CommandResponse> {
    const res = await this.#post("command", req, meta);
    return { ...res, status: normalizeStatus(res.status) } as CommandResponse;
  }

  async disconnect(req: DisconnectRequest, meta: CallMeta): Promise<DisconnectResponse> {
    const res = await this.#post("disconnect", req, meta);
    return { ...res, status: normalizeStatus(res.status) } as DisconnectResponse;
  }

  close(): Promise<void> {
    this.#http1?.close();
    this.#client?.close();
    return Promise.resolve();
  }

  async #post(
    method: string,
    body: unknown,
    meta: CallMeta,
  ): Promise<Record<string, unknown>> {
    // Sent as a string (fetch encodes it once); its UTF-8 size is counted only when it could
    // be over the limit (at most 3 bytes per UTF-16 unit).
    const payload = JSON.stringify(body);
    const size = payload.length * 3 > this.#maxSend ? utf8Length(payload) : 0;
    if (size > this.#maxSend) {
      throw new RpcResponseError(
        `${method}: request of ${size} bytes exceeds --rpc_max_call_send_size (${this.#maxSend})`,
      );
    }
    const own = requestDeadline(meta, this.#timeout);
    const signal = own ? own.signal : meta.signal;
    if (this.#http1) {
      let answer: Http1Response;
      try {
        answer = await this.#http1.post(
          `${this.#path}/${method}`,
          { ...this.#headers, "x-anycable-meta-sid": meta.sid },
          payload,
          signal,
          this.#maxRecv,
        );
      } catch (err) {
        throw this.#failure(method, err, own, meta);
      } finally {
        own?.done();
      }
      return this.#answer(method, answer.status, answer.text);
    }
    let res: Response;
    let text: string;
    try {
      try {
        res = await fetch(`${this.#base}/${method}`, {
          method: "POST",
          headers: { ...this.#headers, "x-anycable-meta-sid": meta.sid },
          body: payload,
          signal,
          client: this.#client,
        });
      } catch (err) {
        throw this.#failure(method, err, own, meta);
      }
      try {
        text = await readLimited(res, this.#maxRecv, method);
      } catch (err) {
        if (err instanceof RpcResponseError) throw err;
        if (own?.timedOut) {
          throw new RpcTimeoutError(`${method}: no answer within ${this.#timeout} ms`, {
            cause: err,
          });
        }
        throw new RpcResponseError(`${method}: failed to read response: ${errorText(err)}`, {
          cause: err,
        });
      }
    } finally {
      own?.done();
    }
    return this.#answer(method, res.status, text);
  }

  /** The error a failed call becomes (fetch rejected, or the native client failed). */
  #failure(method: string, err: unknown, own: CallSignal | undefined, meta: CallMeta): unknown {
    if (own?.timedOut) {
      return new RpcTimeoutError(`${method}: no answer within ${this.#timeout} ms`, { cause: err });
    }
    if (err instanceof Http1TooLargeError) {
      return new RpcResponseError(
        `${method}: ${err.message} exceeds --rpc_max_call_recv_size (${this.#maxRecv})`,
      );
    }
    if (err instanceof Http1ResponseError) {
      return new RpcResponseError(`${method}: failed to read response: ${errorText(err)}`, {
        cause: err,
      });
    }
    if (meta.signal?.aborted) return err;
    if (isTlsError(err)) {
      return new RpcResponseError(
        `${method}: TLS handshake with ${new URL(this.#base).origin} failed: ${errorText(err)}`,
        { cause: err },
      );
    }
    return new RpcUnavailableError(
      `${method}: backend ${this.#base}/${method} unreachable: ${causeText(err)}`,
      { cause: err },
    );
  }

  /** A 200 answer's JSON object; any other status is an error. */
  #answer(method: string, status: number, text: string): Record<string, unknown> {
    if (status === 401) throw new RpcResponseError(`${method}: unauthorized (HTTP 401)`);
    if (status !== 200) {
      throw new RpcResponseError(`${method}: HTTP ${status}: ${text.slice(0, 200)}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new RpcResponseError(`${method}: invalid JSON response: ${text.slice(0, 200)}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new RpcResponseError(`${method}: response is not a JSON object`);
    }
    return value as Record<string, unknown>;
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

/** The response body as text; an RpcResponseError once it passes `max` bytes. */
async function readLimited(res: Response, max: number, method: string): Promise<string> {
  if (!Number.isFinite(max) || !res.body) return await res.text();
  const declared = Number(res.headers.get("content-length") ?? NaN);
  const tooBig = (n: number) =>
    new RpcResponseError(
      `${method}: response of ${n}${
        Number.isFinite(declared) ? "" : "+"
      } bytes exceeds --rpc_max_call_recv_size (${max})`,
    );
  if (declared > max) {
    await res.body.cancel();
    throw tooBig(declared);
  }
  // A declared length within the limit bounds the body (the HTTP client enforces it).
  if (declared >= 0) return await res.text();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw tooBig(size);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks, size));
}
