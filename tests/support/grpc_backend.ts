/**
 * gRPC backends for tests. `GrpcBackend` is a real AnyCable gRPC backend: `@grpc/grpc-js` +
 * `@grpc/proto-loader` serving `anycable.RPC` from proto/rpc.proto on 127.0.0.1, in this Deno
 * process (grpc-js's server works under Deno's node:http2; no Node child). Records every call
 * (decoded request + metadata) and answers with scriptable handlers (defaults: accept
 * everyone, confirm every subscription). Handlers may answer with a plain object in the
 * proto's field names, or throw/return a `GrpcStatus` to fail the call with a gRPC status.
 * `startRawGrpcBackend` is a bare HTTP/2 server for malformed answers.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as http2 from "node:http2";
import { encodeGrpcFrame } from "../../src/rpc/grpc_framing.ts";
import { Inbox } from "./wait.ts";

const PROTO_PATH = new URL("../../proto/rpc.proto", import.meta.url).pathname;

export type GrpcMethod = "connect" | "command" | "disconnect";

export interface GrpcCallRecord {
  method: GrpcMethod;
  /** Decoded request; unset/empty fields are absent (like the JSON shapes). */
  request: Record<string, unknown>;
  /** Custom metadata the client sent (sid, protov, ...). */
  metadata: Record<string, string>;
  /** Whether the client sent a deadline (grpc-timeout). */
  hasDeadline: boolean;
}

/** Fails a call with this gRPC status code and message. */
export class GrpcStatus extends Error {
  readonly code: number;
  constructor(code: number, details: string) {
    super(details);
    this.name = "GrpcStatus";
    this.code = code;
  }
}

export type GrpcAnswer = Record<string, unknown> | GrpcStatus;
export type GrpcHandler = (
  request: Record<string, unknown>,
  metadata: Record<string, string>,
) => GrpcAnswer | Promise<GrpcAnswer>;

export interface GrpcHandlers {
  connect?: GrpcHandler;
  command?: GrpcHandler;
  disconnect?: GrpcHandler;
}

export const defaultGrpcConnect: GrpcHandler = (_req, metadata) => ({
  status: 1,
  identifiers: JSON.stringify({ user: "anon" }),
  transmissions: [JSON.stringify({ type: "welcome", sid: metadata.sid })],
});

/** Confirms subscriptions and streams from `{"channel":"X","stream":"s"}` identifiers. */
export const defaultGrpcCommand: GrpcHandler = (req) => {
  const identifier = req.identifier as string;
  if (req.command === "subscribe") {
    const id = JSON.parse(identifier);
    return {
      status: 1,
      streams: id.stream ? [id.stream] : [],
      transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
    };
  }
  return { status: 1 };
};

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: false,
  arrays: false,
  objects: false,
};

let definition: grpc.GrpcObject | undefined;

async function serviceDefinition(): Promise<grpc.ServiceDefinition> {
  if (!definition) {
    const pkg = await protoLoader.load(PROTO_PATH, LOADER_OPTIONS);
    definition = grpc.loadPackageDefinition(pkg);
  }
  const anycable = definition.anycable as grpc.GrpcObject;
  return (anycable.RPC as grpc.ServiceClientConstructor).service;
}

export class GrpcBackend {
  readonly #inbox = new Inbox<GrpcCallRecord>();
  readonly calls: GrpcCallRecord[] = this.#inbox.items;
  handlers: GrpcHandlers;
  readonly #server = new grpc.Server();
  #port = 0;
  #stopped = false;

  private constructor(handlers: GrpcHandlers) {
    this.handlers = handlers;
  }

  /** Starts serving on 127.0.0.1:`port` (0 = any free port). */
  static async start(handlers: GrpcHandlers = {}, port = 0): Promise<GrpcBackend> {
    const backend = new GrpcBackend(handlers);
    const unary = (method: GrpcMethod): grpc.handleUnaryCall<unknown, unknown> => (call, cb) =>
      backend.#handle(method, call, cb);
    backend.#server.addService(await serviceDefinition(), {
      Connect: unary("connect"),
      Command: unary("command"),
      Disconnect: unary("disconnect"),
    });
    backend.#port = await new Promise<number>((resolve, reject) =>
      backend.#server.bindAsync(
        `127.0.0.1:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, p) => err ? reject(err) : resolve(p),
      )
    );
    return backend;
  }

  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:PORT`, to pass as --rpc_host. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  callsOf(method: GrpcMethod): GrpcCallRecord[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Resolves once `pred` holds for the recorded calls (bounded). */
  waitFor(pred: (calls: GrpcCallRecord[]) => boolean, timeoutMs = 5000): Promise<void> {
    return this.#inbox.waitFor(pred, timeoutMs, "GrpcBackend calls");
  }

  /** Stops at once: open connections are dropped and pending calls cancelled. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#stopped = true;
    this.#server.forceShutdown();
    this.#inbox.wake();
    return Promise.resolve();
  }

  async #handle(
    method: GrpcMethod,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    cb: grpc.sendUnaryData<unknown>,
  ): Promise<void> {
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
    const request = call.request as Record<string, unknown>;
    this.#inbox.push({
      method,
      request,
      metadata,
      hasDeadline: Number.isFinite(Number(call.getDeadline())),
    });
    const handler = this.handlers[method] ??
      (method === "connect"
        ? defaultGrpcConnect
        : method === "command"
        ? defaultGrpcCommand
        : () => ({ status: 1 }));
    let answer: GrpcAnswer;
    try {
      answer = await handler(request, metadata);
    } catch (err) {
      answer = err instanceof GrpcStatus ? err : new GrpcStatus(grpc.status.INTERNAL, String(err));
    }
    if (call.cancelled) return;
    if (answer instanceof GrpcStatus) cb({ code: answer.code, details: answer.message });
    else cb(null, answer);
  }
}

export type RawGrpcMode =
  | "garbage"
  | "two"
  | "no-status"
  | "http503"
  | "trailers-only"
  | "deadline"
  | "silent";

export interface RawGrpcBackend {
  port: number;
  /** How the next calls are answered; change it between calls. */
  mode: RawGrpcMode;
  /** Request headers of every call, in order. */
  headers: http2.IncomingHttpHeaders[];
  stop(): Promise<void>;
}

/**
 * A bare `node:http2` server that answers every call the way `mode` says: malformed and
 * edge-case answers that grpc-js never produces (undecodable or extra messages, no
 * grpc-status, HTTP errors, trailers-only, silence).
 */
export async function startRawGrpcBackend(): Promise<RawGrpcBackend> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  const state: RawGrpcBackend = {
    port: 0,
    mode: "garbage",
    headers: [],
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
  server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    state.headers.push(headers);
    stream.on("data", () => {});
    stream.on("end", () => {
      const ok = { ":status": 200, "content-type": "application/grpc" };
      const withTrailers = (body: Uint8Array, trailers: Record<string, string>) => {
        stream.respond(ok, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers(trailers));
        stream.end(body);
      };
      switch (state.mode) {
        case "garbage": // field 2, length 5, one byte present: truncated
          return withTrailers(encodeGrpcFrame(new Uint8Array([0x12, 0x05, 0x61])), {
            "grpc-status": "0",
          });
        case "two": {
          const one = encodeGrpcFrame(new Uint8Array([0x08, 0x01]));
          const both = new Uint8Array(one.length * 2);
          both.set(one);
          both.set(one, one.length);
          return withTrailers(both, { "grpc-status": "0" });
        }
        case "no-status":
          stream.respond(ok);
          return stream.end(encodeGrpcFrame(new Uint8Array([0x08, 0x01])));
        case "http503":
          stream.respond({ ":status": 503 });
          return stream.end("busy");
        case "trailers-only":
          return stream.respond({
            ...ok,
            "grpc-status": "7",
            "grpc-message": "go%20away%20%E2%9C%8B",
          }, {
            endStream: true,
          });
        case "deadline":
          return withTrailers(new Uint8Array(0), { "grpc-status": "4" });
        case "silent":
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as { port: number }).port;
  return state;
}
