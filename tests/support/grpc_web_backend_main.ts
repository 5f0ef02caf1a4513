/**
 * A real gRPC-web AnyCable backend, run as its own process by grpc_web_backend.ts: a Connect
 * server (`@connectrpc/connect-node`, gRPC-web only) serving `anycable.RPC` on 127.0.0.1,
 * over https when given a certificate. Connect does not speak `grpc-web-text`, so a second
 * port translates text requests to binary ones and answers in base64, one padded chunk per
 * frame (as text-mode proxies do). Every call is printed to stdout as one JSON line; the
 * answers are scripted by the request:
 *
 * - Connect: `?rpc=reject` FAILURE, `?rpc=internal` INTERNAL error, `?rpc=unavailable`
 *   UNAVAILABLE, `?rpc=hang` never answers (until the deadline aborts it); others are accepted.
 * - Command: subscribe confirms (streams from the identifier's `stream`); a perform with
 *   `{"action":"echo"}` transmits its data back; `{"action":"fail"}` is PERMISSION_DENIED.
 *
 * Args: port (0 = any), textPort (0 = any), [certFile keyFile caFile]. Prints
 * `{"ready":true,"port":N,"textPort":M}` when listening.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import {
  CommandMessageSchema,
  CommandResponseSchema,
  ConnectionRequestSchema,
  ConnectionResponseSchema,
  DisconnectRequestSchema,
  DisconnectResponseSchema,
  RPC,
  Status,
} from "../../proto/gen/rpc_pb.ts";

const [portArg = "0", textPortArg = "0", certFile, keyFile, caFile] = Deno.args;
const tls = certFile && keyFile
  ? { cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile) }
  : undefined;

function record(method: string, request: unknown, ctx: HandlerContext): void {
  const h = ctx.requestHeader;
  const line = {
    method,
    request,
    headers: {
      sid: h.get("sid"),
      protov: h.get("protov"),
      "grpc-timeout": h.get("grpc-timeout"),
      "content-type": h.get("content-type"),
      "x-grpc-web": h.get("x-grpc-web"),
      "x-client-content-type": h.get("x-client-content-type"),
    },
  };
  console.log(JSON.stringify(line));
}

function routes(router: ConnectRouter): void {
  router.service(RPC, {
    async connect(req, ctx) {
      record("connect", toJson(ConnectionRequestSchema, req), ctx);
      const mode = new URL(req.env?.url ?? "http://x/").searchParams.get("rpc");
      if (mode === "internal") throw new ConnectError("boom in connect", Code.Internal);
      if (mode === "unavailable") throw new ConnectError("warming up", Code.Unavailable);
      if (mode === "hang") {
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        console.log(JSON.stringify({ method: "aborted", reason: String(ctx.signal.reason) }));
        throw new ConnectError("aborted", Code.DeadlineExceeded);
      }
      if (mode === "reject") {
        return create(ConnectionResponseSchema, {
          status: Status.FAILURE,
          errorMsg: "rejected by test",
          transmissions: [JSON.stringify({ type: "disconnect", reason: "unauthorized" })],
        });
      }
      return create(ConnectionResponseSchema, {
        status: Status.SUCCESS,
        identifiers: JSON.stringify({ user: "web" }),
        transmissions: [JSON.stringify({ type: "welcome", sid: ctx.requestHeader.get("sid") })],
        env: { cstate: { visits: "1" } },
      });
    },
    command(req, ctx) {
      record("command", toJson(CommandMessageSchema, req), ctx);
      const identifier = req.identifier;
      if (req.command === "subscribe") {
        const id = JSON.parse(identifier);
        return create(CommandResponseSchema, {
          status: Status.SUCCESS,
          streams: id.stream ? [id.stream] : [],
          transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
        });
      }
      if (req.command === "message") {
        const data = JSON.parse(req.data);
        if (data.action === "fail") throw new ConnectError("not allowed", Code.PermissionDenied);
        if (data.action === "echo") {
          return create(CommandResponseSchema, {
            status: Status.SUCCESS,
            transmissions: [JSON.stringify({ identifier, message: data })],
          });
        }
      }
      return create(CommandResponseSchema, { status: Status.SUCCESS });
    },
    disconnect(req, ctx) {
      record("disconnect", toJson(DisconnectRequestSchema, req), ctx);
      return create(DisconnectResponseSchema, { status: Status.SUCCESS });
    },
  });
}

const handler = connectNodeAdapter({ routes, grpcWeb: true, grpc: false, connect: false });
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
await new Promise<void>((resolve) => server.listen(Number(portArg), "127.0.0.1", resolve));
const port = (server.address() as AddressInfo).port;

// grpc-web-text → binary gRPC-web → base64 answer, one padded chunk per frame.
const scheme = tls ? "https" : "http";
const upstream = tls && caFile
  ? Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(caFile)] })
  : undefined;
const text = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(textPortArg),
  onListen() {},
  ...(tls ?? {}),
}, async (req) => {
  const type = req.headers.get("content-type") ?? "";
  if (!type.startsWith("application/grpc-web-text")) {
    return new Response("text port takes application/grpc-web-text only", { status: 415 });
  }
  const body = decode(await req.text());
  const headers = new Headers(req.headers);
  headers.set("content-type", "application/grpc-web+proto");
  headers.set("x-client-content-type", type);
  headers.delete("content-length");
  headers.delete("host");
  const res = await fetch(`${scheme}://127.0.0.1:${port}${new URL(req.url).pathname}`, {
    method: "POST",
    headers,
    body,
    client: upstream,
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const out = new Headers(res.headers);
  out.set("content-type", "application/grpc-web-text+proto");
  out.delete("content-length");
  return new Response(chunked(bytes), { status: res.status, headers: out });
});

console.log(JSON.stringify({ ready: true, port, textPort: text.addr.port }));

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64.trim());
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function chunked(bytes: Uint8Array): string {
  let out = "";
  let at = 0;
  while (at + 5 <= bytes.length) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    out += btoa(String.fromCharCode(...bytes.subarray(at, at + 5 + len)));
    at += 5 + len;
  }
  if (at < bytes.length) out += btoa(String.fromCharCode(...bytes.subarray(at)));
  return out;
}
