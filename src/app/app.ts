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
import { type GrpcWebMode, GrpcWebRpcClient } from "../rpc/grpc_web_client.ts";
import { grpcTlsOptions } from "../rpc/grpc_tls.ts";
import { HttpRpcClient } from "../rpc/http_rpc_client.ts";
import { RpcCaller } from "../rpc/rpc_caller.ts";
import type { RpcClient } from "../rpc/rpc_client.ts";
import { RpcController } from "../rpc/rpc_controller.ts";
import { createRpcHttpClient, loadRootCa } from "../rpc/rpc_tls.ts";
import {
  createBroadcastHandler,
  createHandler,
  prefixRoute,
  type RouteHandler,
} from "../server/server.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { registerMetrics } from "../metrics/register.ts";
import { type StatsdTagsFormat, StatsdWriter } from "../metrics/statsd.ts";
import { createPusher, pusherEnabled, pusherSecret } from "../pusher/pusher.ts";
import { createTransportRoutes } from "../transport/routes.ts";
import { deriveKey } from "../util/secrets.ts";
import { ListenError } from "./listen_error.ts";
import { nanoid } from "../util/nanoid.ts";
import { ConnLimit } from "../server/conn_limit.ts";
import { pathMatches } from "../server/server.ts";
import { withBroadcastCors } from "../broadcast/broadcast_cors.ts";
import { createBroadcasters, createBroker, createPubSub } from "./adapters.ts";
import { apiRoutes } from "./api_routes.ts";
import { setupDs } from "./ds_setup.ts";

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
  /** `--node_id`, or a random one. */
  readonly nodeId: string;
  /** The Pusher HTTP API port (the main port unless --pusher_api_port), when Pusher is on. */
  readonly pusherApiPort?: number;
  /** The REST API port when the API is mounted (the main port unless --api_port). */
  readonly apiPort?: number;
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
  /** REST API bearer key; empty = unauthenticated. */
  api: string;
}

/** Secrets as docs/protocol.md#secrets derives them. */
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
    api: config.api_secret === "none" ? "" : config.api_secret || await derive("api-cable"),
  };
}

/** The RPC transport `config` asks for: --rpc_impl, else by the rpc_host's scheme. */
export function rpcImplOf(config: Config): "http" | "grpc" | "grpc-web" {
  if (config.rpc_impl) return config.rpc_impl as "http" | "grpc" | "grpc-web";
  return /^https?:\/\//.test(config.rpc_host) ? "http" : "grpc";
}

function createRpcClient(config: Config, keys: Keys, logger: Logger): RpcClient {
  const impl = rpcImplOf(config);
  if (impl === "http" || impl === "grpc-web") {
    if (!config.rpc_tls_verify) {
      logger.warn(
        "--rpc_tls_verify=false is not available for fetch-based RPC (http, grpc-web): " +
          "the certificate is still verified; trust it with --rpc_tls_root_ca instead",
      );
    }
    const client = createRpcHttpClient(config.rpc_tls_root_ca);
    if (impl === "http") {
      return new HttpRpcClient({
        url: config.rpc_host,
        secret: keys.rpc,
        requestTimeout: config.rpc_request_timeout,
        client,
        maxRecvSize: config.rpc_max_call_recv_size || undefined,
        maxSendSize: config.rpc_max_call_send_size || undefined,
        transport: config.rpc_http_client as "native" | "fetch",
        caCerts: config.rpc_tls_root_ca ? [loadRootCa(config.rpc_tls_root_ca)] : undefined,
      });
    }
    return new GrpcWebRpcClient({
      url: config.rpc_host,
      requestTimeout: config.rpc_request_timeout,
      mode: config.rpc_grpc_web_mode as GrpcWebMode,
      tls: config.rpc_enable_tls || config.rpc_tls_root_ca !== "",
      client,
    });
  }
  // The config only lets "http", "grpc-web" and "grpc" through.
  return new GrpcRpcClient({
    host: config.rpc_host,
    requestTimeout: config.rpc_request_timeout,
    maxRecvSize: config.rpc_max_call_recv_size || undefined,
    maxSendSize: config.rpc_max_call_send_size || undefined,
    tls: grpcTlsOptions(config),
    logger,
  });
}

/** The composition root: builds every part from the resolved config and starts serving. */
export async function startApp(
  config: Config,
  rootLogger: Logger,
  extraRoutes?: Map<string, RouteHandler>,
): Promise<App> {
  // As in the reference: every log line names the node.
  const nodeId = config.node_id || nanoid(6);
  const logger = rootLogger.child({ nodeid: nodeId });
  const keys = await resolveKeys(config);
  if (pusherEnabled(config)) pusherSecret(config); // fails before anything starts
  // Built first: a bad TLS setting fails the start before anything is listening.
  const rpcClient = config.norpc ? undefined : createRpcClient(config, keys, logger);
  const baseBroker = await createBroker(config, logger);
  await baseBroker.start();
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
  const ds = await setupDs(config, baseBroker, hub, pubsub, logger);
  const broker = ds?.broker ?? baseBroker;

  let rpc: RpcCaller | undefined;
  let controller: Controller;
  if (!rpcClient) {
    controller = new NoRpcController();
  } else {
    rpc = new RpcCaller(rpcClient, {
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
    restoreHoldTimeout: config.restore_hold_timeout,
    holdBufferSize: config.hold_buffer_size,
    // The JWT header goes to RPC too (docs/protocol.md#jwt).
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
  ds?.stats.register(metrics);
  const metricsRoute = new Map<string, RouteHandler>();
  if (config.metrics_http) {
    metricsRoute.set(config.metrics_http, () =>
      new Response(metrics.prometheus(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }));
  }
  const statsd = config.statsd_host
    ? new StatsdWriter({
      host: config.statsd_host,
      prefix: config.statsd_prefix,
      tagsFormat: config.statsd_tags_format as StatsdTagsFormat,
      maxPacketSize: config.statsd_max_packet_size,
      tags: config.metrics_tags,
      logger,
    })
    : undefined;
  if (statsd) {
    logger.info("sending statsd metrics", {
      host: config.statsd_host,
      interval: config.metrics_rotate_interval,
      prefix: config.statsd_prefix,
    });
  }
  const statsTimer = (config.metrics_log || statsd) && config.metrics_rotate_interval > 0
    ? setInterval(() => {
      const samples = metrics.rotate();
      statsd?.write(samples);
      if (config.metrics_log) {
        const filter = config.metrics_log_filter;
        const fields: Record<string, number> = {};
        for (const s of samples) {
          if (filter.length === 0 || filter.includes(s.name)) fields[s.name] = s.value;
        }
        logger.info("stats", fields);
      }
    }, config.metrics_rotate_interval * 1000)
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
  }
  const broadcastPort = httpBroadcaster
    ? (config.http_broadcast_port || (keys.broadcast ? config.port : 8090))
    : undefined;
  if (httpBroadcaster && !keys.broadcast) {
    logger.warn(
      "HTTP broadcasting is not authenticated (no --broadcast_key or --secret): " +
        `${config.http_broadcast_path} listens on port ${broadcastPort} (--http_broadcast_port)`,
    );
  }
  const mountBroadcast = httpBroadcaster !== undefined && broadcastPort === config.port;
  const broadcastEndpoint = httpBroadcaster && {
    handle: config.http_broadcast_cors
      ? withBroadcastCors((req) => httpBroadcaster!.handle(req), config.allowed_origins)
      : (req: Request) => httpBroadcaster!.handle(req),
  };
  const connLimit = new ConnLimit({
    max: config.max_conn,
    active: () => node.sessions.size,
    opensConnection: (req, path) =>
      (config.path.some((p) => pathMatches(p, path)) &&
        req.headers.get("upgrade")?.toLowerCase() === "websocket") ||
      (config.sse && path === config.sse_path && req.method !== "OPTIONS") ||
      (config.poll && path === config.poll_path && req.method === "POST" &&
        !req.headers.has("x-anycable-poll-id")),
    logger,
  });
  metrics.counter(
    "server_refused_connections_total",
    "The total number of connections refused by --max-conn",
    () => connLimit.refused,
  );

  const pusher = pusherEnabled(config)
    ? createPusher(config, {
      node,
      hub,
      broker,
      publish: (m) => publisher.publish(m),
      command: (cmd) => publisher.handleBroadcast(JSON.stringify(cmd), { fanout: false }),
      logger,
    })
    : undefined;
  const pusherApiApart = pusher !== undefined && config.pusher_api_port !== 0 &&
    config.pusher_api_port !== config.port;

  const api = apiRoutes(config, keys.api, { publisher, broker }, logger);
  const handler = createHandler({
    wsPaths: config.path,
    healthPath: config.health_path,
    ws: {
      allowedOrigins: config.allowed_origins,
      maxMessageSize: config.max_message_size,
      logger,
      idleTimeout: config.enable_native_pings ? Math.max(2, config.ping_interval * 2) : undefined,
    },
    node,
    broadcast: mountBroadcast
      ? { path: config.http_broadcast_path, broadcaster: broadcastEndpoint! }
      : undefined,
    extra: new Map([
      ...createTransportRoutes(config, node, logger),
      ...(pusher?.wsRoutes ?? []),
      ...(pusher && !pusherApiApart ? pusher.apiRoutes : []),
      ...(api && !api.port ? api.routes : []),
      ...(ds ? ds.routes(node, controller, keys.api) : []),
      ...(config.metrics_port && config.metrics_port !== config.port ? [] : metricsRoute),
      ...(extraRoutes ?? []),
    ]),
    logger,
  });
  const tls = config.ssl_cert ? readTls(config.ssl_cert, config.ssl_key) : undefined;
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  let broadcastServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  let metricsServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    server = listen(config.host, config.port, connLimit.wrap(handler), "--port", tls);
    if (httpBroadcaster && !mountBroadcast) {
      broadcastServer = listen(
        config.host,
        broadcastPort!,
        createBroadcastHandler(config.http_broadcast_path, broadcastEndpoint!, config.health_path),
        "--http_broadcast_port",
        tls,
        config.http_broadcast_port ? "" : BROADCAST_PORT_HINT,
      );
    }
    if (config.metrics_http && config.metrics_port && config.metrics_port !== config.port) {
      metricsServer = listen(
        config.metrics_host || config.host,
        config.metrics_port,
        (req) => {
          const route = metricsRoute.get(new URL(req.url).pathname);
          return route ? route(req, "") : new Response("not found\n", { status: 404 });
        },
        "--metrics_port",
        tls,
      );
    }
  } catch (err) {
    // Nothing serves yet: release what started (listeners, adapters) before reporting.
    await Promise.all([server?.shutdown(), broadcastServer?.shutdown()]);
    for (const b of broadcasters) await b.close().catch(() => {});
    await httpBroadcaster?.close();
    await node.shutdown(0);
    await pubsub.close().catch(() => {});
    await broker.close().catch(() => {});
    await rpc?.close();
    clearInterval(statsTimer);
    throw err;
  }
  const port = server.addr.port;
  let pusherServer: Deno.HttpServer<Deno.NetAddr> | undefined;
  if (pusher && pusherApiApart) {
    pusherServer = listen(
      config.host,
      config.pusher_api_port,
      (req) => {
        const route = prefixRoute(pusher.apiRoutes, new URL(req.url).pathname);
        return route ? route(req, "") : new Response("not found\n", { status: 404 });
      },
      "--pusher_api_port",
      tls,
    );
  }
  const pusherApiPort = pusher ? (pusherServer?.addr.port ?? port) : undefined;
  const apiServer = api?.port
    ? listen(config.host, api.port, api.handler, "--api_port", tls)
    : undefined;
  if (api) {
    logger.info("Handle API requests", {
      url: `http://${config.host}:${apiServer?.addr.port ?? port}${config.api_path}`,
      auth: keys.api ? "authorization required" : "no authorization",
    });
    if (!keys.api) logger.warn("API server is running without authentication");
  }
  const actualBroadcastPort = broadcastServer
    ? broadcastServer.addr.port
    : (mountBroadcast ? port : undefined);
  logger.info("Cableway is listening", {
    addr: `${config.host}:${port}`,
    tls: tls ? true : undefined,
    ws: config.path.join(","),
    broadcast: actualBroadcastPort
      ? `${
        tls ? "https" : "http"
      }://${config.host}:${actualBroadcastPort}${config.http_broadcast_path}`
      : undefined,
    rpc: config.norpc ? "none" : config.rpc_host,
    rpc_impl: rpcClient?.name,
    broker: broker.name,
    pubsub: pubsub.name,
  });
  if (pusher) {
    logger.info("Pusher is on", {
      ws: `ws://${config.host}:${port}${pusher.wsPath}`,
      api: `http://${config.host}:${pusherApiPort}${pusher.apiPath}`,
    });
  }

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      if (config.shutdown_delay > 0) {
        // Load balancers notice the instance going away while it still serves.
        logger.info("shutdown delay: still serving", { seconds: config.shutdown_delay });
        await new Promise((r) => setTimeout(r, config.shutdown_delay * 1000));
      }
      logger.info("shutting down", { sessions: node.sessions.size });
      clearInterval(statsTimer);
      statsd?.close();
      pusher?.close();
      for (const b of broadcasters) await b.close().catch(() => {});
      await httpBroadcaster?.close();
      await node.shutdown(config.shutdown_timeout * 1000);
      // One turn for the sockets' own close frames (e.g. Pusher's 4200) to go out before the
      // HTTP server closes what is left with 1001.
      await new Promise((r) => setTimeout(r, 0));
      await ds?.close().catch(() => {});
      await Promise.race([
        Promise.all([
          server.shutdown(),
          broadcastServer?.shutdown(),
          metricsServer?.shutdown(),
          pusherServer?.shutdown(),
          apiServer?.shutdown(),
        ]),
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
    nodeId,
    pusherApiPort,
    apiPort: api ? apiServer?.addr.port ?? port : undefined,
    node,
    publisher,
    rpc,
    metrics,
    shutdown,
  };
}

const BROADCAST_PORT_HINT =
  "without --broadcast_key or --secret the HTTP broadcast endpoint listens on port 8090 of its own";

interface Tls {
  cert: string;
  key: string;
}

/** `--ssl_cert` / `--ssl_key`: PEM files, read once at start; a bad path names the file. */
function readTls(certPath: string, keyPath: string): Tls {
  const read = (path: string, what: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  return {
    cert: read(certPath, "certificate (--ssl_cert)"),
    key: read(keyPath, "key (--ssl_key)"),
  };
}

function listen(
  hostname: string,
  port: number,
  handler: Deno.ServeHandler,
  flag: string,
  tls?: Tls,
  hint = "",
): Deno.HttpServer<Deno.NetAddr> {
  // Binding happens synchronously: a busy port throws here; the error names the port and flag.
  try {
    return Deno.serve({
      hostname,
      port,
      ...(tls ?? {}),
      onListen: () => {},
      onError: (err) => {
        console.error("request handler failed", err);
        return new Response("internal error\n", { status: 500 });
      },
    }, handler);
  } catch (err) {
    throw new ListenError(hostname, port, flag, err, hint);
  }
}
