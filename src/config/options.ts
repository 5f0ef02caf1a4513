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
}

const str = (def: string, group: string, help: string, env?: string[]): OptionSpec<string> => ({
  type: "string",
  default: def,
  group,
  help,
  env,
});
const int = (def: number, group: string, help: string, env?: string[]): OptionSpec<number> => ({
  type: "int",
  default: def,
  group,
  help,
  env,
});
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
  port: int(8080, "server", "Port to listen on", ["PORT"]),
  path: list(["/cable"], "server", "WebSocket endpoint path(s), comma-separated"),
  health_path: str("/health", "server", "Health check endpoint path"),
  allowed_origins: list([], "server", "Allowed Origin hosts (comma list, *.suffix allowed)"),
  max_message_size: int(65536, "server", "Maximum inbound WebSocket message size (bytes)"),
  ws_max_pending_size: int(1048576, "server", "Per-client outbound buffer limit (bytes)"),
  ws_write_timeout: int(
    2,
    "server",
    "Disconnect a WebSocket client (too_slow) whose socket takes nothing for this long (seconds, 0 = off)",
  ),
  shutdown_timeout: int(30, "server", "Graceful shutdown timeout (seconds)"),
  presets: list([], "server", "Configuration presets (broker: fills broker/pubsub/adapters)"),

  // SSE and long polling
  sse: bool(false, "transports", "Enable Server-Sent Events"),
  sse_path: str("/events", "transports", "SSE endpoint path"),
  poll: bool(false, "transports", "Enable long polling"),
  poll_path: str("/lp", "transports", "Long-polling endpoint path"),
  poll_interval: int(15, "transports", "Longest a poll request is held open (seconds)"),
  poll_flush_interval: int(500, "transports", "Outgoing buffering before a poll answers (ms)"),
  poll_keepalive_timeout: int(5, "transports", "Session lifetime after the last poll (seconds)"),
  poll_max_request_size: int(65536, "transports", "Largest poll request body (bytes)"),

  // Protocol
  ping_interval: int(3, "protocol", "Ping interval (seconds)"),
  ping_timestamp_precision: str("s", "protocol", "Ping timestamp precision (s, ms, ns)"),
  pong_timeout: int(0, "protocol", "Pong timeout for extended-protocol clients (seconds, 0 = off)"),

  // RPC
  rpc_host: str("localhost:50051", "rpc", "RPC service address (http(s)://... for HTTP RPC)"),
  rpc_impl: str("", "rpc", "RPC implementation (http, grpc); picked from rpc_host when empty"),
  http_rpc_secret: str("", "rpc", "HTTP RPC authentication key (derived from --secret if empty)"),
  rpc_request_timeout: int(3000, "rpc", "RPC request timeout (milliseconds)"),
  rpc_concurrency: int(28, "rpc", "Maximum number of concurrent RPC calls"),
  headers: list(["cookie"], "rpc", "Request headers forwarded to RPC (comma list)"),
  proxy_cookies: list([], "rpc", "Cookie names forwarded to RPC (all when empty)"),
  disconnect_mode: str("auto", "rpc", "When to call Disconnect RPC: auto, always, never"),
  disconnect_rate: int(100, "rpc", "Maximum Disconnect RPC calls per second"),
  disconnect_backlog_size: int(4096, "rpc", "Disconnect queue capacity"),
  norpc: bool(false, "rpc", "Run without an RPC backend"),

  // Secrets and standalone mode
  secret: str("", "auth", "Application secret: JWT/streams key and source of derived keys"),
  noauth: bool(false, "auth", "Accept every connection without authentication"),
  public: bool(false, "auth", "No auth, public streams, unauthenticated broadcasts (unsafe)"),
  jwt_secret: str("", "auth", "JWT verification key (defaults to --secret)"),
  jwt_param: str("jid", "auth", "JWT query parameter / header name (x-<param>)"),
  enforce_jwt: bool(false, "auth", "Reject connections without a JWT"),
  public_streams: bool(false, "streams", "Allow unsigned $pubsub stream subscriptions"),
  streams_secret: str("", "streams", "Signed streams key (defaults to --secret)"),
  streams_whisper: bool(false, "streams", "Allow whispers on signed streams"),
  streams_presence: bool(true, "streams", "Allow presence on signed streams"),
  turbo_streams: bool(false, "streams", "Handle Turbo::StreamsChannel in the server"),
  turbo_streams_secret: str("", "streams", "Turbo signed streams key (defaults to streams key)"),
  cable_ready: bool(false, "streams", "Handle CableReady::Stream in the server"),
  cable_ready_secret: str("", "streams", "CableReady signed streams key (defaults to streams key)"),

  // Broadcasting
  broadcast_adapter: list(["http"], "broadcast", "Broadcast adapters (http, redis, redisx, nats)"),
  broadcast_key: str("", "broadcast", "HTTP broadcast key (derived from --secret; none = off)"),
  http_broadcast_port: int(
    0,
    "broadcast",
    "HTTP broadcast port (0 = main port, or 8090 unsecured)",
  ),
  http_broadcast_path: str("/_broadcast", "broadcast", "HTTP broadcast endpoint path"),
  redis_url: str("redis://localhost:6379", "broadcast", "Redis URL", ["REDIS_URL"]),
  redis_channel: str("__anycable__", "broadcast", "Redis pub/sub broadcast channel"),
  redisx_stream: str("__anycable__", "broadcast", "Redis Streams broadcast stream"),
  nats_servers: str("nats://127.0.0.1:4222", "broadcast", "NATS servers (comma list)", [
    "NATS_URL",
  ]),
  nats_channel: str("__anycable__", "broadcast", "NATS broadcast subject"),
  pubsub: str(
    "",
    "broadcast",
    "Pub/sub between nodes (redis, nats, kv, none); empty = from broker/redisx/redis_url",
  ),

  // Broker
  broker: str("", "broker", "Broker (memory, kv, redis, nats); empty = none"),
  kv_path: str("", "broker", "Deno KV database path for --broker=kv (:memory: allowed)"),
  history_limit: int(100, "broker", "Messages kept per stream (size it: rate × reconnect time)"),
  history_ttl: int(300, "broker", "Seconds a message is kept"),
  sessions_ttl: int(300, "broker", "Seconds a disconnected session can be restored"),
  presence_ttl: int(15, "broker", "Seconds a disconnected session stays present"),

  // Metrics
  metrics_http: str("", "metrics", "Prometheus endpoint path, e.g. /metrics (off when empty)"),
  metrics_port: int(0, "metrics", "Metrics port (0 = the main port)"),
  metrics_host: str("", "metrics", "Metrics host (defaults to --host)"),
  metrics_tags: list([], "metrics", "Labels added to every metric (key:value, comma list)"),
  metrics_log: bool(false, "metrics", "Log a stats summary every --stats_refresh_interval"),
  stats_refresh_interval: int(5, "metrics", "Stats summary interval (seconds)"),

  // Logging
  log_level: str("info", "log", "Log level (debug, info, warn, error)"),
  log_format: str("text", "log", "Log format (text, json)"),
  debug: bool(false, "log", "Shortcut for --log_level=debug"),
} as const;

export type OptionName = keyof typeof OPTIONS;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;

/** The resolved, read-only configuration. */
export type Config = { readonly [K in OptionName]: ValueOf<typeof OPTIONS[K]> };

export function envNames(name: OptionName): string[] {
  const spec: OptionSpec<unknown> = OPTIONS[name];
  return [`ANYCABLE_${name.toUpperCase()}`, ...(spec.env ?? [])];
}
