import type { StreamMessage } from "../broker/broker.ts";
import { Session, type SessionInit } from "../node/session.ts";
import type { Reply } from "../protocol/messages.ts";
import { encodePublication } from "./encoder.ts";
import { type ChannelKind, ERR, errorFrame } from "./protocol.ts";

/** One channel a Pusher socket is subscribed to (the stream of the same name). */
export interface PusherChannel {
  kind: ChannelKind;
  /** Presence channels: the member this socket stands for. */
  userId?: string;
}

/**
 * A Pusher socket as a node session: it lives in the node's session table (metrics, graceful
 * shutdown, slow-client checks), receives the hub's publications, and speaks Pusher on the
 * wire. Its sid is the Pusher socket id (`<digits>.<digits>`), so `socket_id` exclusion in
 * publications is the hub's usual `exclude_socket`.
 */
export class PusherSession extends Session {
  readonly channels = new Map<string, PusherChannel>();
  /** Set by a valid `pusher:signin`. */
  userId?: string;
  /** When the server pinged this silent socket (see ActivityCheck). */
  pingSentAt?: number;

  constructor(init: Omit<SessionInit, "ext">) {
    super({ ...init, ext: false });
  }

  /** Publications arrive encoded for Action Cable; a Pusher socket re-encodes them (once per message). */
  override deliver(_identifier: string, _frame: string, msg: StreamMessage): void {
    const frame = encodePublication(msg);
    if (frame !== null) this.sendFrame(frame);
  }

  /** Only the node's disconnects reach a Pusher socket as replies: they become errors. */
  override send(reply: Reply): void {
    if (reply.type === "disconnect") {
      this.sendFrame(
        errorFrame(reply.reconnect ? ERR.reconnect : ERR.unauthorized, reply.reason ?? ""),
      );
    }
  }

  /**
   * `pusher:error` with 4200 (reconnect at once: server restart, too slow) or 4009 (do not
   * reconnect), then a close with the same code, as Pusher does.
   */
  override disconnect(reason: string, reconnect: boolean, _code?: number): void {
    if (this.state === "closed") return;
    const code = reconnect ? ERR.reconnect : ERR.unauthorized;
    this.sendFrame(errorFrame(code, reason));
    this.close(code, reason);
  }
}

/**
 * The connection identifiers of a socket signed in as `userId`: remote disconnects (the HTTP
 * API's terminate_connections) find its sockets on every node by them.
 */
export function userIdentifiers(userId: string): string {
  return JSON.stringify({ pusher_user_id: userId });
}

/** A fresh Pusher socket id: two random unsigned integers joined by a dot. */
export function newSocketId(): string {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return `${a}.${b}`;
}
