/**
 * An HTTP RPC backend in its own process (so a test can kill -9 it): accepts every connection
 * with a welcome, confirms every subscription, and prints one JSON line per call to stdout:
 * `{"method":"connect","sid":"..."}`.
 *
 *   deno run --allow-net tests/support/http_rpc_backend_main.ts <port>
 */
const port = Number(Deno.args[0]);
const encoder = new TextEncoder();

Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.log('{"listening":true}') },
  async (req) => {
    const method = new URL(req.url).pathname.split("/").pop() ?? "";
    const sid = req.headers.get("x-anycable-meta-sid") ?? "";
    const body = await req.json();
    Deno.stdout.writeSync(encoder.encode(JSON.stringify({ method, sid }) + "\n"));
    if (method === "connect") {
      return Response.json({
        status: 1,
        identifiers: JSON.stringify({ sid }),
        transmissions: [JSON.stringify({ type: "welcome", sid })],
      });
    }
    if (method === "command" && body.command === "subscribe") {
      return Response.json({
        status: 1,
        streams: ["s"],
        transmissions: [
          JSON.stringify({ identifier: body.identifier, type: "confirm_subscription" }),
        ],
      });
    }
    return Response.json({ status: 1 });
  },
);
