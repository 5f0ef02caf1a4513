import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { Session } from "../node/session.ts";
import type { WriteWatchdog } from "../node/write_watchdog.ts";
import { WsConnection } from "../transport/ws_connection.ts";
import { CLOSE_TOO_BIG } from "../transport/connection.ts";
import { originAllowed } from "../transport/origin.ts";
import { utf8Length } from "../util/utf8_length.ts";
import { VERSION } from "../version.ts";
import type { PusherCommands } from "./commands.ts";
import {
  connectionEstablished,
  ERR,
  errorFrame,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
} from "./protocol.ts";
import { newSocketId, PusherSession } from "./pusher_session.ts";

/** Seconds of silence after which pusher-js pings (told in `connection_established`). */
export const ACTIVITY_TIMEOUT = 30;
/** Seconds a pinged client has to answer before it is closed with 4201. */
export const PONG_TIMEOUT = 30;
/** The WebSocket path prefix: `/app/<key>`. */
export const WS_PREFIX = "/app/";

export interface PusherWsOptions {
  appKey: string;
  allowedOrigins: string[];
  maxMessageSize: number;
  maxPending: number;
  /** Disconnects sockets whose written bytes stall (--ws_write_timeout), when set. */
  writes?: WriteWatchdog<Session>;
  logger: Logger;
}

/**
 * The Pusher WebSocket transport at `/app/<key>?protocol=7`: checks the key and the protocol
 * version the way Pusher does (a `pusher:error` with its code, then a close with it), then
 * binds the socket to a PusherSession in the node's session table.
 */
export function createPusherWsHandler(
  node: Node,
  commands: PusherCommands,
  opts: PusherWsOptions,
): (req: Request, remoteAddr: string) => Response {
  const closedHook = (session: Session) => {
    node.sessions.delete(session.sid);
    commands.closed(session as PusherSession).catch((err) =>
      session.logger.warn("pusher cleanup failed", { error: err })
    );
  };
  return (req, remoteAddr) => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade\n", { status: 426 });
    }
    if (node.shuttingDown) return new Response("shutting down\n", { status: 503 });
    if (!originAllowed(req.headers.get("origin"), opts.allowedOrigins)) {
      opts.logger.warn("pusher websocket origin rejected", { origin: req.headers.get("origin") });
      return new Response("origin not allowed\n", { status: 403 });
    }
    const url = new URL(req.url);
    const refusal = checkRequest(url, opts.appKey);
    // The request is unusable after the upgrade: copy what the session keeps first.
    const headers = node.copyHeaders(req.headers);
    let upgrade;
    try {
      upgrade = Deno.upgradeWebSocket(req);
    } catch (err) {
      opts.logger.warn("pusher websocket upgrade failed", { error: err });
      return new Response("websocket upgrade failed\n", { status: 400 });
    }
    const { socket, response } = upgrade;
    let session: PusherSession | undefined;
    socket.addEventListener("open", () => {
      if (refusal) {
        // Pusher answers on the socket: the error, then a close with the same code.
        opts.logger.info("pusher connection refused", { reason: refusal.message, remoteAddr });
        socket.send(errorFrame(refusal.code, refusal.message));
        socket.close(refusal.code, refusal.message.slice(0, 100));
        return;
      }
      if (node.shuttingDown) {
        // Upgraded just as the node began to stop: go elsewhere at once.
        socket.send(errorFrame(ERR.reconnect, "server_restart"));
        socket.close(ERR.reconnect, "server_restart");
        return;
      }
      let sid = newSocketId();
      while (node.sessions.has(sid)) sid = newSocketId();
      session = new PusherSession({
        sid,
        conn: new WsConnection(socket),
        env: { url: req.url, headers: Object.fromEntries(headers) },
        transport: "ws",
        logger: opts.logger,
        maxPending: opts.maxPending,
        writes: opts.writes,
        stats: node.stats,
        closed: closedHook,
      });
      session.state = "connected";
      node.sessions.set(sid, session);
      session.sendFrame(connectionEstablished(sid, ACTIVITY_TIMEOUT));
    }, { once: true });
    socket.onmessage = (ev) => {
      if (!session) return;
      if (typeof ev.data !== "string") {
        node.stats.failedClientMessages++;
        session.logger.warn("pusher binary frame refused");
        session.sendFrame(errorFrame(null, "Binary frames are not supported"));
        return;
      }
      const data = ev.data;
      const size = data.length > opts.maxMessageSize / 3 ? utf8Length(data) : 0;
      if (size > opts.maxMessageSize) {
        node.stats.failedClientMessages++;
        session.logger.warn("pusher message too big", { size });
        session.sendFrame(
          errorFrame(null, `Message too big: ${size} bytes (limit ${opts.maxMessageSize})`),
        );
        session.close(CLOSE_TOO_BIG, "message too big");
        return;
      }
      commands.receive(session, data);
    };
    socket.onclose = () => session?.close();
    response.headers.set("x-anycable-version", VERSION);
    return response;
  };
}

/** Why Pusher would refuse this connection (wrong key, missing/unsupported protocol). */
function checkRequest(url: URL, appKey: string): { code: number; message: string } | null {
  const key = decodeURIComponent(url.pathname.slice(WS_PREFIX.length).replace(/\/+$/, ""));
  if (key !== appKey) {
    return {
      code: ERR.appNotFound,
      message: `App key ${
        key.slice(0, 64)
      } not in this cluster. Did you forget to specify the cluster?`,
    };
  }
  const protocol = url.searchParams.get("protocol");
  if (protocol === null || protocol === "") {
    return { code: ERR.noProtocol, message: "No protocol version supplied" };
  }
  if (!/^\d+$/.test(protocol)) {
    return { code: ERR.invalidVersion, message: "Invalid version string format" };
  }
  const v = Number(protocol);
  if (v < MIN_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
    return { code: ERR.unsupportedProtocol, message: `Unsupported protocol version: ${protocol}` };
  }
  return null;
}
