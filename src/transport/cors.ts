import { originAllowed } from "./origin.ts";

/**
 * CORS for the HTTP transports (SSE, long polling). `allowed` is --allowed_origins: empty
 * means any origin (`Access-Control-Allow-Origin: *`, no credentials); otherwise an allowed
 * request Origin is echoed with credentials allowed. Returns null when the request's Origin
 * is not allowed (callers answer 403, like the WebSocket origin check of §2.1).
 */
export function corsHeaders(req: Request, allowed: string[]): Headers | null {
  const headers = new Headers();
  if (allowed.length === 0) {
    headers.set("access-control-allow-origin", "*");
    return headers;
  }
  const origin = req.headers.get("origin");
  if (!originAllowed(origin, allowed)) return null;
  headers.set("access-control-allow-origin", origin!);
  headers.set("access-control-allow-credentials", "true");
  headers.set("vary", "Origin");
  return headers;
}

export interface PreflightOptions {
  methods: string[];
  /** Request headers always allowed (more are allowed when the preflight asks for them). */
  allowHeaders: string[];
  /** Response headers a cross-origin script may read. */
  exposeHeaders?: string[];
}

/** Answers an OPTIONS preflight: 200 with the CORS headers, 403 for a refused Origin. */
export function preflightResponse(
  req: Request,
  allowed: string[],
  opts: PreflightOptions,
  extraHeaders: Record<string, string> = {},
): Response {
  const headers = corsHeaders(req, allowed);
  if (!headers) return new Response(null, { status: 403, headers: extraHeaders });
  for (const [k, v] of Object.entries(extraHeaders)) headers.set(k, v);
  headers.set("access-control-allow-methods", opts.methods.join(", "));
  const requested = (req.headers.get("access-control-request-headers") ?? "")
    .split(",").map((h) => h.trim()).filter(Boolean);
  const allowHeaders = [...opts.allowHeaders];
  for (const h of requested) {
    if (!allowHeaders.some((a) => a.toLowerCase() === h.toLowerCase())) allowHeaders.push(h);
  }
  headers.set("access-control-allow-headers", allowHeaders.join(", "));
  if (opts.exposeHeaders?.length) {
    headers.set("access-control-expose-headers", opts.exposeHeaders.join(", "));
  }
  headers.set("access-control-max-age", "600");
  return new Response(null, { status: 200, headers });
}

/** Sets the CORS headers a cross-origin script needs to read `exposed` response headers. */
export function exposeHeaders(headers: Headers, exposed: string[]): void {
  if (exposed.length) headers.set("access-control-expose-headers", exposed.join(", "));
}
