import type { Broker, StreamMessage } from "../broker/broker.ts";
import { ConfigError } from "../config/config.ts";
import type { Config } from "../config/options.ts";
import type { Hub } from "../hub/hub.ts";
import type { Logger } from "../logger/logger.ts";
import type { Node } from "../node/node.ts";
import type { Session } from "../node/session.ts";
import { WriteWatchdog } from "../node/write_watchdog.ts";
import type { RemoteCommand } from "../pubsub/pubsub.ts";
import type { RouteHandler } from "../server/server.ts";
import { PusherCommands } from "./commands.ts";
import { createPusherApiHandler } from "./http_api.ts";
import { PusherSession } from "./pusher_session.ts";
import { PusherSigner } from "./signatures.ts";
import { ACTIVITY_TIMEOUT, createPusherWsHandler, PONG_TIMEOUT, WS_PREFIX } from "./ws.ts";
import { ActivityCheck } from "./activity.ts";

export interface PusherDeps {
  node: Node;
  hub: Hub;
  broker: Broker;
  publish(msg: StreamMessage): Promise<void>;
  /** Sends a remote command through the pub/sub (every node executes it). */
  command(cmd: RemoteCommand): Promise<void>;
  logger: Logger;
}

/** Pusher mode: its WebSocket and HTTP API routes over the node, hub, broker and publisher. */
export interface Pusher {
  /** `/app/*` (WebSocket; any key, so a wrong one is refused the Pusher way). */
  readonly wsRoutes: Map<string, RouteHandler>;
  /** `/apps/<id>/*` (HTTP API). */
  readonly apiRoutes: Map<string, RouteHandler>;
  readonly wsPath: string;
  readonly apiPath: string;
  close(): void;
}

/** True when --pusher_app_id and --pusher_app_key are both set. */
export function pusherEnabled(config: Config): boolean {
  return config.pusher_app_id !== "" && config.pusher_app_key !== "";
}

/** The secret Pusher signatures use; throws ConfigError when Pusher mode has none. */
export function pusherSecret(config: Config): string {
  const secret = config.pusher_secret || config.secret;
  if (!secret) throw new ConfigError("Pusher mode needs --pusher_secret (or --secret)");
  return secret;
}

export function createPusher(config: Config, deps: PusherDeps): Pusher {
  const secret = pusherSecret(config);
  const logger = deps.logger.child({ context: "pusher" });
  const signer = new PusherSigner(config.pusher_app_key, secret);
  const commands = new PusherCommands({
    hub: deps.hub,
    broker: deps.broker,
    signer,
    publish: deps.publish,
    stats: deps.node.stats,
  });
  const writes = config.ws_write_timeout > 0
    ? new WriteWatchdog<Session>(
      config.ws_write_timeout * 1000,
      (s) => s.dropSlow("client takes nothing (write timeout), disconnecting", s.pendingBytes),
    )
    : undefined;
  const ws = createPusherWsHandler(deps.node, commands, {
    writes,
    appKey: config.pusher_app_key,
    allowedOrigins: config.allowed_origins,
    maxMessageSize: config.max_message_size,
    maxPending: config.ws_max_pending_size,
    logger,
  });
  const api = createPusherApiHandler({
    appId: config.pusher_app_id,
    signer,
    broker: deps.broker,
    publish: deps.publish,
    command: deps.command,
    occupancy: commands.occupancy,
    logger,
  });
  // Presence entries expire unless refreshed: keep those of live Pusher sockets.
  const touch = deps.broker.persistent
    ? setInterval(() => {
      for (const s of deps.node.sessions.values()) {
        if (!(s instanceof PusherSession) || s.state !== "connected") continue;
        if (![...s.channels.values()].some((c) => c.userId !== undefined)) continue;
        deps.broker.presenceTouch(s.sid).catch(() => {});
      }
    }, Math.max(1, config.presence_ttl / 2) * 1000)
    : undefined;
  const activity = new ActivityCheck(ACTIVITY_TIMEOUT * 1000, PONG_TIMEOUT * 1000);
  const sweeper = setInterval(() => {
    const sockets = [...deps.node.sessions.values()].filter((s) => s instanceof PusherSession);
    activity.sweep(sockets, Date.now());
  }, activity.every);
  const apiPath = `/apps/${config.pusher_app_id}/`;
  return {
    wsRoutes: new Map([[`${WS_PREFIX}*`, ws]]),
    apiRoutes: new Map([[`${apiPath}*`, api]]),
    wsPath: `${WS_PREFIX}${config.pusher_app_key}`,
    apiPath,
    close: () => {
      clearInterval(touch);
      clearInterval(sweeper);
      writes?.close();
    },
  };
}
