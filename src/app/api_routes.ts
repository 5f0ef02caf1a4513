import { type ApiDeps, createApiHandler } from "../api/api_handler.ts";
import type { Config } from "../config/options.ts";
import type { Logger } from "../logger/logger.ts";
import { prefixRoute, type RouteHandler } from "../server/server.ts";

export interface ApiMount {
  /** A dedicated port, or 0 for the main server. */
  port: number;
  /** Routes for the main server's table. */
  routes: Map<string, RouteHandler>;
  /** A handler for a dedicated listener. */
  handler: Deno.ServeHandler;
}

/**
 * The REST API mount, or undefined when it stays off: it is only served when protected one way
 * or another (a key, a dedicated port) or explicitly public (--public, --api_secret=none).
 */
export function apiRoutes(
  config: Config,
  key: string,
  deps: ApiDeps,
  logger: Logger,
): ApiMount | undefined {
  const enabled = key !== "" || config.api_port > 0 || config.public ||
    config.api_secret === "none";
  if (!enabled) return undefined;
  const base = config.api_path.replace(/\/+$/, "");
  const route = createApiHandler({
    path: base,
    key,
    maxBodySize: 16 * 1024 * 1024,
    logger: logger.child({ context: "api" }),
  }, deps);
  const routes = new Map<string, RouteHandler>([[`${base}/*`, route]]);
  return {
    port: config.api_port,
    routes,
    handler: (req, info) => {
      const r = prefixRoute(routes, new URL(req.url).pathname);
      if (!r) return new Response("not found\n", { status: 404 });
      return r(req, (info.remoteAddr as Deno.NetAddr).hostname ?? "");
    },
  };
}
