/**
 * `--http_broadcast_cors`: CORS headers on the HTTP broadcast endpoint, so a browser page can
 * publish; `--allowed_origins` (when given) lists the origins allowed to.
 */
import { corsHeaders, preflightResponse } from "../transport/cors.ts";

export function withBroadcastCors(
  handle: (req: Request) => Promise<Response>,
  allowedOrigins: string[],
): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method === "OPTIONS") {
      return preflightResponse(req, allowedOrigins, {
        methods: ["POST", "OPTIONS"],
        allowHeaders: ["Authorization", "Content-Type"],
      });
    }
    const cors = corsHeaders(req, allowedOrigins);
    if (!cors) return new Response("origin not allowed\n", { status: 403 });
    const res = await handle(req);
    const headers = new Headers(res.headers);
    for (const [k, v] of cors) headers.set(k, v);
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };
}
