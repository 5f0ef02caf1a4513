/** The chat page's routes, mounted on Cableway's main server next to /cable. */
import type { RouteHandler } from "../src/server/server.ts";
import { bundleClient } from "./bundle.ts";

const CLIENT = new URL("./client/", import.meta.url);

function asset(body: string, type: string): RouteHandler {
  return (req) =>
    req.method === "GET" || req.method === "HEAD"
      ? new Response(req.method === "HEAD" ? null : body, {
        headers: { "content-type": type, "cache-control": "no-cache" },
      })
      : new Response("GET only\n", { status: 405 });
}

export async function createPageRoutes(): Promise<Map<string, RouteHandler>> {
  const [html, css, js] = await Promise.all([
    Deno.readTextFile(new URL("index.html", CLIENT)),
    Deno.readTextFile(new URL("chat.css", CLIENT)),
    bundleClient(),
  ]);
  return new Map([
    ["/", asset(html, "text/html; charset=utf-8")],
    ["/demo/chat.css", asset(css, "text/css; charset=utf-8")],
    ["/demo/chat.js", asset(js, "text/javascript; charset=utf-8")],
  ]);
}
