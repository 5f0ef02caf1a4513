// The fake application backend of the RPC storm's gRPC variant, run with the system `node`:
// an AnyCable gRPC backend (`anycable.RPC` from proto/rpc.proto, served by @grpc/grpc-js and
// @grpc/proto-loader, pinned in package.json next to this file) with the answers of
// bench/rpc_backend.ts. It accepts every connection (welcome transmission) and confirms every
// subscription, streaming from the identifier's `stream_name`. It runs in its own process.
//
//   node bench/grpc_backend/main.mjs --grpc_port=50051 --port=8092
//
// gRPC on 127.0.0.1:<grpc_port>; a small HTTP side port <port> answers `GET /health` (once the
// gRPC port is bound and warmed up, see warmUp) and `GET /stats`: the calls answered so far, by method (connect, command,
// disconnect), which the runner checks. Under Node rather than Deno: grpc-js's server runs
// under Deno 2.9.6's node:http2 at about the same CPU per call (~250 µs here), but that
// process aborted on an nghttp2 assertion (find_stream_on_goaway_func) when a client closed
// its connection. Channelz (per-call bookkeeping for diagnostics) is off.
import * as http from "node:http";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const grpcPort = arg("grpc_port", 50051);
const port = arg("port", 8092);

const PROTO_PATH = fileURLToPath(
  new URL("../../proto/rpc.proto", import.meta.url),
);
const definition = grpc.loadPackageDefinition(
  protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: false,
    arrays: false,
    objects: false,
  }),
);

let connections = 0;
const calls = { connect: 0, command: 0, disconnect: 0 };
const WELCOME = ['{"type":"welcome"}'];

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(definition.anycable.RPC.service, {
  Connect: (_call, cb) => {
    calls.connect++;
    cb(null, {
      status: 1,
      identifiers: `{"user":${++connections}}`,
      transmissions: WELCOME,
    });
  },
  Command: (call, cb) => {
    calls.command++;
    const { command, identifier } = call.request;
    if (command !== "subscribe") return cb(null, { status: 1 });
    const id = String(identifier ?? "");
    let stream = "";
    try {
      stream = String(JSON.parse(id).stream_name ?? "");
    } catch {
      // no stream
    }
    if (!stream) return cb(null, { status: 2, error_msg: "no stream_name" });
    cb(null, {
      status: 1,
      streams: [stream],
      transmissions: [
        JSON.stringify({ identifier: id, type: "confirm_subscription" }),
      ],
    });
  },
  Disconnect: (_call, cb) => {
    calls.disconnect++;
    cb(null, { status: 1 });
  },
});

/**
 * A fresh Node process runs grpc-js's server code cold (interpreted) for its first thousands
 * of calls, at about twice the CPU per call: the backend is not what is measured, so it makes
 * `WARMUP` calls of each kind to itself (`IN_FLIGHT` at a time, as Cableway does) before it
 * reports healthy, and then forgets them.
 */
const WARMUP = 3000;
const IN_FLIGHT = 28;

async function warmUp() {
  const client = new definition.anycable.RPC(
    `127.0.0.1:${grpcPort}`,
    grpc.credentials.createInsecure(),
  );
  const env = {
    url: "http://127.0.0.1/cable",
    headers: { "REMOTE_ADDR": "127.0.0.1" },
  };
  const identifier = JSON.stringify({
    channel: "BenchChannel",
    stream_name: "warmup",
  });
  const unary = (method, req) =>
    new Promise((resolve, reject) =>
      client[method](req, (err, res) => err ? reject(err) : resolve(res))
    );
  let left = WARMUP;
  const worker = async () => {
    while (left-- > 0) {
      const c = await unary("Connect", { env });
      await unary("Command", {
        command: "subscribe",
        identifier,
        connection_identifiers: c.identifiers,
        env,
      });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  client.close();
  connections = 0;
  for (const k of Object.keys(calls)) calls[k] = 0;
}

server.bindAsync(
  `127.0.0.1:${grpcPort}`,
  grpc.ServerCredentials.createInsecure(),
  async (err) => {
    if (err) {
      console.error(
        `grpc backend: cannot bind 127.0.0.1:${grpcPort}: ${err.message}`,
      );
      process.exit(1);
    }
    try {
      await warmUp();
    } catch (e) {
      console.error(`grpc backend: warm-up failed: ${e.message}`);
      process.exit(1);
    }
    http.createServer((req, res) => {
      if (req.url === "/health") return res.end("OK");
      if (req.url === "/stats") {
        res.setHeader("content-type", "application/json");
        return res.end(JSON.stringify(calls));
      }
      res.statusCode = 404;
      res.end("not found");
    }).listen(port, "127.0.0.1");
  },
);

process.on("SIGTERM", () => {
  server.forceShutdown();
  process.exit(0);
});
