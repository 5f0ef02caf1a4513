import type {
  CommandResponse,
  ConnectResponse,
  DisconnectResponse,
  Env,
} from "../rpc/rpc_client.ts";

/** What a controller knows about the calling session. */
export interface CallContext {
  sid: string;
  /** url, forwarded headers, cstate (and istate for commands). */
  env: Env;
  /** Connection identifiers (JSON string) once authenticated. */
  identifiers?: string;
  /**
   * Aborted when the session closes: a call still waiting is dropped, one in flight is
   * abandoned (RpcCanceledError). Disconnect calls carry none.
   */
  signal?: AbortSignal;
}

export interface ConnectResult extends ConnectResponse {
  /** The backend wants a Disconnect call for this session (docs/protocol.md#disconnect-queue). */
  interest?: boolean;
}

export interface CommandResult extends CommandResponse {
  interest?: boolean;
}

/**
 * The business-logic boundary. Expected outcomes (rejections) are statuses; failures
 * (backend down, timeouts, garbage) are thrown errors.
 */
export interface Controller {
  authenticate(ctx: CallContext): Promise<ConnectResult>;
  subscribe(ctx: CallContext, identifier: string): Promise<CommandResult>;
  unsubscribe(ctx: CallContext, identifier: string): Promise<CommandResult>;
  perform(ctx: CallContext, identifier: string, data: string): Promise<CommandResult>;
  disconnect(ctx: CallContext, subscriptions: string[]): Promise<DisconnectResponse>;
}
