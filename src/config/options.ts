/**
 * The one option table: flags, ANYCABLE_* env vars, defaults and --help all come from here.
 * Names match AnyCable-Go; `--some_flag` and `--some-flag` are both accepted.
 */

export type OptionType = "string" | "int" | "float" | "bool" | "list";

export interface OptionSpec<T> {
  readonly type: OptionType;
  readonly default: T;
  readonly help: string;
  readonly group: string;
  /** Extra env var names, checked after ANYCABLE_<NAME>. */
  readonly env?: readonly string[];
  /** Accepted values of an int or float option (default: NON_NEGATIVE). */
  readonly range?: Range;
}

/** Inclusive bounds of a numeric option, checked for flags and env vars alike. */
export interface Range {
  readonly min: number;
  readonly max: number;
}

/** The rule for every numeric option that names no range of its own. */
export const NON_NEGATIVE: Range = { min: 0, max: 2 ** 31 - 1 };
/** A TCP port; 0 asks the system for a free one. */
export const PORT: Range = { min: 0, max: 65535 };
/** Seconds that become a timer (setTimeout takes at most 2^31-1 ms). */
export const SECONDS: Range = { min: 0, max: 2_147_483 };
export const AT_LEAST_ONE: Range = { min: 1, max: 2 ** 31 - 1 };
export const PERCENT: Range = { min: 0, max: 100 };

const str = (def: string, group: string, help: string, env?: string[]): OptionSpec<string> => ({
  type: "string",
  default: def,
  group,
  help,
  env,
});
const int = (
  def: number,
  group: string,
  help: string,
  env?: string[],
  range: Range = NON_NEGATIVE,
): OptionSpec<number> => ({ type: "int", default: def, group, help, env, range });
const bool = (def: boolean, group: string, help: string): OptionSpec<boolean> => ({
  type: "bool",
  default: def,
  group,
  help,
});
const list = (def: string[], group: string, help: string): OptionSpec<string[]> => ({
  type: "list",
  default: def,
  group,
  help,
});

export const OPTIONS = {
  // Server
  host: str("localhost", "server", "Host to listen on"),
  port: int(8080, "server", "Port to listen on (0 = any free port)", ["PORT"], PORT),
  path: list(["/cable"], "server", "WebSocket endpoint path(s), comma-separated"),
  health_path: str("/health", "server", "Health check endpoint path"),
  allowed_origins: list([], "server", "Allowed Origin hosts (comma list, *.suffix allowed)"),
  max_message_size: int(
    65536,
    "server",
    "Maximum inbound WebSocket message size (bytes)",
    undefined,
    AT_LEAST_ONE,
  ),
  ws_max_pending_size: int(1048576, "server", "Per-client outbound buffer limit (bytes)"),
  ws_write_timeout: int(
    2,
    "server",
    "Disconnect a WebSocket client (too_slow) whose socket takes nothing for this long (seconds, 0 = off)",
    undefined,
    SECONDS,
  ),
  shutdown_timeout: int(30, "server", "Graceful shutdown timeout (seconds)", undefined, SECONDS),
  presets: list(
    [],
    "server",
    "Configuration presets: broker, fly, heroku (detected from their env), none",
  ),
  max_conn: int(0, "server", "Refuse connections beyond this many (503, 0 = no limit)"),
  shutdown_delay: int(0, "server", "Seconds to keep serving after a stop signal (load balancers)"),
  node_id: str("", "server", "Node identifier in logs and metrics (random when empty)"),
  ssl_cert: str("", "server", "TLS certificate file (PEM): serve HTTPS/WSS with --ssl_key"),
  ssl_key: str("", "server", "TLS private key file (PEM)"),
  enable_ws_compression: bool(false, "server", "permessage-deflate (not available on Deno)"),
  read_buffer_size: int(1024, "server", "Go socket read buffer (no effect on Deno)"),
  write_buffer_size: int(1024, "server", "Go socket write buffer (no effect on Deno)"),
  hub_gopool_size: int(16, "server", "Go broadcast goroutine pool (no effect on Deno)"),
  shutdown_pool_size: int(16, "server", "Go shutdown goroutine pool (no effect on Deno)"),

  // SSE and long polling
  sse: bool(false, "transports", "Enable Server-Sent Events"),
  sse_path: str("/events", "transports", "SSE endpoint path"),
  poll: bool(false, "transports", "Enable long polling"),
  poll_path: str("/lp", "transports", "Long-polling endpoint path"),
  poll_interval: int(
    15,
    "transports",
    "Longest a poll request is held open (seconds)",
    undefined,
    SECONDS,
  ),
  poll_flush_interval: int(500, "transports", "Outgoing buffering before a poll answers (ms)"),
  poll_keepalive_timeout: int(
    5,
    "transports",
    "Session lifetime after the last poll (seconds)",
    undefined,
    SECONDS,
  ),
  poll_max_request_size: int(
    65536,
    "transports",
    "Largest poll request body (bytes)",
    undefined,
    AT_LEAST_ONE,
  ),

  // Protocol
  ping_interval: int(3, "protocol", "Ping interval (seconds)", undefined, SECONDS),
  ping_timestamp_precision: str("s", "protocol", "Ping timestamp precision (s, ms, ns)"),
  pong_timeout: int(
    0,
    "protocol",
    "Pong timeout for extended-protocol clients (seconds, 0 = off)",
    undefined,
    SECONDS,
  ),
  enable_native_pings: bool(
    false,
    "protocol",
    "Also send WebSocket ping frames every ping_interval",
  ),

  // RPC
  rpc_host: str("localhost:50051", "rpc", "RPC service address (http(s)://... for HTTP RPC)"),
  rpc_impl: str("", "rpc", "RPC implementation (http, grpc, grpc-web); by rpc_host when empty"),
  rpc_enable_tls: bool(false, "rpc", "Connect to the gRPC backend over TLS"),
  rpc_tls_root_ca: str(
    "",
    "rpc",
    "Root CA for the RPC server's certificate: a PEM file path or PEM text (gRPC, gRPC-web and https:// HTTP RPC)",
  ),
  rpc_tls_verify: bool(true, "rpc", "Verify the RPC server's TLS certificate"),
  http_rpc_secret: str("", "rpc", "HTTP RPC authentication key (derived from --secret if empty)"),
  rpc_request_timeout: int(3000, "rpc", "RPC request timeout (milliseconds; 0 = the default)"),
  rpc_concurrency: int(
    28,
    "rpc",
    "Maximum number of concurrent RPC calls",
    undefined,
    AT_LEAST_ONE,
  ),
  rpc_grpc_web_mode: str(
    "binary",
    "rpc",
    "gRPC-web request encoding: binary (application/grpc-web+proto) or text (base64)",
  ),
  rpc_http_client: str(
    "native",
    "rpc",
    "HTTP RPC client: native (Cableway's own HTTP/1.1 keep-alive client) or fetch (the runtime's)",
  ),
  headers: list(["cookie"], "rpc", "Request headers forwarded to RPC (comma list)"),
  proxy_cookies: list([], "rpc", "Cookie names forwarded to RPC (all when empty)"),
  disconnect_mode: str("auto", "rpc", "When to call Disconnect RPC: auto, always, never"),
  disconnect_rate: int(100, "rpc", "Maximum Disconnect RPC calls per second"),
  disconnect_backlog_size: int(4096, "rpc", "Disconnect queue capacity"),
  norpc: bool(false, "rpc", "Run without an RPC backend"),
  rpc_command_timeout: int(
    3000,
    "rpc",
    "Deprecated by the reference; RPC calls use rpc_request_timeout",
  ),
  http_rpc_timeout: int(0, "rpc", "Deprecated: HTTP RPC timeout (ms); use --rpc_request_timeout"),
  rpc_max_call_recv_size: int(
    0,
    "rpc",
    "Largest RPC response accepted (bytes; 0 = 16 MiB gRPC, no limit HTTP)",
  ),
  rpc_max_call_send_size: int(0, "rpc", "Largest RPC request sent (bytes; 0 = no limit)"),
  disconnect_timeout: int(0, "rpc", "Deprecated: use --shutdown_timeout"),
  disable_disconnect: bool(false, "rpc", "Deprecated: same as --disconnect_mode=never"),

  // Pusher protocol (on when both the app id and the app key are set)
  pusher_app_id: str(
    "",
    "pusher",
    "Pusher app id: HTTP API at /apps/<id>/ (with the key: Pusher on)",
  ),
  pusher_app_key: str(
    "",
    "pusher",
    "Pusher app key: WebSocket at /app/<key> (with the id: Pusher on)",
  ),
  pusher_secret: str(
    "",
    "pusher",
    "Pusher app secret: channel auth and API signatures (or --secret)",
  ),
  pusher_api_port: int(0, "pusher", "Pusher HTTP API port (0 = the main port)"),

  // Secrets and standalone mode
  secret: str("", "auth", "Application secret: JWT/streams key and source of derived keys"),
  noauth: bool(false, "auth", "Accept every connection without authentication"),
  public: bool(false, "auth", "No auth, public streams, unauthenticated broadcasts (unsafe)"),
  jwt_secret: str("", "auth", "JWT verification key (defaults to --secret)"),
  jwt_param: str("jid", "auth", "JWT query parameter / header name (x-<param>)"),
  enforce_jwt: bool(false, "auth", "Reject connections without a JWT"),
  jwt_id_key: str("", "auth", "Deprecated: use --jwt_secret"),
  jwt_id_param: str("", "auth", "Deprecated: use --jwt_param"),
  jwt_id_enforce: bool(false, "auth", "Deprecated: use --enforce_jwt"),
  public_streams: bool(false, "streams", "Allow unsigned $pubsub stream subscriptions"),
  streams_secret: str("", "streams", "Signed streams key (defaults to --secret)"),
  streams_whisper: bool(false, "streams", "Allow whispers on signed streams"),
  streams_presence: bool(true, "streams", "Allow presence on signed streams"),
  turbo_streams: bool(false, "streams", "Handle Turbo::StreamsChannel in the server"),
  turbo_streams_secret: str("", "streams", "Turbo signed streams key (defaults to streams key)"),
  cable_ready: bool(false, "streams", "Handle CableReady::Stream in the server"),
  cable_ready_secret: str("", "streams", "CableReady signed streams key (defaults to streams key)"),
  turbo_rails_key: str(
    "",
    "streams",
    "Deprecated: use --turbo_streams_secret (turns on --turbo_streams)",
  ),
  turbo_rails_cleartext: bool(false, "streams", "Deprecated, no effect: use public streams"),
  cable_ready_key: str(
    "",
    "streams",
    "Deprecated: use --cable_ready_secret (turns on --cable_ready)",
  ),
  cable_ready_cleartext: bool(false, "streams", "Deprecated, no effect: use public streams"),

  // Broadcasting
  broadcast_adapter: list(["http"], "broadcast", "Broadcast adapters (http, redis, redisx, nats)"),
  broadcast_key: str("", "broadcast", "HTTP broadcast key (derived from --secret; none = off)"),
  http_broadcast_port: int(
    0,
    "broadcast",
    "HTTP broadcast port (0 = main port, or 8090 unsecured)",
    undefined,
    PORT,
  ),
  http_broadcast_path: str("/_broadcast", "broadcast", "HTTP broadcast endpoint path"),
  http_broadcast_secret: str("", "broadcast", "Deprecated: use --broadcast_key"),
  http_broadcast_cors: bool(false, "broadcast", "CORS headers on the HTTP broadcast endpoint"),
  redis_url: str("redis://localhost:6379", "broadcast", "Redis URL", ["REDIS_URL"]),
  redis_sentinels: str(
    "",
    "broadcast",
    "Sentinels host:port,... (the URL's host is the master name)",
  ),
  redis_sentinel_discovery_interval: int(
    30,
    "broadcast",
    "Sentinel rediscovery interval (seconds)",
  ),
  redis_keepalive_interval: int(30, "broadcast", "PING Redis this often (seconds, 0 = off)"),
  redis_tls_verify: bool(false, "broadcast", "Verify the rediss:// server certificate"),
  redis_tls_ca_cert_path: str("", "broadcast", "CA certificate (PEM) for the Redis server"),
  redis_tls_client_cert_path: str("", "broadcast", "Client certificate (PEM) for Redis mTLS"),
  redis_tls_client_key_path: str("", "broadcast", "Client key (PEM) for Redis mTLS"),
  redis_disable_cache: bool(
    false,
    "broadcast",
    "Disable client-side caching (Cableway never uses it)",
  ),
  redis_channel: str("__anycable__", "broadcast", "Redis pub/sub broadcast channel"),
  redisx_stream: str("__anycable__", "broadcast", "Redis Streams broadcast stream"),
  redisx_group: str("bx", "broadcast", "Redis Streams broadcast consumer group"),
  redisx_read_block_milliseconds: int(2000, "broadcast", "Redis Streams XREADGROUP block (ms)"),
  nats_servers: str("nats://127.0.0.1:4222", "broadcast", "NATS servers (comma list)", [
    "NATS_URL",
  ]),
  nats_channel: str("__anycable__", "broadcast", "NATS broadcast subject"),
  nats_dont_randomize_servers: bool(false, "broadcast", "Try NATS servers in the given order"),
  pubsub: str(
    "",
    "broadcast",
    "Pub/sub between nodes (redis, nats, kv, none); empty = from broker/redisx/redis_url",
  ),

  // REST API
  api_port: int(0, "api", "REST API port (0 = the main port)"),
  api_path: str(
    "/api",
    "api",
    "REST API base path (<path>/publish, <path>/presence/<stream>/users)",
  ),
  api_secret: str(
    "",
    "api",
    "REST API bearer key (derived from --secret if empty; none = no auth). The API is mounted when a key or --api_port is set, or with --public",
  ),

  // Durable Streams
  ds: bool(false, "ds", "Serve the Durable Streams protocol (reads, writes, live modes)"),
  ds_path: str("/ds", "ds", "Durable Streams path (<path>/<stream>)"),
  ds_skip_auth: bool(
    false,
    "ds",
    "Durable Streams reads: authorize the stream only, not the client",
  ),
  ds_poll_interval: int(10, "ds", "Durable Streams long-poll hold time (seconds)"),
  ds_sse_ttl: int(60, "ds", "Longest a Durable Streams SSE response stays open (seconds)"),
  ds_write_key: str(
    "",
    "ds",
    "Bearer key for Durable Streams writes (defaults to the REST API key; none = no auth; open with --public)",
  ),
  ds_max_append_size: int(524288, "ds", "Largest Durable Streams append or create body (bytes)"),

  // Broker
  broker: str("", "broker", "Broker (memory, kv, redis, nats); empty = none"),
  kv_path: str("", "broker", "Deno KV database path for --broker=kv (:memory: allowed)"),
  history_limit: int(100, "broker", "Messages kept per stream (size it: rate × reconnect time)"),
  history_ttl: int(300, "broker", "Seconds a message is kept"),
  sessions_ttl: int(300, "broker", "Seconds a disconnected session can be restored"),
  presence_ttl: int(
    15,
    "broker",
    "Seconds a disconnected session stays present",
    undefined,
    SECONDS,
  ),

  // Delivery holds (restore, history replay, gap fill)
  restore_hold_timeout: int(
    3000,
    "broker",
    "Ms a restored subscription holds live messages until the client asks for its history",
  ),
  hold_buffer_size: int(
    1048576,
    "broker",
    "Bytes of live messages one held subscription may keep; past it: disconnect (hold_overflow)",
  ),

  // Metrics
  metrics_http: str("", "metrics", "Prometheus endpoint path, e.g. /metrics (off when empty)"),
  metrics_port: int(0, "metrics", "Metrics port (0 = the main port)", undefined, PORT),
  metrics_host: str("", "metrics", "Metrics host (defaults to --host)"),
  metrics_tags: list([], "metrics", "Labels added to every metric (key:value, comma list)"),
  metrics_log: bool(false, "metrics", "Log the metrics every --metrics_rotate_interval"),
  stats_refresh_interval: int(
    5,
    "metrics",
    "Accepted for compatibility: Cableway reads gauges live (seconds)",
  ),
  metrics_rotate_interval: int(
    15,
    "metrics",
    "How often metrics are logged / sent to statsd (seconds)",
  ),
  metrics_log_interval: int(0, "metrics", "Deprecated: use --metrics_rotate_interval"),
  metrics_log_filter: list([], "metrics", "Metric names printed by --metrics_log (all when empty)"),
  metrics_log_formatter: str("", "metrics", "mruby formatter script (not available on Deno)"),
  statsd_host: str("", "metrics", "Send metrics to statsd over UDP at host:port (off when empty)"),
  statsd_prefix: str("anycable_go.", "metrics", "Statsd metric name prefix"),
  statsd_max_packet_size: int(1400, "metrics", "Largest statsd UDP packet (bytes)"),
  statsd_tags_format: str("datadog", "metrics", "Statsd tags format: datadog, influxdb, graphite"),

  // Logging
  log_level: str("info", "log", "Log level (debug, info, warn, error)"),
  log_format: str("text", "log", "Log format (text, json)"),
  debug: bool(false, "log", "Shortcut for --log_level=debug"),

  // Embedded NATS (a Go library: not available on Deno; run nats-server and use --nats_servers)
  embed_nats: bool(false, "embedded nats", "Embedded NATS server (not available on Deno)"),
  enats_addr: str("nats://127.0.0.1:4222", "embedded nats", "Embedded NATS address (no effect)"),
  enats_cluster: str("", "embedded nats", "Embedded NATS cluster address (no effect)"),
  enats_cluster_name: str(
    "anycable-cluster",
    "embedded nats",
    "Embedded NATS cluster name (no effect)",
  ),
  enats_cluster_routes: list([], "embedded nats", "Embedded NATS cluster routes (no effect)"),
  enats_gateway: str("", "embedded nats", "Embedded NATS gateway address (no effect)"),
  enats_gateways: str("", "embedded nats", "Embedded NATS gateways (no effect)"),
  enats_gateway_advertise: str("", "embedded nats", "Embedded NATS gateway advertise (no effect)"),
  enats_store_dir: str("", "embedded nats", "Embedded NATS JetStream directory (no effect)"),
  enats_server_name: str("", "embedded nats", "Embedded NATS server name (no effect)"),
  enats_debug: bool(false, "embedded nats", "Embedded NATS logs (no effect)"),
  enats_trace: bool(false, "embedded nats", "Embedded NATS trace logs (no effect)"),
  enats_max_payload: int(0, "embedded nats", "Embedded NATS max payload (no effect)"),
} as const;

export type OptionName = keyof typeof OPTIONS;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;

/** The resolved, read-only configuration. */
export type Config = { readonly [K in OptionName]: ValueOf<typeof OPTIONS[K]> };

export function envNames(name: OptionName): string[] {
  const spec: OptionSpec<unknown> = OPTIONS[name];
  return [`ANYCABLE_${name.toUpperCase()}`, ...(spec.env ?? [])];
}
