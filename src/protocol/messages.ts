/** Action Cable wire messages (see docs/protocol.md#action-cable-messages, docs/protocol.md#extended-protocol). */

export const PROTOCOL_JSON = "actioncable-v1-json";
export const PROTOCOL_EXT_JSON = "actioncable-v1-ext-json";
/** Server preference order for subprotocol negotiation. */
export const SUPPORTED_PROTOCOLS = [PROTOCOL_JSON, PROTOCOL_EXT_JSON] as const;
export type ProtocolName = typeof SUPPORTED_PROTOCOLS[number];

export interface HistoryPosition {
  epoch: string;
  offset: number;
}

export interface HistoryRequest {
  since?: number;
  streams?: Record<string, HistoryPosition>;
}

export interface PresenceRequest {
  id: string;
  info?: unknown;
}

/** A decoded client frame. `identifier` is compared byte-for-byte, never re-serialized. */
export interface ClientCommand {
  command: string;
  identifier?: string;
  data?: unknown;
  history?: HistoryRequest;
  /** Unchecked as decoded: see presenceRequest (src/node/extras.ts). */
  presence?: unknown;
}

/** A server -> client message. Only present keys are serialized. */
export interface Reply {
  type?: string;
  identifier?: string;
  message?: unknown;
  reason?: string;
  reconnect?: boolean;
  sid?: string;
  restored?: boolean;
  restored_ids?: string[];
  stream_id?: string;
  epoch?: string;
  offset?: number;
}

export type DisconnectReason =
  | "unauthorized"
  | "token_expired"
  | "server_restart"
  | "remote"
  | "idle_timeout"
  | "no_pong"
  | "too_slow"
  | "invalid_message"
  | "message_too_big"
  | "too_many_requests"
  | "internal_error";

export function disconnectMessage(reason: string, reconnect: boolean): Reply {
  return { type: "disconnect", reason, reconnect };
}
