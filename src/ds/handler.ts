import type { Logger } from "../logger/logger.ts";
import type { RouteHandler } from "../server/server.ts";
import { originAllowed } from "../transport/origin.ts";
import { VERSION } from "../version.ts";
import type { DsAccess } from "./access.ts";
import { isJson, isTextual, validContentType } from "./content_type.ts";
import { nextCursor } from "./cursor.ts";
import { DsError } from "./errors.ts";
import { jsonArray } from "./json_values.ts";
import type { DsLive, Watch } from "./live.ts";
import { formatOffset, parseOffset } from "./offset.ts";
import type { DsReadable, DsReadSource } from "./readable.ts";
import { controlEvent, sseEvent } from "./sse_frames.ts";
import type { DsStats } from "./stats.ts";
import { type AppendRequest, type CreateRequest, type DsStreams, toBase64 } from "./streams.ts";
import type { DsEntry } from "./types.ts";
import { concatBytes } from "../util/concat_bytes.ts";

export interface DsHandlerOptions {
  /** Mount path, e.g. `/ds` (no trailing slash). */
  path: string;
  /** --allowed_origins (empty = any). */
  allowedOrigins: string[];
  /** Long-poll hold time (ms). */
  pollIntervalMs: number;
  /** Longest an SSE response stays open (ms). */
  sseTtlMs: number;
  /** Largest append/create body (bytes). */
  maxAppendSize: number;
  /** Largest catch-up response (bytes, about). */
  maxReadSize: number;
  logger: Logger;
}

export interface DsHandlerDeps {
  streams: DsStreams;
  source: DsReadSource;
  live: DsLive;
  access: DsAccess;
  /** Aborted on shutdown: open long-polls and SSE responses end. */
  shutdown: AbortSignal;
  stats: DsStats;
}

const ALLOW_HEADERS = [
  "content-type",
  "authorization",
  "if-none-match",
  "x-signed",
  "stream-seq",
  "stream-ttl",
  "stream-expires-at",
  "stream-closed",
  "producer-id",
  "producer-epoch",
  "producer-seq",
  "stream-forked-from",
  "stream-fork-offset",
  "stream-fork-sub-offset",
];
const EXPOSE_HEADERS = [
  "stream-next-offset",
  "stream-cursor",
  "stream-up-to-date",
  "stream-closed",
  "stream-ttl",
  "stream-expires-at",
  "stream-sse-data-encoding",
  "producer-epoch",
  "producer-seq",
  "producer-expected-seq",
  "producer-received-seq",
  "location",
  "etag",
  "content-type",
];

/**
 * The Durable Streams HTTP protocol at `<path>/<stream>`: PUT creates (or forks), POST appends
 * or closes, HEAD describes, DELETE removes, GET reads (catch-up, `live=long-poll`, `live=sse`).
 */
export function createDsHandler(opts: DsHandlerOptions, deps: DsHandlerDeps): RouteHandler {
  const prefix = `${opts.path}/`;
  const log = opts.logger;
  return async (req, remoteAddr) => {
    const base = baseHeaders(req, opts.allowedOrigins);
    if (!base) {
      await req.body?.cancel().catch(() => {});
      return plain(403, "origin not allowed", new Headers());
    }
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: base });
    const url = new URL(req.url);
    let stream: string;
    try {
      stream = url.pathname.startsWith(prefix)
        ? decodeURIComponent(url.pathname.slice(prefix.length))
        : "";
    } catch {
      stream = "";
    }
    if (stream === "") {
      await req.body?.cancel().catch(() => {});
      return plain(404, "no stream in the path", base);
    }
    try {
      switch (req.method) {
        case "GET":
        case "HEAD": {
          deps.stats.requests++;
          if (!await deps.access.canRead(req, stream, remoteAddr)) {
            log.info("ds read refused", { stream });
            return plain(401, "unauthorized", base);
          }
          return req.method === "HEAD"
            ? await head(stream, deps, base)
            : await get(req, url, stream, opts, deps, base);
        }
        case "PUT":
        case "POST":
        case "DELETE": {
          deps.stats.writes++;
          if (!deps.access.canWrite(req)) {
            await req.body?.cancel().catch(() => {});
            log.warn("ds write refused: bad or missing key", { stream, method: req.method });
            return plain(401, "unauthorized", base);
          }
          if (req.method === "PUT") return await put(req, stream, opts, deps, base);
          if (req.method === "POST") return await post(req, stream, opts, deps, base);
          await deps.streams.delete(stream);
          return new Response(null, { status: 204, headers: base });
        }
        default:
          await req.body?.cancel().catch(() => {});
          return plain(405, "method not allowed", base);
      }
    } catch (err) {
      await req.body?.cancel().catch(() => {});
      if (err instanceof DsError) {
        if (err.status >= 500) log.warn("ds request failed", { stream, error: err.message });
        else log.debug("ds request refused", { stream, status: err.status, error: err.message });
        for (const [k, v] of Object.entries(err.headers)) base.set(k, v);
        return plain(err.status, err.message, base);
      }
      log.error("ds request failed", { stream, method: req.method, error: err });
      return plain(503, "storage unavailable", base);
    }
  };
}

function baseHeaders(req: Request, allowed: string[]): Headers | null {
  const h = new Headers();
  if (allowed.length === 0) h.set("access-control-allow-origin", "*");
  else {
    const origin = req.headers.get("origin");
    if (origin !== null) {
      if (!originAllowed(origin, allowed)) return null;
      h.set("access-control-allow-origin", origin);
      h.set("vary", "Origin");
    }
  }
  h.set("access-control-allow-methods", "GET, POST, PUT, DELETE, HEAD, OPTIONS");
  h.set("access-control-allow-headers", ALLOW_HEADERS.join(", "));
  h.set("access-control-expose-headers", EXPOSE_HEADERS.join(", "));
  h.set("x-content-type-options", "nosniff");
  h.set("cross-origin-resource-policy", "cross-origin");
  h.set("x-anycable-version", VERSION);
  return h;
}

function plain(status: number, text: string, headers: Headers): Response {
  headers.set("content-type", "text/plain; charset=utf-8");
  return new Response(status === 304 ? null : text + "\n", { status, headers });
}

async function open(deps: DsHandlerDeps, stream: string): Promise<DsReadable> {
  const r = await deps.source.open(stream);
  if (r === null) throw new DsError(404, "stream not found");
  if (r === "gone") throw new DsError(410, "stream is gone");
  return r;
}

async function head(stream: string, deps: DsHandlerDeps, h: Headers): Promise<Response> {
  const info = (await open(deps, stream)).info();
  h.set("content-type", info.contentType);
  h.set("stream-next-offset", formatOffset(info.tail));
  h.set("cache-control", "no-store");
  if (info.closed) h.set("stream-closed", "true");
  if (info.ttlSeconds !== undefined) h.set("stream-ttl", String(info.ttlSeconds));
  if (info.expiresAt !== undefined) h.set("stream-expires-at", info.expiresAt);
  h.set("etag", etag(stream, "-1", info.tail, info.closed));
  return new Response(null, { status: 200, headers: h });
}

function etag(stream: string, start: string, next: number, closed: boolean): string {
  const name = toBase64(new TextEncoder().encode(stream));
  return `"${name}:${start}:${formatOffset(next)}${closed ? ":c" : ""}"`;
}

/** The response body of some entries in the stream's content type. */
function body(contentType: string, entries: DsEntry[]): Uint8Array {
  if (isJson(contentType)) return jsonArray(entries.map((e) => e.data));
  return concatBytes(entries.map((e) => e.data));
}

async function get(
  req: Request,
  url: URL,
  stream: string,
  opts: DsHandlerOptions,
  deps: DsHandlerDeps,
  h: Headers,
): Promise<Response> {
  const offsets = url.searchParams.getAll("offset");
  if (offsets.length > 1) throw new DsError(400, "more than one offset parameter");
  const rawOffset = offsets.length === 1 ? offsets[0] : null;
  if (rawOffset === "") throw new DsError(400, "empty offset parameter");
  const offset = rawOffset === null ? { kind: "start" as const } : parseOffset(rawOffset);
  if (offset === null) throw new DsError(400, "malformed offset");
  const live = url.searchParams.get("live");
  if (live !== null && live !== "long-poll" && live !== "sse") {
    throw new DsError(400, "live must be long-poll or sse");
  }
  if (live !== null && rawOffset === null) throw new DsError(400, `live=${live} needs an offset`);
  const cursor = url.searchParams.get("cursor");
  const readable = await open(deps, stream);
  const info = readable.info();
  const start = offset.kind === "start" ? 0 : offset.kind === "now" ? info.tail : offset.n;

  if (live === "sse") return sse(stream, readable, start, cursor, opts, deps, h);

  h.set("content-type", info.contentType);
  if (offset.kind === "now" && live === null) {
    await readable.touch();
    h.set("stream-next-offset", formatOffset(info.tail));
    h.set("stream-up-to-date", "true");
    h.set("cache-control", "no-store");
    if (info.closed) h.set("stream-closed", "true");
    return new Response(isJson(info.contentType) ? "[]" : "", { status: 200, headers: h });
  }

  const watch = live === "long-poll" ? deps.live.watch(stream) : undefined;
  if (watch) {
    deps.stats.pollRequests++;
    deps.stats.pollClients++;
  }
  try {
    return await catchUp(req, stream, readable, start, rawOffset, cursor, watch, opts, deps, h);
  } finally {
    if (watch) deps.stats.pollClients--;
    watch?.close();
  }
}

async function catchUp(
  req: Request,
  stream: string,
  readable: DsReadable,
  start: number,
  rawOffset: string | null,
  cursor: string | null,
  watch: Watch | undefined,
  opts: DsHandlerOptions,
  deps: DsHandlerDeps,
  h: Headers,
): Promise<Response> {
  let info = readable.info();
  let chunk = await readable.read(start, opts.maxReadSize);
  if (watch) {
    h.set("stream-cursor", nextCursor(cursor));
    if (chunk.entries.length === 0 && start >= info.tail) {
      const deadline = Date.now() + opts.pollIntervalMs;
      while (chunk.entries.length === 0 && !info.closed) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        // Bounded by the poll interval; a client that left is noticed when writing fails.
        const outcome = await watch.next(left, deps.shutdown);
        if (outcome === "aborted") break;
        const fresh = await readable.refresh();
        if (fresh === null) throw new DsError(404, "stream not found");
        readable = fresh;
        info = readable.info();
        if (outcome === "timeout") break;
        chunk = await readable.read(start, opts.maxReadSize);
      }
      if (chunk.entries.length === 0) {
        await readable.touch();
        h.delete("content-type");
        h.set("stream-next-offset", formatOffset(Math.min(start, info.tail)));
        h.set("stream-up-to-date", "true");
        if (info.closed) h.set("stream-closed", "true");
        return new Response(null, { status: 204, headers: h });
      }
    }
  }
  await readable.touch();
  const next = chunk.entries.length > 0 ? chunk.next : Math.min(start, info.tail);
  const atTail = next >= info.tail;
  h.set("stream-next-offset", formatOffset(next));
  if (chunk.upToDate) h.set("stream-up-to-date", "true");
  const closedHere = info.closed && atTail && chunk.upToDate;
  if (closedHere) h.set("stream-closed", "true");
  const tag = etag(stream, rawOffset ?? "-1", next, closedHere);
  h.set("etag", tag);
  if (req.headers.get("if-none-match") === tag) {
    h.delete("content-type");
    return new Response(null, { status: 304, headers: h });
  }
  return new Response(body(info.contentType, chunk.entries) as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: h,
  });
}

function sse(
  stream: string,
  first: DsReadable,
  start: number,
  cursor: string | null,
  opts: DsHandlerOptions,
  deps: DsHandlerDeps,
  h: Headers,
): Response {
  const contentType = first.info().contentType;
  const base64 = !isTextual(contentType);
  h.set("content-type", "text/event-stream");
  h.set("cache-control", "no-cache");
  h.set("connection", "keep-alive");
  h.set("x-accel-buffering", "no");
  if (base64) h.set("stream-sse-data-encoding", "base64");
  const stop = new AbortController();
  // The body's cancel() tells when the client went away.
  const signal = AbortSignal.any([deps.shutdown, stop.signal]);
  const decoder = new TextDecoder();
  const payload = (entries: DsEntry[]): string => {
    if (isJson(contentType)) return decoder.decode(jsonArray(entries.map((e) => e.data)));
    const bytes = concatBytes(entries.map((e) => e.data));
    return base64 ? toBase64(bytes) : decoder.decode(bytes);
  };
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      const send = (chunk: Uint8Array) => {
        try {
          controller.enqueue(chunk);
        } catch {
          stop.abort();
        }
      };
      const watch = deps.live.watch(stream);
      deps.stats.sseRequests++;
      deps.stats.sseClients++;
      (async () => {
        let readable: DsReadable | null = first;
        let at = start;
        const deadline = Date.now() + opts.sseTtlMs;
        try {
          while (readable && !signal.aborted) {
            const info = readable.info();
            const chunk = await readable.read(at, opts.maxReadSize);
            await readable.touch();
            if (chunk.entries.length > 0) {
              send(sseEvent("data", payload(chunk.entries)));
              at = chunk.next;
            }
            const atTail = at >= info.tail;
            if (info.closed && atTail) {
              send(controlEvent({ streamNextOffset: formatOffset(at), streamClosed: true }));
              break;
            }
            send(controlEvent({
              streamNextOffset: formatOffset(at),
              streamCursor: nextCursor(cursor),
              ...(atTail ? { upToDate: true } : {}),
            }));
            if (!atTail) continue;
            const left = deadline - Date.now();
            if (left <= 0) break;
            const outcome = await watch.next(Math.min(left, opts.pollIntervalMs), signal);
            if (outcome === "aborted") break;
            readable = await readable.refresh();
            // On a timeout the loop's control event doubles as a keep-alive for proxies.
          }
        } catch (err) {
          opts.logger.warn("ds sse stream failed", { stream, error: err });
        } finally {
          deps.stats.sseClients--;
          watch.close();
        }
        try {
          controller.close();
        } catch {
          // the client is gone
        }
      })();
    },
    cancel: () => stop.abort(),
  });
  return new Response(body, { status: 200, headers: h });
}

async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > limit) {
    throw new DsError(413, `body larger than ${limit} bytes`);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new DsError(413, `body larger than ${limit} bytes`);
    }
    parts.push(value);
  }
  return concatBytes(parts, size);
}

const NON_NEGATIVE = /^(0|[1-9]\d*)$/;

async function put(
  req: Request,
  stream: string,
  opts: DsHandlerOptions,
  deps: DsHandlerDeps,
  h: Headers,
): Promise<Response> {
  const ttl = req.headers.get("stream-ttl");
  const expiresAt = req.headers.get("stream-expires-at");
  if (ttl !== null && expiresAt !== null) {
    throw new DsError(400, "give Stream-TTL or Stream-Expires-At, not both");
  }
  if (ttl !== null && !NON_NEGATIVE.test(ttl)) throw new DsError(400, "invalid Stream-TTL");
  if (expiresAt !== null && !Number.isFinite(Date.parse(expiresAt))) {
    throw new DsError(400, "invalid Stream-Expires-At");
  }
  const forkedFrom = req.headers.get("stream-forked-from");
  const forkOffsetRaw = req.headers.get("stream-fork-offset");
  const subRaw = req.headers.get("stream-fork-sub-offset");
  let fork: CreateRequest["fork"];
  if (subRaw !== null && forkedFrom === null) {
    throw new DsError(400, "Stream-Fork-Sub-Offset needs Stream-Forked-From");
  }
  if (forkedFrom !== null) {
    let forkOffset: number | undefined;
    if (forkOffsetRaw !== null) {
      const parsed = parseOffset(forkOffsetRaw);
      if (parsed?.kind !== "at") throw new DsError(400, "invalid Stream-Fork-Offset");
      forkOffset = parsed.n;
    }
    if (subRaw !== null && !NON_NEGATIVE.test(subRaw)) {
      throw new DsError(400, "invalid Stream-Fork-Sub-Offset");
    }
    const subOffset = subRaw === null ? undefined : Number(subRaw);
    if (subOffset !== undefined && subOffset > 0 && forkOffset === undefined) {
      throw new DsError(400, "Stream-Fork-Sub-Offset needs Stream-Fork-Offset");
    }
    let source = forkedFrom.trim();
    try {
      source = decodeURIComponent(source);
    } catch {
      throw new DsError(400, "invalid Stream-Forked-From");
    }
    source = source.replace(/^\/+/, "");
    if (source === "") throw new DsError(400, "invalid Stream-Forked-From");
    fork = { source, offset: forkOffset, subOffset };
  }
  const contentType = validContentType(req.headers.get("content-type")) ?? undefined;
  const data = await readBody(req, opts.maxAppendSize);
  const { created, meta } = await deps.streams.create(stream, {
    contentType,
    ttlSeconds: ttl === null ? undefined : Number(ttl),
    expiresAt: expiresAt ?? undefined,
    closed: req.headers.get("stream-closed")?.toLowerCase() === "true",
    body: data,
    fork,
  });
  h.set("content-type", meta.contentType);
  h.set("stream-next-offset", formatOffset(meta.tail));
  if (meta.closed) h.set("stream-closed", "true");
  if (created) h.set("location", new URL(req.url).href);
  return new Response(null, { status: created ? 201 : 200, headers: h });
}

async function post(
  req: Request,
  stream: string,
  opts: DsHandlerOptions,
  deps: DsHandlerDeps,
  h: Headers,
): Promise<Response> {
  const id = req.headers.get("producer-id");
  const epochRaw = req.headers.get("producer-epoch");
  const seqRaw = req.headers.get("producer-seq");
  let producer: AppendRequest["producer"];
  if (id !== null || epochRaw !== null || seqRaw !== null) {
    if (id === null || epochRaw === null || seqRaw === null) {
      throw new DsError(400, "Producer-Id, Producer-Epoch and Producer-Seq go together");
    }
    if (id === "") throw new DsError(400, "Producer-Id must not be empty");
    const epoch = Number(epochRaw);
    const seq = Number(seqRaw);
    if (!/^\d+$/.test(epochRaw) || !Number.isSafeInteger(epoch)) {
      throw new DsError(400, "Producer-Epoch must be a non-negative integer");
    }
    if (!/^\d+$/.test(seqRaw) || !Number.isSafeInteger(seq)) {
      throw new DsError(400, "Producer-Seq must be a non-negative integer");
    }
    producer = { id, epoch, seq };
  }
  const close = req.headers.get("stream-closed")?.toLowerCase() === "true";
  const data = await readBody(req, opts.maxAppendSize);
  const contentType = req.headers.get("content-type");
  if (data.byteLength === 0 && !close) throw new DsError(400, "empty body");
  if (data.byteLength > 0 && !contentType) throw new DsError(400, "Content-Type is required");
  const seq = req.headers.get("stream-seq") ?? undefined;
  const r = await deps.streams.append(stream, {
    contentType: data.byteLength > 0 ? contentType : null,
    body: data,
    seq,
    producer,
    close,
  });
  h.set("stream-next-offset", formatOffset(r.tail));
  if (r.closed && (close || r.status === 204)) h.set("stream-closed", "true");
  if (r.producer) {
    h.set("producer-epoch", String(r.producer.epoch));
    h.set("producer-seq", String(r.producer.seq));
  }
  return new Response(null, { status: r.status, headers: h });
}
