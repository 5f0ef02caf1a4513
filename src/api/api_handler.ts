import type { BroadcastHandler } from "../broadcast/broadcaster.ts";
import { InvalidBroadcastError } from "../broadcast/broadcaster.ts";
import type { Broker } from "../broker/broker.ts";
import type { Logger } from "../logger/logger.ts";
import type { RouteHandler } from "../server/server.ts";
import { timingSafeEqual } from "../util/secrets.ts";
import { parsePresencePath } from "./presence_path.ts";

export interface ApiOptions {
  /** Base path, e.g. `/api` (no trailing slash). */
  path: string;
  /** Bearer key; empty = no authentication. */
  key: string;
  /** Largest accepted publish body, bytes. */
  maxBodySize: number;
  logger: Logger;
}

export interface ApiDeps {
  /** Where publications go: the same pipeline as `/_broadcast` (broker, then pub/sub). */
  publisher: Pick<BroadcastHandler, "handleBroadcast">;
  broker: Broker;
}

/**
 * The REST API: `POST <path>/publish` (a publication or a batch, like `/_broadcast`) and
 * `GET <path>/presence/<percent-encoded stream>/users`. One handler serves every path under
 * the base path.
 */
export function createApiHandler(opts: ApiOptions, deps: ApiDeps): RouteHandler {
  const log = opts.logger;
  const publishPath = `${opts.path}/publish`;
  return async (req) => {
    const path = new URL(req.url).pathname;
    if (path === publishPath) {
      if (req.method !== "POST") return status(422, "use POST");
      if (!authorized(req, opts.key)) {
        log.warn("API request rejected: bad or missing key", { path });
        return status(401, "unauthorized");
      }
      return await publish(req, opts, deps);
    }
    const stream = parsePresencePath(opts.path, path);
    if (stream === undefined) return status(404, "not found");
    if (req.method !== "GET") return status(422, "use GET");
    if (!authorized(req, opts.key)) {
      log.warn("API request rejected: bad or missing key", { path });
      return status(401, "unauthorized");
    }
    if (stream === null) return status(404, "bad stream name encoding");
    if (!deps.broker.persistent) return status(501, "presence needs a broker");
    try {
      const info = await deps.broker.presenceInfo(stream);
      const body: Record<string, unknown> = { type: "info", total: info.total };
      if (info.records.length > 0) body.records = info.records;
      return Response.json(body);
    } catch (err) {
      log.error("API presence lookup failed", { stream, error: err });
      return status(501, "presence lookup failed");
    }
  };
}

async function publish(req: Request, opts: ApiOptions, deps: ApiDeps): Promise<Response> {
  const length = Number(req.headers.get("content-length") ?? "0");
  if (length > opts.maxBodySize) return status(413, "body too large");
  let body: string;
  try {
    body = await req.text();
  } catch {
    return status(422, "failed to read body");
  }
  if (body.length > opts.maxBodySize) return status(413, "body too large");
  try {
    await deps.publisher.handleBroadcast(body, { fanout: false });
  } catch (err) {
    if (err instanceof InvalidBroadcastError) {
      opts.logger.warn("API publish rejected: malformed body", {
        error: err.message,
        body: body.slice(0, 200),
      });
      return status(422, err.message);
    }
    opts.logger.error("API publish failed", { error: err });
    return status(501, "publish failed");
  }
  return new Response(null, { status: 201 });
}

function authorized(req: Request, key: string): boolean {
  if (!key) return true;
  return timingSafeEqual(req.headers.get("authorization") ?? "", `Bearer ${key}`);
}

function status(code: number, error: string): Response {
  return Response.json({ error }, { status: code });
}
