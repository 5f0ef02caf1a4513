/**
 * The raw baseline: the smallest Deno WebSocket fan-out server that accepts the bench client's
 * traffic. It answers an Action Cable subscribe with a confirm, and `POST /_broadcast`
 * `{"stream":"s","data":"<json>"}` with `{"identifier":<id>,"message":<parsed data>}` to every
 * socket subscribed to `s`. Nothing else by default: no welcome, no pings, no auth, no queues.
 *
 * With `--welcome` it also sends `{"type":"welcome","sid":"<n>"}` when a socket opens (no RPC):
 * the one frame every Action Cable server sends before anything else, so the bench can show
 * what it costs a connection storm.
 *
 * With `--pings` it also pings every open socket every 3 seconds (`{"type":"ping","message":<unix
 * seconds>}`), spread over the interval by the time each socket opened, as an Action Cable server
 * must (a client that hears no ping for two intervals reconnects): what those frames cost a
 * many-streams broadcast load.
 *
 * With `--rpc=<url>` it makes the calls an AnyCable server makes for the same traffic, to the
 * same backend: `POST <url>/connect` when a socket opens (its transmissions are sent, a
 * rejection closes the socket), `POST <url>/command` for every subscribe (streams and
 * transmissions from the answer) and `POST <url>/disconnect` when it closes, at most `--rpc_concurrency` calls in flight. Messages that
 * arrive before the connect answer wait for it.
 *
 *   deno run --allow-net bench/raw_server.ts --port=8080 [--welcome] [--pings] [--rpc=http://127.0.0.1:8091/_anycable]
 */

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const port = Number(arg("port") ?? 8080);
const rpcUrl = arg("rpc")?.replace(/\/+$/, "");
const rpcConcurrency = Math.max(1, Number(arg("rpc_concurrency") ?? 28));
const welcome = Deno.args.includes("--welcome");
const pings = Deno.args.includes("--pings");
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

/**
 * `--pings`: one 10 ms ticker and 300 buckets; a socket joins the bucket of the tick it opened
 * at, so each is pinged every 3 s (300 ticks) and the pings are spread as the opens were.
 */
const PING_TICKS = 300;
const pingBuckets: Set<WebSocket>[] = Array.from({ length: PING_TICKS }, () => new Set());
let pingTick = 0;
if (pings) {
  setInterval(() => {
    pingTick = (pingTick + 1) % PING_TICKS;
    const due = pingBuckets[pingTick];
    if (due.size === 0) return;
    const frame = `{"type":"ping","message":${Math.floor(Date.now() / 1000)}}`;
    for (const ws of due) ws.send(frame);
  }, 10);
}

let rpcInFlight = 0;
const rpcWaiting: (() => void)[] = [];
let sids = 0;

/** One RPC call, at most rpcConcurrency at a time; null when it failed. */
async function rpc(
  method: string,
  sid: string,
  body: unknown,
): Promise<Record<string, unknown> | null> {
  // a freed slot passes straight to the next waiter, so never more than rpcConcurrency run
  if (rpcInFlight < rpcConcurrency) rpcInFlight++;
  else await new Promise<void>((r) => rpcWaiting.push(r));
  try {
    const res = await fetch(`${rpcUrl}/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-anycable-meta-sid": sid },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return res.status === 200 ? JSON.parse(text) : null;
  } catch {
    return null;
  } finally {
    const next = rpcWaiting.shift();
    if (next) next();
    else rpcInFlight--;
  }
}

function transmit(ws: WebSocket, answer: Record<string, unknown>): void {
  const list = answer.transmissions;
  if (!Array.isArray(list)) return;
  for (const t of list) if (typeof t === "string" && ws.readyState === WebSocket.OPEN) ws.send(t);
}

/** The RPC flavour of a connection: connect on open, command for every subscribe. */
function rpcSocket(ws: WebSocket, env: unknown, joined: string[]): void {
  const sid = `s${++sids}`;
  let identifiers = "";
  let chain: Promise<unknown> = new Promise<void>((resolve) => {
    ws.onopen = async () => {
      const answer = await rpc("connect", sid, { env });
      if (!answer || answer.status !== 1) {
        ws.close();
      } else {
        identifiers = String(answer.identifiers ?? "");
        transmit(ws, answer);
      }
      resolve();
    };
  });
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") return;
    const raw = e.data;
    chain = chain.then(async () => {
      let cmd: { command?: string; identifier?: string };
      try {
        cmd = JSON.parse(raw);
      } catch {
        return;
      }
      if (cmd.command !== "subscribe" || typeof cmd.identifier !== "string") return;
      const answer = await rpc("command", sid, {
        command: cmd.command,
        identifier: cmd.identifier,
        connection_identifiers: identifiers,
        data: "",
        env,
      });
      if (!answer || answer.status !== 1 || ws.readyState !== WebSocket.OPEN) return;
      for (const stream of Array.isArray(answer.streams) ? answer.streams : []) {
        if (typeof stream !== "string") continue;
        let subs = streams.get(stream);
        if (!subs) streams.set(stream, subs = new Map());
        subs.set(ws, cmd.identifier);
        joined.push(stream);
      }
      transmit(ws, answer);
    });
  };
}

function upgrade(req: Request): Response {
  const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const protocol = PROTOCOLS.find((p) => offered.includes(p));
  // the request is gone once upgraded: what the RPC calls carry is read first
  const env = rpcUrl
    ? { url: req.url, headers: { "sec-websocket-protocol": offered.join(", ") } }
    : undefined;
  const { socket, response } = Deno.upgradeWebSocket(req, protocol ? { protocol } : {});
  const joined: string[] = [];
  if (rpcUrl) {
    rpcSocket(socket, env, joined);
  } else {
    if (welcome) socket.onopen = () => socket.send(`{"type":"welcome","sid":"s${++sids}"}`);
    socket.onmessage = (e) => {
      if (typeof e.data === "string") subscribe(socket, e.data, joined);
    };
  }
  if (pings) {
    const bucket = pingBuckets[pingTick];
    socket.addEventListener("open", () => bucket.add(socket), { once: true });
    socket.addEventListener("close", () => bucket.delete(socket), { once: true });
  }
  socket.onclose = () => {
    for (const s of joined) streams.get(s)?.delete(socket);
    if (rpcUrl) rpc("disconnect", "", { identifiers: "", subscriptions: [], env: {} });
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
