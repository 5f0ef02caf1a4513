/**
 * The fast fake gRPC backend of the RPC storm's gRPC variant (the default): `anycable.RPC`
 * (proto/rpc.proto) with the answers of bench/rpc_backend.ts, served by a minimal HTTP/2 server
 * written for this bench on `Deno.listen`. It accepts every connection (welcome transmission)
 * and confirms every subscription, streaming from the identifier's `stream_name`.
 *
 *   deno run --allow-net bench/grpc_backend_h2.ts --grpc_port=50051 --port=8092
 *
 * Why its own HTTP/2: the storm compares Cableway over gRPC with Cableway over HTTP RPC, whose
 * fake backend (Deno.serve + JSON) costs ~40 µs of CPU per call. Node's http2 module costs ~100
 * µs per call and grpc-js ~190 µs, and the backend shares its core with the load client: with
 * those, the storm measures the backend. This server does what a unary call needs and no more
 * (h2c with prior knowledge, one HPACK decoder per connection, flow control, PING and SETTINGS
 * acknowledged) and answers each call with three frames in one write. Requests are decoded and
 * answers encoded with @bufbuild/protobuf from proto/gen, as a real backend would. The HPACK
 * decoder and frame helpers are Cableway's own (src/rpc/), which its tests check against
 * grpc-js; bench/grpc_backend/main.mjs keeps the node:http2 and grpc-js backends
 * (`CABLEWAY_BENCH_GRPC_BACKEND=node-http2|grpc-js`).
 *
 * gRPC on 127.0.0.1:<grpc_port>; a side port <port> answers `GET /health` (once the gRPC port
 * is bound) and `GET /stats`: the calls answered so far, by method.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CommandMessageSchema,
  CommandResponseSchema,
  ConnectionRequestSchema,
  ConnectionResponseSchema,
  DisconnectRequestSchema,
  DisconnectResponseSchema,
  Status,
} from "../proto/gen/rpc_pb.ts";
import { encodeHeaders, HpackDecoder } from "../src/rpc/hpack.ts";
import {
  encodeFrame,
  encodeSettings,
  encodeWindowUpdate,
  Flag,
  FRAME_HEADER,
  FrameType,
  PREFACE,
  readFrameHeader,
  Setting,
} from "../src/rpc/h2_frames.ts";
import { concatBytes } from "../src/util/concat_bytes.ts";

const arg = (name: string, fallback: number) => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const grpcPort = arg("grpc_port", 50051);
const port = arg("port", 8092);

let connections = 0;
const calls = { connect: 0, command: 0, disconnect: 0 };
const WELCOME = ['{"type":"welcome"}'];

type Answer = (body: Uint8Array) => Uint8Array;

const ROUTES: Record<string, Answer> = {
  "/anycable.RPC/Connect": (body) => {
    calls.connect++;
    fromBinary(ConnectionRequestSchema, body);
    return toBinary(
      ConnectionResponseSchema,
      create(ConnectionResponseSchema, {
        status: Status.SUCCESS,
        identifiers: `{"user":${++connections}}`,
        transmissions: WELCOME,
      }),
    );
  },
  "/anycable.RPC/Command": (body) => {
    calls.command++;
    const req = fromBinary(CommandMessageSchema, body);
    let answer;
    if (req.command !== "subscribe") {
      answer = create(CommandResponseSchema, { status: Status.SUCCESS });
    } else {
      let stream = "";
      try {
        stream = String(JSON.parse(req.identifier).stream_name ?? "");
      } catch {
        // no stream
      }
      answer = stream
        ? create(CommandResponseSchema, {
          status: Status.SUCCESS,
          streams: [stream],
          transmissions: [
            JSON.stringify({ identifier: req.identifier, type: "confirm_subscription" }),
          ],
        })
        : create(CommandResponseSchema, { status: Status.FAILURE, errorMsg: "no stream_name" });
    }
    return toBinary(CommandResponseSchema, answer);
  },
  "/anycable.RPC/Disconnect": (body) => {
    calls.disconnect++;
    fromBinary(DisconnectRequestSchema, body);
    return toBinary(
      DisconnectResponseSchema,
      create(DisconnectResponseSchema, { status: Status.SUCCESS }),
    );
  },
};

/** Response headers and trailers: the same for every call, encoded once. */
const RESPONSE_HEADERS = encodeHeaders([[":status", "200"], ["content-type", "application/grpc"]]);
const TRAILERS_OK = encodeHeaders([["grpc-status", "0"]]);
const TRAILERS_UNIMPLEMENTED = encodeHeaders([
  [":status", "200"],
  ["content-type", "application/grpc"],
  ["grpc-status", "12"],
]);

/** Our receive windows, opened wide once: the connection's is topped up as data arrives. */
const WINDOW = 2 ** 31 - 1;
const TOP_UP_AT = 2 ** 30;

interface Stream {
  path: string;
  body: Uint8Array[];
  size: number;
}

async function serveConnection(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const hpack = new HpackDecoder();
  const streams = new Map<number, Stream>();
  let buf: Uint8Array = new Uint8Array(0);
  let prefaceSeen = false;
  let headerBlock: { id: number; parts: Uint8Array[]; endStream: boolean } | undefined;
  let consumed = 0;
  /** Our send window (the client's receive windows): the connection's, then each stream's. */
  let sendWindow = 65_535;
  let streamWindow = 65_535;
  /** Answers waiting for the connection's send window, oldest first. */
  const blocked: { id: number; frames: Uint8Array; data: number }[] = [];
  let out: Uint8Array[] = [];

  const emit = (frame: Uint8Array) => out.push(frame);
  emit(
    encodeSettings([[Setting.INITIAL_WINDOW_SIZE, WINDOW], [
      Setting.MAX_CONCURRENT_STREAMS,
      10_000,
    ]]),
  );
  emit(encodeWindowUpdate(0, WINDOW - 65_535));

  const answer = (id: number, s: Stream) => {
    streams.delete(id);
    const route = ROUTES[s.path];
    if (!route) {
      emit(
        encodeFrame(
          FrameType.HEADERS,
          Flag.END_HEADERS | Flag.END_STREAM,
          id,
          TRAILERS_UNIMPLEMENTED,
        ),
      );
      return;
    }
    const req = concatBytes(s.body, s.size);
    const message = route(
      req.subarray(5, 5 + new DataView(req.buffer, req.byteOffset).getUint32(1)),
    );
    const data = new Uint8Array(5 + message.length);
    new DataView(data.buffer).setUint32(1, message.length);
    data.set(message, 5);
    const frames = concatBytes([
      encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, RESPONSE_HEADERS),
      encodeFrame(FrameType.DATA, 0, id, data),
      encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, TRAILERS_OK),
    ]);
    if (blocked.length === 0 && data.length <= sendWindow && data.length <= streamWindow) {
      sendWindow -= data.length;
      emit(frames);
    } else {
      blocked.push({ id, frames, data: data.length });
    }
  };

  const release = () => {
    while (blocked.length && blocked[0].data <= sendWindow) {
      const b = blocked.shift()!;
      sendWindow -= b.data;
      emit(b.frames);
    }
  };

  const onHeaders = (id: number, block: Uint8Array, endStream: boolean) => {
    let path = "";
    for (const [name, value] of hpack.decode(block)) if (name === ":path") path = value;
    const s: Stream = { path, body: [], size: 0 };
    streams.set(id, s);
    if (endStream) answer(id, s);
  };

  const frame = (type: number, flags: number, id: number, payload: Uint8Array) => {
    switch (type) {
      case FrameType.DATA: {
        consumed += payload.length;
        const pad = flags & Flag.PADDED ? payload[0] + 1 : 0;
        const s = streams.get(id);
        if (s) {
          const chunk = payload.subarray(pad ? 1 : 0, payload.length - (pad ? pad - 1 : 0));
          s.body.push(chunk.slice());
          s.size += chunk.length;
          if (flags & Flag.END_STREAM) answer(id, s);
        }
        return;
      }
      case FrameType.HEADERS: {
        let at = 0, end = payload.length;
        if (flags & Flag.PADDED) {
          end -= payload[0];
          at = 1;
        }
        if (flags & Flag.PRIORITY) at += 5;
        const block = payload.slice(at, end);
        if (flags & Flag.END_HEADERS) onHeaders(id, block, (flags & Flag.END_STREAM) !== 0);
        else headerBlock = { id, parts: [block], endStream: (flags & Flag.END_STREAM) !== 0 };
        return;
      }
      case FrameType.CONTINUATION: {
        if (!headerBlock) return;
        headerBlock.parts.push(payload.slice());
        if (flags & Flag.END_HEADERS) {
          const { id: hid, parts, endStream } = headerBlock;
          headerBlock = undefined;
          onHeaders(hid, concatBytes(parts), endStream);
        }
        return;
      }
      case FrameType.SETTINGS: {
        if (flags & Flag.ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          const key = (payload[at] << 8) | payload[at + 1];
          const value = new DataView(payload.buffer, payload.byteOffset + at + 2).getUint32(0);
          if (key === Setting.INITIAL_WINDOW_SIZE) streamWindow = value;
        }
        emit(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0, new Uint8Array(0)));
        return;
      }
      case FrameType.PING:
        if (!(flags & Flag.ACK)) emit(encodeFrame(FrameType.PING, Flag.ACK, 0, payload.slice()));
        return;
      case FrameType.WINDOW_UPDATE:
        if (id === 0) {
          sendWindow += new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
          release();
        }
        return;
      case FrameType.RST_STREAM:
        streams.delete(id);
        return;
      case FrameType.GOAWAY:
        return;
    }
  };

  const flush = async () => {
    const bytes = concatBytes(out);
    out = [];
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  };
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      if (out.length) await flush();
      const n = await conn.read(chunk);
      if (n === null) return;
      buf = buf.length ? concatBytes([buf, chunk.subarray(0, n)]) : chunk.slice(0, n);
      let at = 0;
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) continue;
        prefaceSeen = true;
        at = PREFACE.length;
      }
      while (buf.length - at >= FRAME_HEADER) {
        const h = readFrameHeader(buf, at);
        if (buf.length - at - FRAME_HEADER < h.length) break;
        const start = at + FRAME_HEADER;
        frame(h.type, h.flags, h.streamId, buf.subarray(start, start + h.length));
        at = start + h.length;
        // Each answer leaves at once, as the HTTP backend's do: a read holding many requests
        // does not hold back the first answers until the last is computed.
        if (out.length) await flush();
      }
      buf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
      if (consumed >= TOP_UP_AT) {
        emit(encodeWindowUpdate(0, consumed));
        consumed = 0;
      }
    }
  } catch {
    // the client went away
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: grpcPort });
(async () => {
  for await (const conn of listener) serveConnection(conn);
})();

Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
  const { pathname } = new URL(req.url);
  if (pathname === "/health") return new Response("OK");
  if (pathname === "/stats") return Response.json(calls);
  return new Response("not found", { status: 404 });
});
