/**
 * AnyCable-Go options that cannot mean anything on Deno, and deprecated aliases. Each is
 * accepted (a deployment's command line starts unchanged) unless it asks for something
 * Cableway cannot do; a value other than the default gets one message that says why and what
 * to use instead.
 */
import type { OptionName } from "./options.ts";

export interface NotOnDeno {
  /** Why the option has no effect here, and what to use instead. */
  readonly message: string;
  /** Refuse to start (instead of a warning) when the option is set. */
  readonly refuse?: boolean;
}

const ENATS =
  "the embedded NATS server is a Go library inside anycable-go and does not exist on Deno; run nats-server and pass --nats_servers";

export const NOT_ON_DENO: Partial<Record<OptionName, NotOnDeno>> = {
  embed_nats: { message: ENATS, refuse: true },
  enats_addr: { message: `no effect: ${ENATS}` },
  enats_cluster: { message: `no effect: ${ENATS}` },
  enats_cluster_name: { message: `no effect: ${ENATS}` },
  enats_cluster_routes: { message: `no effect: ${ENATS}` },
  enats_gateway: { message: `no effect: ${ENATS}` },
  enats_gateways: { message: `no effect: ${ENATS}` },
  enats_gateway_advertise: { message: `no effect: ${ENATS}` },
  enats_store_dir: { message: `no effect: ${ENATS}` },
  enats_server_name: { message: `no effect: ${ENATS}` },
  enats_debug: { message: `no effect: ${ENATS}` },
  enats_trace: { message: `no effect: ${ENATS}` },
  enats_max_payload: { message: `no effect: ${ENATS}` },
  metrics_log_formatter: {
    message:
      "no effect: mruby formatter scripts need anycable-go's embedded mruby, which Deno does not have; --metrics_log prints every metric (choose them with --metrics_log_filter, or use --log_format=json)",
  },
  hub_gopool_size: {
    message:
      "no effect: Deno runs one event loop and has no goroutine pool; broadcasts are encoded once per stream and written without one",
  },
  shutdown_pool_size: {
    message:
      "no effect: Deno has no goroutine pool; shutdown Disconnect calls go through the queue (--disconnect_rate, --shutdown_timeout)",
  },
  read_buffer_size: {
    message:
      "no effect: Deno's WebSocket sizes its own buffers; limit inbound frames with --max_message_size",
  },
  write_buffer_size: {
    message:
      "no effect: Deno's WebSocket sizes its own buffers; limit a client's unsent bytes with --ws_max_pending_size",
  },
  enable_ws_compression: {
    message:
      "no effect: Deno's WebSocket server (Deno.upgradeWebSocket) does not implement permessage-deflate, so connections stay uncompressed; compress at a proxy in front if needed",
  },
};

/** Deprecated reference options: the option that replaces each. */
export const DEPRECATED: Partial<Record<OptionName, string>> = {
  jwt_id_key: "--jwt_secret",
  jwt_id_param: "--jwt_param",
  jwt_id_enforce: "--enforce_jwt",
  turbo_rails_key: "--turbo_streams_secret",
  cable_ready_key: "--cable_ready_secret",
  turbo_rails_cleartext: "public streams (--public_streams); it has no effect",
  cable_ready_cleartext: "public streams (--public_streams); it has no effect",
  http_broadcast_secret: "--broadcast_key",
  disable_disconnect: "--disconnect_mode=never",
  disconnect_timeout: "--shutdown_timeout; it has no effect",
  metrics_log_interval: "--metrics_rotate_interval",
  http_rpc_timeout: "--rpc_request_timeout",
  rpc_command_timeout: "--rpc_request_timeout",
};
