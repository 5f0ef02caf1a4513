import type { Logger } from "../logger/logger.ts";
import { declaredSize, discardBody, readBodyLimited } from "../transport/request_body.ts";
import { timingSafeEqual } from "../util/secrets.ts";
import {
  type Broadcaster,
  type BroadcastHandler,
  InvalidBroadcastError,
  NOT_JSON,
} from "./broadcaster.ts";

export interface HttpBroadcasterOptions {
  /** Bearer key; empty = unauthenticated (public mode). */
  key: string;
  /** Largest accepted body, bytes. */
  maxBodySize: number;
  logger: Logger;
}

/**
 * `POST /_broadcast` (docs/protocol.md#http-broadcast). Unlike the reference, an unparsable body is
 * answered 400 (not 201) so publishers learn about their bug.
 */
export class HttpBroadcaster implements Broadcaster {
  readonly name = "http";
  readonly fanout = false;
  readonly #opts: HttpBroadcasterOptions;
  #handler?: BroadcastHandler;

  constructor(opts: HttpBroadcasterOptions) {
    this.#opts = opts;
  }

  start(handler: BroadcastHandler): Promise<void> {
    this.#handler = handler;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#handler = undefined;
    return Promise.resolve();
  }

  async handle(req: Request): Promise<Response> {
    if (req.method !== "POST") return jsonError(422, "use POST");
    if (this.#opts.key) {
      const auth = req.headers.get("authorization") ?? "";
      if (!timingSafeEqual(auth, `Bearer ${this.#opts.key}`)) {
        this.#opts.logger.warn("broadcast rejected: bad or missing key");
        return jsonError(401, "unauthorized");
      }
    }
    const handler = this.#handler;
    if (!handler) return jsonError(503, "shutting down");
    const size = declaredSize(req, this.#opts.maxBodySize);
    if (size === "too large") {
      await discardBody(req);
      return this.#tooLarge();
    }
    // With an exact length, Request.json() takes the body as text straight from the runtime
    // (text() would copy it into a buffer and decode that, one ArrayBuffer per publication for
    // the young-generation GC to sweep).
    if (size === "exact") {
      let value: unknown;
      try {
        value = await req.json();
      } catch (err) {
        if (!(err instanceof SyntaxError)) return jsonError(400, "failed to read body");
        value = NOT_JSON;
      }
      return this.#settle(handler.handleBroadcastValue(value, { fanout: false }), value);
    }
    // No declared length (chunked): read up to the limit and no further.
    let body: string | null;
    try {
      body = await readBodyLimited(req, this.#opts.maxBodySize);
    } catch {
      return jsonError(400, "failed to read body");
    }
    if (body === null) return this.#tooLarge();
    return this.#settle(handler.handleBroadcast(body, { fanout: false }), body);
  }

  #tooLarge(): Response {
    this.#opts.logger.warn("broadcast rejected: body too large", {
      limit: this.#opts.maxBodySize,
    });
    return jsonError(413, "body too large");
  }

  /**
   * The answer once the handler took (201) or refused the publication. Not async: one
   * promise per publication, not an async frame awaiting another.
   */
  #settle(accepted: Promise<void>, body: unknown): Promise<Response> {
    return accepted.then(created, (err) => this.#refused(err, body));
  }

  #refused(err: unknown, body: unknown): Response {
    if (err instanceof InvalidBroadcastError) {
      const text = typeof body === "string"
        ? body
        : body === NOT_JSON
        ? "(not JSON)"
        : JSON.stringify(body) ?? "";
      this.#opts.logger.warn("invalid broadcast", { error: err, body: text.slice(0, 200) });
      return jsonError(400, err.message);
    }
    this.#opts.logger.error("broadcast failed", { error: err });
    return jsonError(501, "broadcast failed");
  }
}

const created = () => new Response(null, { status: 201 });

function jsonError(status: number, error: string): Response {
  return Response.json({ error }, { status });
}
