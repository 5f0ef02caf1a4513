import { HttpBroadcaster } from "../broadcast/http_broadcaster.ts";
import type { Config } from "../config/options.ts";
import { Hub } from "../hub/hub.ts";
import { JwtAuthenticator } from "../identity/jwt_authenticator.ts";
import { StreamsController } from "../identity/streams_controller.ts";
import type { Logger } from "../logger/logger.ts";
import { type Authenticator, NoAuthAuthenticator } from "../node/authenticator.ts";
import type { Controller } from "../node/controller.ts";
import { Node } from "../node/node.ts";
import { StreamCatchUp } from "../node/catch_up.ts";
import { NoRpcController } from "../node/norpc_controller.ts";
import { Publisher } from "../node/publisher.ts";
import { DisconnectQueue } from "../rpc/disconnect_queue.ts";
import { GrpcRpcClient } from "../rpc/grpc_rpc_client.ts";
import { HttpRpcClient } from "../rpc/http_rpc_client.ts";
import { RpcCaller } from "../rpc/rpc_caller.ts";
import type { RpcClient } from "../rpc/rpc_client.ts";
import { RpcController } from "../rpc/rpc_controller.ts";
import { createBroadcastHandler, createHandler, type RouteHandler } from "../server/server.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { registerMetrics } from "../metrics/register.ts";
import { createTransportRoutes } from "../transport/routes.ts";
import { deriveKey } from "../util/secrets.ts";
import { createBroadcasters, createBroker, createPubSub } from "./adapters.ts";

export interface App {
  /** The main server's port (useful with --port=0). */
  readonly port: number;
  /** The HTTP broadcast port (the main port when mounted there). */
  readonly broadcastPort?: number;
  readonly node: Node;
  readonly publisher: Publisher;
  readonly rpc?: RpcCaller;
  readonly metrics: Metrics;
  /** The metrics port when it is not the main one. */
  readonly metricsPort?: number;
  /** Graceful shutdown; idempotent. */
  shutdown(): Promise<void>;
}

export interface Keys {
  rpc: string;
  broadcast: string;
  jwt: string;
  streams: string;
  turbo: string;
  cableReady: string;
}

/** Secrets as shared/PROTOCOL.md §14 derives them. */
export async function resolveKeys(config: Config): Promise<Keys> {
  const derive = (purpose: string) =>
    config.secret ? deriveKey(config.secret, purpose) : Promise.resolve("");
  const streams = config.streams_secret || config.secret;
  return {
    rpc: config.http_rpc_secret || await derive("rpc-cable"),
    broadcast: config.broadcast_key === "none"
      ? ""
      : config.broadcast_key || await derive("broadcast-cable"),
    jwt: config.jwt_secret || config.secret,
    streams,
    turbo: config.turbo_streams_secret || streams,
    cableReady: config.cable_ready_secret || streams,
  };
}

function createRpcClient(config: Config, keys: Keys): RpcClient {
  const impl = config.rpc_impl || (/^https?:\/\//.test(config.rpc_host) ? "http" : "grpc");
  if (impl === "http") {
    return new HttpRpcClient({
      url: config.rpc_host,
      secret: keys.rpc,
      requestTimeout: config.rpc_request_timeout,
    });
  }
  // The config only lets "http" and "grpc" through.
  return new GrpcRpcClient({
    host: config.rpc_host,
    requestTimeout: config.rpc_request_timeout,
  });
}

/** The composition root: builds every part from the resolved config and starts serving. */
export async function startApp(
  config: Config,
  logger: Logger,
  extraRoutes?: Map<string, RouteHandler>,
): Promise<App> {
  const keys = await resolveKeys(config);
  const broker = await createBroker(config, logger);
  await broker.start();
  const pubsub = await createPubSub(config, logger);
  // After a pub/sub drop, a shared broker's history fills what other nodes published meanwhile.
  let catchUp: StreamCatchUp | undefined;
  const hub = new Hub({
    streamAdded: (s) => {
      catchUp?.streamAdded(s);
      pubsub.subscribe(s);
    },
    streamRemoved: (s) => {
      pubsub.unsubscribe(s);
      catchUp?.streamRemoved(s);
    },
  });

  let rpc: RpcCaller | undefined;
  let controller: Controller;
  if (config.norpc) {
    controller = new NoRpcController();
  } else {
    rpc = new RpcCaller(createRpcClient(config, keys), {
      concurrency: config.rpc_concurrency,
      callTimeout: Math.max(config.rpc_request_timeout, 3000),
      logger,
    });
    controller = new RpcController(rpc);
  }
  controller = new StreamsController(controller, {
    streamsSecret: keys.streams,
    publicStreams: config.public_streams,
    whisper: config.streams_whisper,
    presence: config.streams_presence,
    turbo: config.turbo_streams,
    turboSecret: keys.turbo,
    cableReady: config.cable_ready,
    cableReadySecret: keys.cableReady,
  });

  const authenticators: Authenticator[] = [];
  if (keys.jwt) {
    authenticators.push(
      new JwtAuthenticator({
        secret: keys.jwt,
        param: config.jwt_param,
        enforce: config.enforce_jwt,
      }),
    );
  } else if (config.enforce_jwt) {
    logger.warn("--enforce_jwt without a JWT secret: every connection will be rejected");
  }
  if (config.noauth) authenticators.push(new NoAuthAuthenticator());

  const disconnects = new DisconnectQueue({
    rate: config.disconnect_rate,
    backlog: config.disconnect_backlog_size,
    logger,
  });
  // Fan-out remote commands are executed by the node, which is built right below.
  const publisher: Publisher = new Publisher({
    broker,
    pubsub,
    hub,
    local: { deliver: (msg) => hub.broadcast(msg), execute: (cmd) => node.execute(cmd) },
    logger,
    ready: () => pubsub.ready && (catchUp?.ready ?? true),
  });
  const node = new Node({
    pingInterval: config.ping_interval,
    pingPrecision: config.ping_timestamp_precision as "s" | "ms" | "ns",
    pongTimeout: config.pong_timeout,
    sessionsTtl: config.sessions_ttl,
    presenceTtl: config.presence_ttl,
    maxPending: config.ws_max_pending_size,
    writeTimeout: config.ws_write_timeout,
    // The JWT header goes to RPC too (shared/PROTOCOL.md §6.2).
    forwardHeaders: [
      ...config.headers.map((h) => h.toLowerCase()),
      ...(keys.jwt ? [`x-${config.jwt_param.toLowerCase()}`] : []),
    ],
    proxyCookies: config.proxy_cookies,
    disconnectMode: config.disconnect_mode as "auto" | "always" | "never",
  }, {
    hub,
    broker,
    controller,
    disconnects,
    authenticators,
    logger,
    publish: (msg) => publisher.publish(msg),
  });
  if (["redis", "nats", "kv"].includes(broker.name) && pubsub.name !== "local") {
    catchUp = new StreamCatchUp({ target: node, broker, logger });
  }
  await pubsub.start(catchUp ?? node);
  node.start();

  const metrics = registerMetrics(config.metrics_tags, {
    node,
    hub,
    publisher,
    disconnects,
    rpc,
    rpcConcurrency: config.rpc_concurrency,
  });
  const metricsRoute = new Map<string, RouteHandler>();
  if (config.metrics_http) {
    metricsRoute.set(config.metrics_http, () =>
      new Response(metrics.prometheus(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }));
  }
  const statsTimer = config.metrics_log && config.stats_refresh_interval > 0
    ? setInterval(
      () => logger.info("stats", metrics.intervalSnapshot()),
      config.stats_refresh_interval * 1000,
    )
    : undefined;

  const broadcasters = await createBroadcasters(config, logger);
  for (const b of broadcasters) await b.start(publisher);

  let httpBroadcaster: HttpBroadcaster | undefined;
  if (config.broadcast_adapter.includes("http")) {
    httpBroadcaster = new HttpBroadcaster({
      key: keys.broadcast,
      maxBodySize: 16 * 1024 * 1024,
      logger,
    });
    await httpBroadcaster.start(publisher);
    if (!keys.broadcast) {
      logger.warn("HTTP broadcasting is not authenticated (no --broadcast_key or --secret)");
    }
  }
  const broadcastPort = httpBroadcaster
    ? (config.http_broadcast_port || (keys.broadcast ? config.port : 8090))
    : undefined;
  const mountBroadcast = httpBroadcaster !== undefined && broadcastPort === config.port;

  const handler = createHandler({
    wsPaths: config.path,
    healthPath: config.health_path,
    ws: { allowedOrigins: config.allowed_origins, maxMessageSize: config.max_message_size, logger },
    node,
    broadcast: mountBroadcast
      ? { path: config.http_broadcast_path, broadcaster: httpBroadcaster! }
      : undefined,
    extra: new Map([
      ...createTransportRoutes(config, node, logger),
      ...(config.metrics_port && config.metrics_port !== config.port ? [] : metricsRoute),
      ...(extraRoutes ?? []),
    ]),
    logger,
  });
  const server = listen(config.host, config.port, handler);
  const port = server.addr.port;
  let broadcastServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  if (httpBroadcaster && !mountBroadcast) {
    broadcastServer = listen(
      config.host,
      broadcastPort!,
      createBroadcastHandler(config.http_broadcast_path, httpBroadcaster, config.health_path),
    );
  }
  let metricsServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  if (config.metrics_http && config.metrics_port && config.metrics_port !== config.port) {
    metricsServer = listen(config.metrics_host || config.host, config.metrics_port, (req) => {
      const route = metricsRoute.get(new URL(req.url).pathname);
      return route ? route(req, "") : new Response("not found\n", { status: 404 });
    });
  }
  const actualBroadcastPort = broadcastServer
    ? broadcastServer.addr.port
    : (mountBroadcast ? port : undefined);
  logger.info("Cableway is listening", {
    addr: `${config.host}:${port}`,
    ws: config.path.join(","),
    broadcast: actualBroadcastPort
      ? `http://${config.host}:${actualBroadcastPort}${config.http_broadcast_path}`
      : undefined,
    rpc: config.norpc ? "none" : config.rpc_host,
    broker: broker.name,
    pubsub: pubsub.name,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      logger.info("shutting down", { sessions: node.sessions.size });
      clearInterval(statsTimer);
      for (const b of broadcasters) await b.close().catch(() => {});
      await httpBroadcaster?.close();
      await node.shutdown(config.shutdown_timeout * 1000);
      await Promise.race([
        Promise.all([server.shutdown(), broadcastServer?.shutdown(), metricsServer?.shutdown()]),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
      catchUp?.close();
      await pubsub.close().catch(() => {});
      await broker.close().catch(() => {});
      await rpc?.close();
      logger.info("stopped");
    })();
    return stopping;
  };

  return {
    port,
    broadcastPort: actualBroadcastPort,
    metricsPort: metricsServer?.addr.port,
    node,
    publisher,
    rpc,
    metrics,
    shutdown,
  };
}

function listen(
  hostname: string,
  port: number,
  handler: Deno.ServeHandler,
): Deno.HttpServer<Deno.NetAddr> {
  // Binding happens synchronously: a busy port throws here, naming the address.
  return Deno.serve({
    hostname,
    port,
    onListen: () => {},
    onError: (err) => {
      console.error("request handler failed", err);
      return new Response("internal error\n", { status: 500 });
    },
  }, handler);
}
