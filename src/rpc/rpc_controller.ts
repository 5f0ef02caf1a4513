import type { CallContext, CommandResult, ConnectResult, Controller } from "../node/controller.ts";
import type { RpcCaller } from "./rpc_caller.ts";
import type { DisconnectResponse, Env } from "./rpc_client.ts";

/** The controller backed by the application's RPC server. */
export class RpcController implements Controller {
  readonly #rpc: RpcCaller;

  constructor(rpc: RpcCaller) {
    this.#rpc = rpc;
  }

  async authenticate(ctx: CallContext): Promise<ConnectResult> {
    const res = await this.#rpc.connect({ env: compactEnv(ctx.env) }, {
      sid: ctx.sid,
      signal: ctx.signal,
    });
    return { ...res, interest: true };
  }

  subscribe(ctx: CallContext, identifier: string): Promise<CommandResult> {
    return this.#command("subscribe", ctx, identifier);
  }

  unsubscribe(ctx: CallContext, identifier: string): Promise<CommandResult> {
    return this.#command("unsubscribe", ctx, identifier);
  }

  perform(ctx: CallContext, identifier: string, data: string): Promise<CommandResult> {
    return this.#command("message", ctx, identifier, data);
  }

  disconnect(ctx: CallContext, subscriptions: string[]): Promise<DisconnectResponse> {
    const req = { env: compactEnv(ctx.env), identifiers: ctx.identifiers, subscriptions };
    if (!req.identifiers) delete req.identifiers;
    // Never cancelled by the (already closed) session: it goes through the disconnect queue.
    return this.#rpc.disconnect(req, { sid: ctx.sid });
  }

  async #command(
    command: string,
    ctx: CallContext,
    identifier: string,
    data?: string,
  ): Promise<CommandResult> {
    const req = {
      command,
      identifier,
      connection_identifiers: ctx.identifiers,
      data,
      env: compactEnv(ctx.env),
    };
    if (req.connection_identifiers === undefined) delete req.connection_identifiers;
    if (req.data === undefined) delete req.data;
    const res = await this.#rpc.command(req, { sid: ctx.sid, signal: ctx.signal });
    return { ...res, interest: command === "subscribe" ? true : undefined };
  }
}

/** Drops empty maps, as the reference's JSON encoding (omitempty) does. */
export function compactEnv(env: Env): Env {
  const out: Env = { url: env.url };
  if (env.headers && Object.keys(env.headers).length) out.headers = env.headers;
  if (env.cstate && Object.keys(env.cstate).length) out.cstate = env.cstate;
  if (env.istate && Object.keys(env.istate).length) out.istate = env.istate;
  return out;
}
