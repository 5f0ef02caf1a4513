import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { RouteHandler } from "../server/server.ts";
import { VERSION } from "../version.ts";
import type { Connection } from "./connection.ts";
import { corsHeaders, preflightResponse } from "./cors.ts";
import { readBodyLimited } from "./request_body.ts";
import { encodeSseEvent, type SseEncoderOptions } from "./sse_encoder.ts";
import {
  isTruthyParam,
  resumeHistory,
  type SseSubscription,
  subscriptionFromQuery,
  subscriptionsFromBody,
} from "./sse_request.ts";

export interface SseOptions {
  /** --allowed_origins (empty = any). */
  allowedOrigins: string[];
  /** Largest POST body (bytes). */
  maxBodySize: number;
  logger: Logger;
}

/** Default POST body limit (docs/protocol.md#server-sent-events). */
export const SSE_MAX_BODY_SIZE = 65536;

const STREAM_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "private, no-cache, no-store, must-revalidate, max-age=0",
  "x-accel-buffering": "no",
  "x-content-type-options": "nosniff",
  "pragma": "no-cache",
  "expire": "0",
  "connection": "keep-alive",
};

/**
 * Server-Sent Events transport (docs/protocol.md#server-sent-events). One request = one session:
 * authenticate (401 on failure), subscribe to what the request names (400 when refused),
 * then answer 200 with an event stream that lives as long as the session. Everything the
 * session produced before the 200 (welcome, confirmation, history) opens the stream.
 * The session ends when the client goes away (the body stream is cancelled) or the server
 * closes it (the stream ends, after the `disconnect` event).
 */
export function createSseHandler(node: Node, opts: SseOptions): RouteHandler {
  return async (req, remoteAddr) => {
    const base = { "x-anycable-version": VERSION };
    if (req.method === "OPTIONS") {
      return preflightResponse(req, opts.allowedOrigins, {
        methods: ["GET", "POST", "OPTIONS"],
        allowHeaders: ["Content-Type", "Last-Event-ID", "Cache-Control", "X-Requested-With"],
      }, base);
    }
    if (req.method !== "GET" && req.method !== "POST") {
      await req.body?.cancel().catch(() => {});
      return text(405, "method not allowed", { ...base, allow: "GET, POST, OPTIONS" });
    }
    const cors = corsHeaders(req, opts.allowedOrigins);
    if (!cors) {
      opts.logger.warn("sse origin rejected", { origin: req.headers.get("origin") });
      await req.body?.cancel().catch(() => {});
      return text(403, "origin not allowed", base);
    }
    for (const [k, v] of Object.entries(base)) cors.set(k, v);
    if (node.shuttingDown) return text(503, "shutting down", cors);

    const url = new URL(req.url);
    let subs: SseSubscription[];
    if (req.method === "GET") {
      const identifier = subscriptionFromQuery(url.searchParams);
      if (identifier === null) return text(400, "no subscription requested", cors);
      subs = [{ identifier }];
    } else {
      const body = await readBodyLimited(req, opts.maxBodySize);
      if (body === null) return text(413, "request body too large", cors);
      const parsed = subscriptionsFromBody(body);
      if (typeof parsed === "string") return text(400, parsed, cors);
      subs = parsed;
    }
    const resume = node.deps.broker.persistent
      ? resumeHistory(req.headers.get("last-event-id"), url.searchParams.get("history_since"))
      : undefined;

    const conn = new SseStream({
      unwrapData: req.method === "GET",
      raw: req.method === "GET" && isTruthyParam(url.searchParams.get("raw")),
    });
    const session = node.open(conn, {
      url: req.url,
      headers: node.copyHeaders(req.headers),
      remoteAddr,
      protocol: "",
      transport: "sse",
    });
    // Tasks run in order after authentication: once this one ran, auth is decided.
    await session.enqueue(() => {});
    if (session.state !== "connected") {
      node.closed(session);
      return new Response(null, { status: 401, headers: cors });
    }
    for (const sub of subs) {
      const history = sub.history ?? resume;
      node.receive(
        session,
        JSON.stringify({ command: "subscribe", identifier: sub.identifier, history }),
      );
      await session.enqueue(() => {});
      if (session.state !== "connected" || !session.subscriptions.has(sub.identifier)) {
        session.logger.info("sse subscription refused", { identifier: sub.identifier });
        node.closed(session);
        return text(400, "subscription rejected", cors);
      }
    }
    const headers = new Headers(cors);
    for (const [k, v] of Object.entries(STREAM_HEADERS)) headers.set(k, v);
    return new Response(conn.start(() => node.closed(session)), { status: 200, headers });
  };
}

/**
 * The SSE Connection: encodes each message as an event; buffers events until the response
 * starts, then writes them to the response body. `close` ends the body.
 */
class SseStream implements Connection {
  readonly #encoder = new TextEncoder();
  readonly #opts: SseEncoderOptions;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  #closed = false;

  constructor(opts: SseEncoderOptions) {
    this.#opts = opts;
  }

  send(frame: string): void {
    if (this.#closed) return;
    const event = encodeSseEvent(frame, this.#opts);
    if (event === null) return;
    const bytes = this.#encoder.encode(event);
    if (!this.#controller) {
      this.#pending.push(bytes);
      this.#pendingBytes += bytes.byteLength;
      return;
    }
    try {
      this.#controller.enqueue(bytes);
    } catch {
      // the client is gone; cancel() reports it
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#controller?.close();
    } catch {
      // already cancelled
    }
  }

  /** Bytes written but not yet taken by the HTTP server (for the too_slow check). */
  get bufferedAmount(): number {
    if (!this.#controller) return this.#pendingBytes;
    return Math.max(0, -(this.#controller.desiredSize ?? 0));
  }

  /** The response body: buffered events first; `onGone` runs when the client goes away. */
  start(onGone: () => void): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        for (const chunk of this.#pending) controller.enqueue(chunk);
        this.#pending = [];
        this.#pendingBytes = 0;
        if (this.#closed) controller.close();
      },
      cancel: () => {
        this.#closed = true;
        onGone();
      },
    }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
  }
}

function text(status: number, body: string, headers: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "text/plain; charset=utf-8");
  return new Response(body + "\n", { status, headers: h });
}
