import type { Config } from "../config/options.ts";
import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { RouteHandler } from "../server/server.ts";
import { createLongPollHandler } from "./long_poll.ts";
import { createSseHandler, SSE_MAX_BODY_SIZE } from "./sse.ts";

/**
 * HTTP routes of the non-WebSocket transports, keyed by exact path: SSE at --sse_path when
 * --sse, long polling at --poll_path when --poll. Each call builds fresh transport state.
 */
export function createTransportRoutes(
  config: Config,
  node: Node,
  logger: Logger,
): Map<string, RouteHandler> {
  const routes = new Map<string, RouteHandler>();
  if (config.sse) {
    routes.set(
      config.sse_path,
      createSseHandler(node, {
        allowedOrigins: config.allowed_origins,
        maxBodySize: SSE_MAX_BODY_SIZE,
        logger: logger.child({ transport: "sse" }),
      }),
    );
  }
  if (config.poll) {
    routes.set(
      config.poll_path,
      createLongPollHandler(node, {
        allowedOrigins: config.allowed_origins,
        pollInterval: config.poll_interval,
        flushInterval: config.poll_flush_interval,
        keepaliveTimeout: config.poll_keepalive_timeout,
        maxRequestSize: config.poll_max_request_size,
        logger: logger.child({ transport: "poll" }),
      }),
    );
  }
  if (config.sse && config.poll && config.sse_path === config.poll_path) {
    logger.warn("--sse_path and --poll_path are the same: long polling wins", {
      path: config.poll_path,
    });
  }
  return routes;
}
