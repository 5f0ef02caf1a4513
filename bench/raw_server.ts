/**
 * The raw baseline: the smallest Deno WebSocket fan-out server that accepts the bench client's
 * traffic. It answers an Action Cable subscribe with a confirm, and `POST /_broadcast`
 * `{"stream":"s","data":"<json>"}` with `{"identifier":<id>,"message":<parsed data>}` to every
 * socket subscribed to `s`. Nothing else: no welcome, no pings, no auth, no queues.
 *
 *   deno run --allow-net bench/raw_server.ts --port=8080
 */

const portArg = Deno.args.find((a) => a.startsWith("--port="));
const port = portArg ? Number(portArg.slice("--port=".length)) : 8080;
const PROTOCOLS = ["actioncable-v1-json", "actioncable-v1-ext-json"];

/** stream -> socket -> identifier */
const streams = new Map<string, Map<WebSocket, string>>();

function subscribe(ws: WebSocket, raw: string, joined: string[]): void {
  let cmd: { command?: string; identifier?: string };
  try {
    cmd = JSON.parse(raw);
  } catch {
    return;
  }
  if (cmd.command !== "subscribe" || typeof cmd.identifier !== "string") return;
  let stream: unknown;
  try {
    stream = JSON.parse(cmd.identifier).stream_name;
  } catch {
    return;
  }
  if (typeof stream !== "string") return;
  let subs = streams.get(stream);
  if (!subs) streams.set(stream, subs = new Map());
  subs.set(ws, cmd.identifier);
  joined.push(stream);
  ws.send(`{"identifier":${JSON.stringify(cmd.identifier)},"type":"confirm_subscription"}`);
}

function upgrade(req: Request): Response {
  const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const protocol = PROTOCOLS.find((p) => offered.includes(p));
  const { socket, response } = Deno.upgradeWebSocket(req, protocol ? { protocol } : {});
  const joined: string[] = [];
  socket.onmessage = (e) => {
    if (typeof e.data === "string") subscribe(socket, e.data, joined);
  };
  socket.onclose = () => {
    for (const s of joined) streams.get(s)?.delete(socket);
  };
  socket.onerror = () => {};
  return response;
}

function publish(stream: string, data: string): void {
  const subs = streams.get(stream);
  if (!subs) return;
  let message: unknown;
  try {
    message = JSON.parse(data) ?? data;
  } catch {
    message = data;
  }
  const body = JSON.stringify(message);
  const frames = new Map<string, string>();
  for (const [ws, id] of subs) {
    if (ws.readyState !== WebSocket.OPEN) continue;
    let frame = frames.get(id);
    if (frame === undefined) {
      frame = `{"identifier":${JSON.stringify(id)},"message":${body}}`;
      frames.set(id, frame);
    }
    ws.send(frame);
  }
}

async function broadcast(req: Request): Promise<Response> {
  try {
    const body = await req.json();
    for (const p of Array.isArray(body) ? body : [body]) {
      if (p && typeof p.stream === "string" && typeof p.data === "string") {
        publish(p.stream, p.data);
      }
    }
  } catch {
    // like the reference: unparseable bodies are still accepted
  }
  return new Response(null, { status: 201 });
}

Deno.serve({
  port,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`raw server listening on ${port}`),
}, (req) => {
  const { pathname } = new URL(req.url);
  if (pathname === "/cable") return upgrade(req);
  if (pathname === "/_broadcast" && req.method === "POST") return broadcast(req);
  if (pathname === "/health") return new Response("OK");
  return new Response("not found", { status: 404 });
});
