import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { Session } from "../node/session.ts";
import { SUPPORTED_PROTOCOLS } from "../protocol/messages.ts";
import { VERSION } from "../version.ts";
import { CLOSE_TOO_BIG, type Connection } from "./connection.ts";
import { originAllowed } from "./origin.ts";

export interface WsOptions {
  allowedOrigins: string[];
  maxMessageSize: number;
  logger: Logger;
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
  // The request is unusable after the upgrade: copy what the session needs first.
  const url = req.url;
  const headers = new Headers(req.headers);
  const protocol = negotiateProtocol(req.headers.get("sec-websocket-protocol"));
  let upgrade;
  try {
    // Deno only negotiates offers written "a, b"; we negotiate ourselves and set the header.
    upgrade = Deno.upgradeWebSocket(req);
  } catch (err) {
    opts.logger.warn("websocket upgrade failed", { error: err });
    return new Response("websocket upgrade failed\n", { status: 400 });
  }
  const { socket, response } = upgrade;
  let session: Session | undefined;
  const conn: Connection = {
    send(frame) {
      if (socket.readyState === WebSocket.OPEN) socket.send(frame);
    },
    close(code, reason) {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
        socket.close(code, reason);
      }
    },
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
  };
  socket.onopen = () => {
    session = node.open(conn, { url, headers, remoteAddr, protocol, transport: "ws" });
  };
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
    if (data.length > opts.maxMessageSize / 3 && byteLength(data) > opts.maxMessageSize) {
      session.logger.warn("message too big", { size: byteLength(data) });
      session.disconnect("message_too_big", true, CLOSE_TOO_BIG);
      return;
    }
    node.receive(session, data);
  };
  socket.onclose = () => {
    if (session) node.closed(session);
  };
  socket.onerror = () => {
    // onclose follows
  };
  if (protocol) response.headers.set("sec-websocket-protocol", protocol);
  response.headers.set("x-anycable-version", VERSION);
  return response;
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}
