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
  // The usual offer, one supported protocol, needs no parsing.
  if ((SUPPORTED_PROTOCOLS as readonly string[]).includes(offer)) return offer;
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
  // The request is unusable after the upgrade: copy what the session needs first (one read of
  // each header; the origin and the offer are read from the copy). It is dropped once the
  // session exists, so idle sockets do not keep request headers alive.
  const headers = node.copyHeaders(req.headers);
  if (!originAllowed(headers.get("origin"), opts.allowedOrigins)) {
    opts.logger.warn("websocket origin rejected", { origin: headers.get("origin") });
    return new Response("origin not allowed\n", { status: 403 });
  }
  const offer = headers.get("sec-websocket-protocol");
  const protocol = negotiateProtocol(offer);
  const binding = new WsBinding(node, opts, {
    url: req.url,
    headers,
    remoteAddr,
    protocol,
    transport: "ws",
  });
  // Deno only negotiates offers written "a, b"; we negotiate ourselves. An offer of exactly
  // the chosen protocol goes to the runtime, which writes the header while building the
  // response; any other is set on the response afterwards.
  const inUpgrade = protocol !== "" && offer === protocol;
  let upgrade;
  try {
    upgrade = Deno.upgradeWebSocket(
      req,
      inUpgrade
        ? (opts.idleTimeout ? { protocol, idleTimeout: opts.idleTimeout } : { protocol })
        : (opts.idleTimeout ? { idleTimeout: opts.idleTimeout } : undefined),
    );
  } catch (err) {
    opts.logger.warn("websocket upgrade failed", { error: err });
    return new Response("websocket upgrade failed\n", { status: 400 });
  }
  const { socket, response } = upgrade;
  binding.socket = socket;
  // One listener object for every event of the socket (no closure or handler wrapper per
  // event); the open registration is one-shot.
  socket.addEventListener("open", binding, { once: true });
  socket.addEventListener("message", binding);
  socket.addEventListener("error", binding);
  socket.addEventListener("close", binding);
  if (protocol && !inUpgrade) response.headers.set("sec-websocket-protocol", protocol);
  response.headers.set("x-anycable-version", VERSION);
  return response;
}

/** The events of one WebSocket: binds it to a session when it opens, then feeds the node. */
class WsBinding implements EventListenerObject {
  socket?: WebSocket;
  #session?: Session;
  /** The opening request, until the session exists (then dropped). */
  #pending?: ConnectionRequest;
  readonly #node: Node;
  readonly #opts: WsOptions;

  constructor(node: Node, opts: WsOptions, pending: ConnectionRequest) {
    this.#node = node;
    this.#opts = opts;
    this.#pending = pending;
  }

  handleEvent(ev: Event): void {
    switch (ev.type) {
      case "message":
        this.#message((ev as MessageEvent).data);
        return;
      case "open":
        this.#session = this.#node.open(new WsConnection(this.socket!), this.#pending!);
        this.#pending = undefined;
        return;
      case "close":
        if (this.#session) this.#node.closed(this.#session);
        return;
      case "error":
        this.#error(ev as ErrorEvent);
    }
  }

  #message(data: unknown): void {
    const session = this.#session;
    if (!session) return;
    const node = this.#node;
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
    const max = this.#opts.maxMessageSize;
    const size = data.length > max / 3 ? utf8Length(data) : 0;
    if (size > max) {
      session.logger.warn("message too big", { size });
      session.disconnect("message_too_big", true, CLOSE_TOO_BIG);
      return;
    }
    node.receive(session, data);
  }

  // The runtime drops a socket that breaks the protocol (invalid UTF-8, reserved opcodes or
  // bits, a control frame over 125 bytes, a frame over its 64 MiB cap) with no close frame;
  // its error event is the only trace, so it is logged here.
  #error(ev: ErrorEvent): void {
    const error = ev.message;
    const session = this.#session;
    if (!session || !error || PEER_GONE.test(error)) return;
    this.#node.stats.failedClientMessages++;
    session.logger.info("websocket dropped by the runtime (protocol violation)", { error });
  }
}

/** Runtime errors that mean the peer went away, not that it broke the protocol. */
const PEER_GONE = /eof|reset|broken pipe|os error/i;
