import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { Session } from "../node/session.ts";
import type { RouteHandler } from "../server/server.ts";
import { nanoid } from "../util/nanoid.ts";
import { VERSION } from "../version.ts";
import { corsHeaders, exposeHeaders, preflightResponse } from "./cors.ts";
import { PollSession } from "./poll_session.ts";
import { jsonLines, readBodyLimited } from "./request_body.ts";

export interface LongPollOptions {
  /** --allowed_origins (empty = any). */
  allowedOrigins: string[];
  /** Longest a poll is held without anything to send (seconds). */
  pollInterval: number;
  /** Outgoing buffering before a poll answers (ms). */
  flushInterval: number;
  /** A session dies this long after its last poll (seconds). */
  keepaliveTimeout: number;
  /** Largest request body (bytes). */
  maxRequestSize: number;
  logger: Logger;
}

export const POLL_ID_HEADER = "X-Anycable-Poll-ID";

/** Body line of the 401 answer to an unknown or expired poll id. */
export const SESSION_EXPIRED_LINE =
  `{"type":"disconnect","reason":"session_expired","reconnect":true}\n`;

interface LiveEntry {
  poll: PollSession;
  session: Session;
}

/**
 * Long-polling transport (docs/protocol.md#long-polling). Every request is a POST whose body holds
 * JSONL client commands (processed in order).
 *
 * - No X-Anycable-Poll-ID: a new session. Authentication failure → 401 whose body holds the
 *   pending lines (the disconnect). Success → 200 with `X-Anycable-Poll-ID: <id>` and the
 *   pending lines (welcome, confirmations...) after at most the flush interval.
 * - With the header: a poll, held per PollSession's contract (at most --poll_interval).
 *   Unknown or expired id → 401 with a `session_expired` disconnect line (reconnect: true),
 *   so the client starts a new session.
 * - A session closed by the server while no poll was held (remote disconnect, restart...)
 *   keeps its undelivered lines for --poll_keepalive_timeout: the next poll gets them with
 *   200, later ones the 401.
 * - Body over --poll_max_request_size → 413; methods other than POST → 405; OPTIONS is the
 *   CORS preflight (allows and exposes X-Anycable-Poll-ID).
 */
export function createLongPollHandler(node: Node, opts: LongPollOptions): RouteHandler {
  const live = new Map<string, LiveEntry>();
  const lingering = new Map<string, { text: string; until: number }>();
  const keepaliveMs = opts.keepaliveTimeout * 1000;

  const newPollSession = () =>
    new PollSession(nanoid(), {
      flushMs: opts.flushInterval,
      keepaliveMs,
      onExpired(p) {
        const entry = live.get(p.id);
        if (!entry) return;
        entry.session.logger.debug("long-polling session expired");
        node.closed(entry.session);
      },
      onClosed(p) {
        if (live.get(p.id)?.poll !== p) return;
        live.delete(p.id);
        if (p.expired) return;
        const text = p.takePending();
        if (text) lingering.set(p.id, { text, until: Date.now() + keepaliveMs });
      },
    });

  const sweep = () => {
    const now = Date.now();
    for (const [id, l] of lingering) if (l.until <= now) lingering.delete(id);
  };

  const poll = (id: string, body: string, headers: Headers): Response => {
    const entry = live.get(id);
    if (!entry) {
      const l = lingering.get(id);
      lingering.delete(id);
      if (l) return jsonl(200, l.text, headers);
      headers.delete(POLL_ID_HEADER);
      return jsonl(401, SESSION_EXPIRED_LINE, headers);
    }
    const req = entry.poll.begin(opts.pollInterval * 1000);
    const lines = jsonLines(body);
    entry.session.logger.debug("long poll held", { commands: lines.length });
    for (const line of lines) node.receive(entry.session, line);
    entry.session.enqueue(() => {}).then(req.ready);
    return jsonl(200, req.body, headers);
  };

  const connect = async (
    req: Request,
    remoteAddr: string,
    body: string,
    headers: Headers,
  ): Promise<Response> => {
    const p = newPollSession();
    const session = node.open(p, {
      url: req.url,
      headers: node.copyHeaders(req.headers),
      remoteAddr,
      protocol: "",
      transport: "poll",
    });
    // Tasks run in order after authentication: once this one ran, auth is decided.
    await session.enqueue(() => {});
    if (session.state !== "connected") {
      node.closed(session);
      return jsonl(401, p.takePending(), headers);
    }
    live.set(p.id, { poll: p, session });
    headers.set(POLL_ID_HEADER, p.id);
    // The first answer is never held longer than the flush interval.
    const first = p.begin(opts.flushInterval);
    for (const line of jsonLines(body)) node.receive(session, line);
    session.enqueue(() => {}).then(first.ready);
    return jsonl(200, first.body, headers);
  };

  return async (req, remoteAddr) => {
    const base = { "x-anycable-version": VERSION };
    if (req.method === "OPTIONS") {
      return preflightResponse(req, opts.allowedOrigins, {
        methods: ["POST", "OPTIONS"],
        allowHeaders: ["Content-Type", POLL_ID_HEADER],
        exposeHeaders: [POLL_ID_HEADER],
      }, base);
    }
    if (req.method !== "POST") {
      await req.body?.cancel().catch(() => {});
      return text(405, "method not allowed", { ...base, allow: "POST, OPTIONS" });
    }
    const headers = corsHeaders(req, opts.allowedOrigins);
    if (!headers) {
      opts.logger.warn("long-polling origin rejected", { origin: req.headers.get("origin") });
      await req.body?.cancel().catch(() => {});
      return text(403, "origin not allowed", base);
    }
    for (const [k, v] of Object.entries(base)) headers.set(k, v);
    exposeHeaders(headers, [POLL_ID_HEADER]);
    headers.set("cache-control", "no-store");
    const body = await readBodyLimited(req, opts.maxRequestSize);
    if (body === null) return text(413, "request body too large", headers);
    sweep();
    const id = req.headers.get(POLL_ID_HEADER);
    if (id !== null) {
      headers.set(POLL_ID_HEADER, id);
      return poll(id, body, headers);
    }
    if (node.shuttingDown) return text(503, "shutting down", headers);
    return await connect(req, remoteAddr, body, headers);
  };
}

function jsonl(status: number, body: BodyInit, headers: Headers): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/x-ndjson; charset=utf-8");
  return new Response(body, { status, headers: h });
}

function text(status: number, body: string, headers: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "text/plain; charset=utf-8");
  return new Response(body + "\n", { status, headers: h });
}
