import type { HttpBroadcaster } from "../broadcast/http_broadcaster.ts";
import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import { handleWebSocket, type WsOptions } from "../transport/ws.ts";
import { urlPath } from "../util/url_path.ts";

/** Something that can answer one HTTP route (SSE, long polling, metrics come this way). */
export type RouteHandler = (req: Request, remoteAddr: string) => Response | Promise<Response>;

export interface RoutesOptions {
  wsPaths: string[];
  healthPath: string;
  ws: WsOptions;
  node: Node;
  /** Mounted on this server when set. */
  broadcast?: { path: string; broadcaster: Pick<HttpBroadcaster, "handle"> };
  extra?: Map<string, RouteHandler>;
  logger: Logger;
}

/** Matches a configured path: exact, `prefix*`, or `{param}` segments. */
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern.endsWith("*")) return path.startsWith(pattern.slice(0, -1));
  if (!pattern.includes("{")) return pattern === path;
  const a = pattern.split("/");
  const b = path.split("/");
  return a.length === b.length &&
    a.every((seg, i) => (seg.startsWith("{") && seg.endsWith("}") && b[i] !== "") || seg === b[i]);
}

/** The route table of the main server. */
export function createHandler(opts: RoutesOptions): Deno.ServeHandler {
  return (req, info) => {
    const path = urlPath(req.url);
    const remoteAddr = (info.remoteAddr as Deno.NetAddr).hostname ?? "";
    if (opts.wsPaths.some((p) => pathMatches(p, path))) {
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("expected a WebSocket upgrade\n", { status: 426 });
      }
      return handleWebSocket(req, remoteAddr, opts.node, opts.ws);
    }
    if (path === opts.healthPath) return new Response("Success", { status: 200 });
    if (opts.broadcast && path === opts.broadcast.path) {
      return opts.broadcast.broadcaster.handle(req);
    }
    const extra = opts.extra?.get(path) ?? prefixRoute(opts.extra, path);
    if (extra) return extra(req, remoteAddr);
    return new Response("not found\n", { status: 404 });
  };
}

/** The route whose `prefix*` key matches `path` (REST API and Durable Streams mount this way). */
export function prefixRoute(
  routes: Map<string, RouteHandler> | undefined,
  path: string,
): RouteHandler | undefined {
  if (!routes) return undefined;
  for (const [pattern, route] of routes) {
    if (pattern.endsWith("*") && pathMatches(pattern, path)) return route;
  }
  return undefined;
}

/** A handler for a dedicated broadcast port. */
export function createBroadcastHandler(
  path: string,
  broadcaster: Pick<HttpBroadcaster, "handle">,
  healthPath: string,
): Deno.ServeHandler {
  return (req) => {
    const p = urlPath(req.url);
    if (p === path) return broadcaster.handle(req);
    if (p === healthPath) return new Response("Success", { status: 200 });
    return new Response("not found\n", { status: 404 });
  };
}
