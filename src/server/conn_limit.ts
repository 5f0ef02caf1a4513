/**
 * `--max-conn`: a request that would open one more client connection (a WebSocket upgrade, an
 * SSE stream, a long-polling session without a poll id) beyond the limit is refused with 503
 * and `Retry-After`, logged and counted; everything else (health, broadcasts, metrics, polls
 * of existing sessions) passes.
 */
import type { Logger } from "../logger/logger.ts";

export interface ConnLimitOptions {
  max: number;
  /** Client connections open now. */
  active: () => number;
  /** Whether the request opens a new client connection. */
  opensConnection: (req: Request, path: string) => boolean;
  logger: Logger;
}

export class ConnLimit {
  /** Connections refused so far. */
  refused = 0;
  readonly #opts: ConnLimitOptions;

  constructor(opts: ConnLimitOptions) {
    this.#opts = opts;
  }

  wrap(handler: Deno.ServeHandler): Deno.ServeHandler {
    return (req, info) => {
      const { max, active, opensConnection, logger } = this.#opts;
      if (max > 0 && active() >= max && opensConnection(req, new URL(req.url).pathname)) {
        this.refused++;
        logger.warn("connection refused: --max-conn reached", { max });
        return new Response(`too many connections (limit ${max})\n`, {
          status: 503,
          headers: { "retry-after": "1" },
        });
      }
      return handler(req, info);
    };
  }
}
