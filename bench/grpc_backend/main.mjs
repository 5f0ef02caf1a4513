// The fake application backend of the RPC storm's gRPC variant, run with the system `node`:
// an AnyCable gRPC backend (`anycable.RPC` from proto/rpc.proto) with the answers of
// bench/rpc_backend.ts. It accepts every connection (welcome transmission) and confirms every
// subscription, streaming from the identifier's `stream_name`. It runs in its own process.
//
//   node bench/grpc_backend/main.mjs --grpc_port=50051 --port=8092 [--server=http2|grpc-js]
//
// gRPC on 127.0.0.1:<grpc_port>; a small HTTP side port <port> answers `GET /health` (once the
// gRPC port is bound and warmed up, see warmUp) and `GET /stats`: the calls answered so far, by
// method (connect, command, disconnect), which the runner checks.
//
// `--server=http2` (the default) serves the calls straight from node:http2 with protobufjs
// messages: a fast fake backend, as the HTTP variant's is, so that the scenario measures
// Cableway's gRPC client and not the backend. `--server=grpc-js` serves them with
// @grpc/grpc-js, a real application's gRPC server: it costs ~190 µs of CPU per call here (a
// bare node:http2 server about half), which on the client's core caps the storm at the
// backend. Both pinned in package.json next to this file. Under Node rather than Deno:
// grpc-js's server runs under Deno 2.9.6's node:http2 at about the same CPU per call, but that
// process aborted on an nghttp2 assertion (find_stream_on_goaway_func) when a client closed
// its connection. Channelz (per-call bookkeeping for diagnostics) is off.
import * as http from "node:http";
import * as http2 from "node:http2";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const grpcPort = arg("grpc_port", 50051);
const port = arg("port", 8092);
const serverImpl = process.argv.find((x) => x.startsWith("--server="))?.slice(9) ?? "http2";

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

/** The answers, shared by both servers. */
const answers = {
  connect() {
    calls.connect++;
    return {
      status: 1,
      identifiers: `{"user":${++connections}}`,
      transmissions: WELCOME,
    };
  },
  command(request) {
    calls.command++;
    const { command, identifier } = request;
    if (command !== "subscribe") return { status: 1 };
    const id = String(identifier ?? "");
    let stream = "";
    try {
      stream = String(JSON.parse(id).stream_name ?? "");
    } catch {
      // no stream
    }
    if (!stream) return { status: 2, error_msg: "no stream_name" };
    return {
      status: 1,
      streams: [stream],
      transmissions: [
        JSON.stringify({ identifier: id, type: "confirm_subscription" }),
      ],
    };
  },
  disconnect() {
    calls.disconnect++;
    return { status: 1 };
  },
};

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(definition.anycable.RPC.service, {
  Connect: (_call, cb) => cb(null, answers.connect()),
  Command: (call, cb) => cb(null, answers.command(call.request)),
  Disconnect: (_call, cb) => cb(null, answers.disconnect()),
});

/** The same service straight on node:http2 (`--server=http2`). */
function startHttp2(onListening) {
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  const types = {
    "/anycable.RPC/Connect": [
      root.lookupType("anycable.ConnectionRequest"),
      root.lookupType("anycable.ConnectionResponse"),
      () => answers.connect(),
    ],
    "/anycable.RPC/Command": [
      root.lookupType("anycable.CommandMessage"),
      root.lookupType("anycable.CommandResponse"),
      (req) => answers.command(req),
    ],
    "/anycable.RPC/Disconnect": [
      root.lookupType("anycable.DisconnectRequest"),
      root.lookupType("anycable.DisconnectResponse"),
      () => answers.disconnect(),
    ],
  };
  const h2 = http2.createServer();
  h2.on("stream", (stream, headers) => {
    const route = types[headers[":path"]];
    if (!route) {
      stream.respond({
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": "12",
      }, {
        endStream: true,
      });
      return;
    }
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const request = route[0].toObject(
        route[0].decode(buf.subarray(5, 5 + buf.readUInt32BE(1))),
        {
          longs: Number,
          enums: Number,
        },
      );
      const body = route[1].encode(route[1].fromObject(route[2](request)))
        .finish();
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
        waitForTrailers: true,
      });
      stream.on(
        "wantTrailers",
        () => stream.sendTrailers({ "grpc-status": "0" }),
      );
      stream.end(frame);
    });
    stream.on("error", () => {});
  });
  h2.on("connection", (socket) => socket.setNoDelay(true));
  h2.on("sessionError", () => {});
  h2.listen(grpcPort, "127.0.0.1", () => onListening(null));
  h2.on("error", (err) => onListening(err));
}

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

const listen = serverImpl === "grpc-js"
  ? (cb) =>
    server.bindAsync(
      `127.0.0.1:${grpcPort}`,
      grpc.ServerCredentials.createInsecure(),
      cb,
    )
  : startHttp2;
listen(
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
