/**
 * The fast fake application backend of the RPC storm: an AnyCable HTTP RPC endpoint that
 * accepts every connection and confirms every subscription, streaming from the identifier's
 * `stream_name`. It runs in its own process, and Cableway and the raw baseline call the same one.
 *
 *   deno run --allow-net bench/rpc_backend.ts --port=8091
 *
 * `POST /_anycable/connect`, `/_anycable/command`, `/_anycable/disconnect`; `GET /health`;
 * `GET /stats`: the calls answered so far, by method (the runner checks that both servers made
 * the calls the scenario implies).
 */

const portArg = Deno.args.find((a) => a.startsWith("--port="));
const port = portArg ? Number(portArg.slice("--port=".length)) : 8091;

let connections = 0;
const calls: Record<string, number> = { connect: 0, command: 0, disconnect: 0 };
const json = (v: unknown) =>
  new Response(JSON.stringify(v), { headers: { "content-type": "application/json" } });

async function handle(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  if (pathname === "/health") return new Response("OK");
  if (pathname === "/stats") return json(calls);
  if (req.method !== "POST") return new Response("not found", { status: 404 });
  const method = pathname.slice(pathname.lastIndexOf("/") + 1);
  if (method in calls) calls[method]++;
  let body: Record<string, unknown>;
  try {
    body = await req.json();
  } catch {
    return new Response("bad json", { status: 400 });
  }
  if (method === "connect") {
    return json({
      status: 1,
      identifiers: `{"user":${++connections}}`,
      transmissions: ['{"type":"welcome"}'],
    });
  }
  if (method === "command") {
    const identifier = String(body.identifier ?? "");
    if (body.command !== "subscribe") return json({ status: 1 });
    let stream = "";
    try {
      stream = String(JSON.parse(identifier).stream_name ?? "");
    } catch {
      // no stream
    }
    if (!stream) return json({ status: 2, error_msg: "no stream_name" });
    return json({
      status: 1,
      streams: [stream],
      transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
    });
  }
  if (method === "disconnect") return json({ status: 1 });
  return new Response("not found", { status: 404 });
}

Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, handle);
