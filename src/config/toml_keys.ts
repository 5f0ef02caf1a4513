/**
 * Where each option lives in `anycable.toml`: the sections and key names of AnyCable-Go's
 * configuration file (what its `--print-config` writes), so a reference file loads unchanged.
 * Options with no place there (Cableway's own) are top-level keys named like the flag; every
 * option may also be given as a top-level key named like the flag, and `[section] key` not
 * listed here reaches the option `section_key` when there is one (`[api] port` -> `api_port`).
 */
import type { OptionName } from "./options.ts";

export const TOML_KEYS: Partial<Record<OptionName, string>> = {
  node_id: "node_id",
  secret: "secret",
  broadcast_key: "broadcast_key",
  noauth: "noauth",
  public: "public",
  broadcast_adapter: "broadcast_adapters",
  pubsub: "pubsub_adapter",
  presets: "presets",

  log_level: "logging.level",
  log_format: "logging.format",
  debug: "logging.debug",

  host: "server.host",
  port: "server.port",
  allowed_origins: "server.allowed_origins",
  max_conn: "server.max_conn",
  health_path: "server.health_path",
  ssl_cert: "server.ssl.cert_path",
  ssl_key: "server.ssl.key_path",

  disconnect_mode: "app.disconnect_mode",
  shutdown_pool_size: "app.shutdown_disconnect_gopool_size",
  ping_interval: "app.ping_interval",
  stats_refresh_interval: "app.stats_refresh_interval",
  hub_gopool_size: "app.broadcast_gopool_size",
  ping_timestamp_precision: "app.ping_timestamp_precision",
  pong_timeout: "app.pong_timeout",
  enable_native_pings: "app.enable_native_ping",
  shutdown_timeout: "app.shutdown_timeout",
  shutdown_delay: "app.shutdown_delay",

  path: "ws.paths",
  read_buffer_size: "ws.read_buffer_size",
  write_buffer_size: "ws.write_buffer_size",
  max_message_size: "ws.max_message_size",
  ws_write_timeout: "ws.write_timeout",
  ws_max_pending_size: "ws.max_pending_size",
  enable_ws_compression: "ws.enable_compression",

  rpc_host: "rpc.host",
  headers: "rpc.proxy_headers",
  proxy_cookies: "rpc.proxy_cookies",
  rpc_concurrency: "rpc.concurrency",
  rpc_max_call_recv_size: "rpc.max_recv_size",
  rpc_max_call_send_size: "rpc.max_send_size",
  rpc_impl: "rpc.implementation",
  http_rpc_secret: "rpc.secret",
  rpc_request_timeout: "rpc.request_timeout",
  rpc_command_timeout: "rpc.command_timeout",
  http_rpc_timeout: "rpc.http_request_timeout",

  broker: "broker.adapter",
  history_ttl: "broker.history_ttl",
  history_limit: "broker.history_limit",
  sessions_ttl: "broker.sessions_ttl",
  presence_ttl: "broker.presence_ttl",

  redis_url: "redis.url",
  redis_sentinels: "redis.sentinels",
  redis_sentinel_discovery_interval: "redis.sentinel_discovery_interval",
  redis_keepalive_interval: "redis.keepalive_ping_interval",
  redis_tls_verify: "redis.tls_verify",
  redis_tls_ca_cert_path: "redis.tls_ca_cert_path",
  redis_tls_client_cert_path: "redis.tls_client_cert_path",
  redis_tls_client_key_path: "redis.tls_client_key_path",
  redis_disable_cache: "redis.disable_cache",

  nats_servers: "nats.servers",
  nats_dont_randomize_servers: "nats.dont_randomize_servers",

  http_broadcast_port: "http_broadcast.port",
  http_broadcast_path: "http_broadcast.path",
  http_broadcast_secret: "http_broadcast.secret",
  http_broadcast_cors: "http_broadcast.cors_headers",
  redisx_stream: "redis_stream_broadcast.stream",
  redisx_group: "redis_stream_broadcast.group",
  redisx_read_block_milliseconds: "redis_stream_broadcast.stream_read_block_milliseconds",
  redis_channel: "redis_pubsub_broadcast.channel",
  nats_channel: "nats_broadcast.channel",

  metrics_log: "metrics.log",
  metrics_rotate_interval: "metrics.rotate_interval",
  metrics_log_filter: "metrics.log_filter",
  metrics_http: "metrics.http_path",
  metrics_host: "metrics.host",
  metrics_port: "metrics.port",
  metrics_tags: "metrics.tags",
  statsd_host: "metrics.statsd.host",
  statsd_prefix: "metrics.statsd.prefix",
  statsd_tags_format: "metrics.statsd.tags_format",
  statsd_max_packet_size: "metrics.statsd.max_packet_size",

  disconnect_rate: "disconnector.rate",
  disconnect_backlog_size: "disconnector.backlog",

  jwt_secret: "jwt.secret",
  jwt_param: "jwt.param",
  enforce_jwt: "jwt.force",

  sse: "sse.enabled",
  sse_path: "sse.path",

  streams_secret: "streams.secret",
  public_streams: "streams.public",
  streams_whisper: "streams.whisper",
  streams_presence: "streams.presence",
  turbo_streams: "streams.turbo",
  turbo_streams_secret: "streams.turbo_secret",
  cable_ready: "streams.cable_ready",
  cable_ready_secret: "streams.cable_ready_secret",

  embed_nats: "embedded_nats.enabled",
  enats_debug: "embedded_nats.debug",
  enats_trace: "embedded_nats.trace",
  enats_server_name: "embedded_nats.name",
  enats_addr: "embedded_nats.service_addr",
  enats_cluster: "embedded_nats.cluster_addr",
  enats_cluster_name: "embedded_nats.cluster_name",
  enats_gateway: "embedded_nats.gateway_addr",
  enats_gateway_advertise: "embedded_nats.gateway_advertise",
  enats_gateways: "embedded_nats.gateways",
  enats_cluster_routes: "embedded_nats.routes",
  enats_store_dir: "embedded_nats.jetstream_store_dir",
  enats_max_payload: "embedded_nats.max_payload",
};

/**
 * Keys the reference's file has that set nothing on their own here (they have no flag there
 * either); accepted without a warning.
 */
export const TOML_IGNORED = new Set([
  "redis.max_reconnect_attempts",
  "nats.max_reconnect_attempts",
  "http_broadcast.cors_hosts",
  "redis_pubsub.channel",
  "nats_pubsub.channel",
  "streams.pubsub_channel",
  "embedded_nats.jetstream",
  "embedded_nats.jetstream_ready_timeout",
]);

/** `metrics.http` is what the reference's `--print-config` writes for `metrics.http_path`. */
export const TOML_ALIASES: Record<string, string> = {
  "metrics.http": "metrics.http_path",
  "ds.enabled": "ds",
};
