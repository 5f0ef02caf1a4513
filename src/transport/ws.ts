import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { Session } from "../node/session.ts";
import { SUPPORTED_PROTOCOLS } from "../protocol/messages.ts";
import { VERSION } from "../version.ts";
import { CLOSE_TOO_BIG, type ConnectionRequest } from "./connection.ts";
import { WsConnection } from "./ws_connection.ts";
import { originAllowed } from "./origin.ts";
import { utf8Length } from "../util/utf8_length.ts";

export interface WsOptions {
  allowedOrigins: string[];
  maxMessageSize: number;
  logger: Logger;
  /**
   * `--enable_native_pings`: the runtime's idle timeout (seconds). Deno sends a WebSocket ping
   * frame after half of it without traffic from the client, and closes the socket when no pong
   * comes back within the other half.
   */
  idleTimeout?: number;
}

/**
 * Picks the subprotocol in the server's preference order from a client offer such as
 * "actioncable-v1-json, actioncable-unsupported". Never picks `anycable-token.*`.
 */
export function negotiateProtocol(offer: string | null): string {
  if (!offer) return "";
  const offered = offer.split(",").map((p) => p.trim()).filter(Boolean);
  return SUPPORTED_PROTOCOLS.find((p) => offered.includes(p)) ?? "";
}

/** WebSocket transport: upgrades the request and binds the socket to a new session. */
export function handleWebSocket(
  req: Request,
  remoteAddr: string,
  node: Node,
  opts: WsOptions,
): Response {
  if (node.shuttingDown) return new Response("shutting down\n", { status: 503 });
  if (!originAllowed(req.headers.get("origin"), opts.allowedOrigins)) {
    opts.logger.warn("websocket origin rejected", { origin: req.headers.get("origin") });
    return new Response("origin not allowed\n", { status: 403 });
  }
  // The request is unusable after the upgrade: copy what the session needs first. It is
  // dropped once the session exists, so idle sockets do not keep request headers alive.
  const protocol = negotiateProtocol(req.headers.get("sec-websocket-protocol"));
  let pending: ConnectionRequest | undefined = {
    url: req.url,
    headers: node.copyHeaders(req.headers),
    remoteAddr,
    protocol,
    transport: "ws",
  };
  let upgrade;
  try {
    // Deno only negotiates offers written "a, b"; we negotiate ourselves and set the header.
    upgrade = Deno.upgradeWebSocket(
      req,
      opts.idleTimeout ? { idleTimeout: opts.idleTimeout } : undefined,
    );
  } catch (err) {
    opts.logger.warn("websocket upgrade failed", { error: err });
    return new Response("websocket upgrade failed\n", { status: 400 });
  }
  const { socket, response } = upgrade;
  let session: Session | undefined;
  // A one-shot listener: nothing of it stays attached to an idle socket.
  socket.addEventListener("open", () => {
    session = node.open(new WsConnection(socket), pending!);
    pending = undefined;
  }, { once: true });
  socket.onmessage = (ev) => {
    if (!session) return;
    const data = ev.data;
    if (typeof data !== "string") {
      session.logger.warn("binary frame ignored");
      node.stats.failedClientMessages++;
      session.send({
        type: "error",
        reason: "invalid_message",
        message: "binary frames are not supported",
      });
      return;
    }
    const size = data.length > opts.maxMessageSize / 3 ? utf8Length(data) : 0;
    if (size > opts.maxMessageSize) {
      session.logger.warn("message too big", { size });
      session.disconnect("message_too_big", true, CLOSE_TOO_BIG);
      return;
    }
    node.receive(session, data);
  };
  // One handler for both events. The runtime drops a socket that breaks the protocol (invalid
  // UTF-8, reserved opcodes or bits, a control frame over 125 bytes, a frame over its 64 MiB
  // cap) with no close frame; its error event is the only trace, so it is logged here.
  const ended = (ev: Event) => {
    if (ev.type !== "error") {
      if (session) node.closed(session);
      return;
    }
    const error = (ev as ErrorEvent).message;
    if (!session || !error || PEER_GONE.test(error)) return;
    node.stats.failedClientMessages++;
    session.logger.info("websocket dropped by the runtime (protocol violation)", { error });
  };
  socket.onerror = ended;
  socket.onclose = ended;
  if (protocol) response.headers.set("sec-websocket-protocol", protocol);
  response.headers.set("x-anycable-version", VERSION);
  return response;
}

/** Runtime errors that mean the peer went away, not that it broke the protocol. */
const PEER_GONE = /eof|reset|broken pipe|os error/i;
