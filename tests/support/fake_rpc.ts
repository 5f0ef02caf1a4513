import { Inbox } from "./wait.ts";

/**
 * A scriptable AnyCable HTTP RPC backend for tests: records every request and answers with
 * the handlers you give it (defaults: accept everyone, confirm every subscription).
 */

export interface RpcRequestRecord {
  method: "connect" | "command" | "disconnect";
  body: Record<string, unknown>;
  headers: Headers;
}

export type RpcAnswer = Record<string, unknown> | Response;
export type RpcHandler = (
  body: Record<string, unknown>,
  headers: Headers,
) => RpcAnswer | Promise<RpcAnswer>;

export interface FakeRpcHandlers {
  connect?: RpcHandler;
  command?: RpcHandler;
  disconnect?: RpcHandler;
}

export const defaultConnect: RpcHandler = (_body, headers) => ({
  status: 1,
  identifiers: JSON.stringify({ user: "anon" }),
  transmissions: [JSON.stringify({ type: "welcome", sid: headers.get("x-anycable-meta-sid") })],
});

/** Confirms subscriptions and streams from `{"channel":"X","stream":"s"}` identifiers. */
export const defaultCommand: RpcHandler = (body) => {
  const identifier = body.identifier as string;
  if (body.command === "subscribe") {
    const id = JSON.parse(identifier);
    return {
      status: 1,
      streams: id.stream ? [id.stream] : [],
      transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
    };
  }
  return { status: 1 };
};

export class FakeRpc {
  readonly #inbox = new Inbox<RpcRequestRecord>();
  readonly requests: RpcRequestRecord[] = this.#inbox.items;
  handlers: FakeRpcHandlers;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  readonly #scheme: string;

  /** `tls`: serve https with this PEM certificate and key. */
  constructor(handlers: FakeRpcHandlers = {}, tls?: { cert: string; key: string }) {
    this.handlers = handlers;
    this.#scheme = tls ? "https" : "http";
    const opts = { hostname: "127.0.0.1", port: 0, onListen() {}, ...tls };
    this.#server = Deno.serve(opts, async (req) => {
      const method = new URL(req.url).pathname.split("/").pop() as RpcRequestRecord["method"];
      const body = await req.json();
      this.#inbox.push({ method, body, headers: req.headers });
      const handler = this.handlers[method] ??
        (method === "connect"
          ? defaultConnect
          : method === "command"
          ? defaultCommand
          : () => ({ status: 1 }));
      const answer = await handler(body, req.headers);
      return answer instanceof Response ? answer : Response.json(answer);
    });
  }

  /** Base URL to pass as --rpc_host. */
  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.#server.addr.port}/_anycable`;
  }

  calls(method: RpcRequestRecord["method"]): RpcRequestRecord[] {
    return this.requests.filter((r) => r.method === method);
  }

  /** Resolves once `pred` holds for the recorded requests (bounded). */
  waitFor(pred: (reqs: RpcRequestRecord[]) => boolean, timeoutMs = 5000): Promise<void> {
    return this.#inbox.waitFor(pred, timeoutMs, "FakeRpc requests");
  }

  async stop(): Promise<void> {
    await this.#server.shutdown();
  }
}
