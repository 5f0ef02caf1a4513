// A misbehaving gRPC backend for fault tests, run with the system `node` (a separate process,
// so `kill -9` is a real crash). It listens on 127.0.0.1 (argv[2] = port, 0 = any; with
// argv[3]/argv[4] = PEM key/certificate paths it serves TLS with ALPN h2 instead) and takes
// one JSON command per stdin line; it reports on stdout, one JSON line each:
//   {"event":"listening","port":N}  {"event":"mode","mode":M} (ack)  {"event":"stream"}
//   {"event":"conn"}
// Modes, applied to each new HTTP/2 stream:
//   ok           answer Connect/Command/Disconnect with status SUCCESS (+ a welcome)
//   goaway       answer, and close the session gracefully (GOAWAY) on its 2nd stream
//   goawaystall  GOAWAY (covering the stream) on each stream, which is then never answered
//   goaway2      a two-step graceful shutdown on the 3rd stream of a session, as gRPC servers do
//                it: GOAWAY with the largest stream id, answer, then GOAWAY with the last
//                stream id seen and close once the accepted streams are done
//   rst          reset each stream with a rotating error code (a storm when many calls come)
//   stall        never answer
//   half         send the response headers and half a message, then never finish
//   slow         answer after 150 ms
// and applied to each new TCP connection (raw bytes instead of HTTP/2):
//   silent       accept and never send a byte
//   garbage      random bytes
//   halfframe    a SETTINGS frame, then 6 bytes of a frame header, then close
//   hugeframe    a SETTINGS frame, then a frame header announcing 16 MiB of payload
//   badhpack     SETTINGS, then a HEADERS frame whose HPACK block indexes past the tables
// Switching to a raw mode drops the open HTTP/2 sessions (so the client dials again).
// Command {"shutdown":true}: close every session gracefully (GOAWAY), stop listening, exit 0.
import * as http2 from "node:http2";
import * as net from "node:net";
import * as readline from "node:readline";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

const RAW = new Set(["silent", "garbage", "halfframe", "hugeframe", "badhpack"]);
let mode = "ok";
let rstIndex = 0;
const RST_CODES = [7, 8, 2, 11, 1]; // REFUSED, CANCEL, INTERNAL, ENHANCE_YOUR_CALM, PROTOCOL
const sessions = new Set();
const rawSockets = new Set();

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// Protobuf: field 1 (status) = SUCCESS, 2 (identifiers) = "{}", 3 (transmissions) = welcome.
function str(field, text) {
  const bytes = Buffer.from(text);
  return Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), bytes]);
}
const CONNECT_OK = Buffer.concat([
  Buffer.from([0x08, 0x01]),
  str(2, "{}"),
  str(3, JSON.stringify({ type: "welcome" })),
]);
const STATUS_OK = Buffer.from([0x08, 0x01]);

function grpcFrame(message) {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function answer(stream, path) {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(grpcFrame(path.endsWith("/Connect") ? CONNECT_OK : STATUS_OK));
}

const [keyPath, certPath] = process.argv.slice(3);
const h2 = keyPath
  ? http2.createSecureServer({ key: readFileSync(keyPath), cert: readFileSync(certPath) })
  : http2.createServer();
h2.on("session", (session) => {
  sessions.add(session);
  session.on("close", () => sessions.delete(session));
  session.on("error", () => {});
  session.streams = 0;
});
h2.on("stream", (stream, headers) => {
  say({ event: "stream" });
  stream.on("error", () => {});
  const session = stream.session;
  session.streams++;
  const path = String(headers[":path"]);
  const now = mode;
  stream.on("data", () => {});
  stream.on("end", () => {
    switch (now) {
      case "ok":
        return answer(stream, path);
      case "slow":
        return setTimeout(() => answer(stream, path), 150);
      case "goaway":
        answer(stream, path);
        if (session.streams >= 2 && !session.closed) session.close();
        return;
      case "goaway2":
        answer(stream, path);
        if (session.streams === 3 && !session.closed && !session.destroyed) {
          session.goaway(0, 2 ** 31 - 1);
          setTimeout(() => {
            if (session.closed || session.destroyed) return;
            session.goaway(0, stream.id);
            session.close();
          }, 5);
        }
        return;
      case "goawaystall":
        if (!session.closed && !session.destroyed) session.goaway(0, 0);
        return;
      case "rst":
        return stream.close(RST_CODES[rstIndex++ % RST_CODES.length]);
      case "half": {
        stream.respond({ ":status": 200, "content-type": "application/grpc" });
        const frame = grpcFrame(CONNECT_OK);
        return stream.write(frame.subarray(0, 8));
      }
      case "stall":
      default:
        return;
    }
  });
});

const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function raw(socket) {
  switch (mode) {
    case "silent":
      return;
    case "garbage":
      return socket.write(randomBytes(64 + Math.floor(Math.random() * 200)));
    case "halfframe":
      socket.write(Buffer.concat([SETTINGS, Buffer.from([0, 0, 40, 1, 4, 0])]));
      return setTimeout(() => socket.destroy(), 20);
    case "hugeframe":
      return socket.write(
        Buffer.concat([
          SETTINGS,
          Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]),
          randomBytes(64),
        ]),
      );
    case "badhpack":
      // HEADERS on stream 1, END_HEADERS|END_STREAM, block: indexed field 126 (no such entry).
      return setTimeout(() => {
        if (!socket.destroyed) {
          socket.write(Buffer.concat([SETTINGS, Buffer.from([0, 0, 1, 1, 5, 0, 0, 0, 1, 0xfe])]));
        }
      }, 30);
  }
}

const server = keyPath ? h2 : net.createServer((socket) => {
  say({ event: "conn" });
  socket.on("error", () => {});
  if (RAW.has(mode)) {
    rawSockets.add(socket);
    socket.on("close", () => rawSockets.delete(socket));
    return raw(socket);
  }
  h2.emit("connection", socket);
});

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  say({ event: "listening", port: server.address().port });
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.shutdown) {
    server.close();
    for (const s of sessions) s.close();
    for (const socket of rawSockets) socket.destroy();
    const done = () => sessions.size === 0 ? process.exit(0) : setTimeout(done, 10);
    setTimeout(() => process.exit(0), 2000); // a stalled stream would hold the close forever
    return done();
  }
  mode = cmd.mode;
  // A raw mode applies to new connections: drop the open ones so the client dials again.
  if (RAW.has(mode)) { for (const s of sessions) s.destroy(); }
  say({ event: "mode", mode });
});
