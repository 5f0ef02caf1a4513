import type { Config } from "../config/options.ts";
import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { RouteHandler } from "../server/server.ts";

/** HTTP routes of the non-WebSocket transports (SSE, long polling), keyed by path. */
export function createTransportRoutes(
  _config: Config,
  _node: Node,
  _logger: Logger,
): Map<string, RouteHandler> {
  return new Map();
}
