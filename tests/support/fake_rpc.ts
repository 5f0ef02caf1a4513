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
  readonly requests: RpcRequestRecord[] = [];
  handlers: FakeRpcHandlers;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #waiters: Array<() => void> = [];

  constructor(handlers: FakeRpcHandlers = {}) {
    this.handlers = handlers;
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const method = new URL(req.url).pathname.split("/").pop() as RpcRequestRecord["method"];
      const body = await req.json();
      this.requests.push({ method, body, headers: req.headers });
      for (const w of this.#waiters.splice(0)) w();
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
    return `http://127.0.0.1:${this.#server.addr.port}/_anycable`;
  }

  calls(method: RpcRequestRecord["method"]): RpcRequestRecord[] {
    return this.requests.filter((r) => r.method === method);
  }

  /** Resolves once `pred` holds for the recorded requests (bounded). */
  async waitFor(pred: (reqs: RpcRequestRecord[]) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.requests)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("FakeRpc.waitFor: timed out");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    await this.#server.shutdown();
  }
}
