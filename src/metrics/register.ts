import type { Hub } from "../hub/hub.ts";
import type { Node } from "../node/node.ts";
import type { Publisher } from "../node/publisher.ts";
import type { DisconnectQueue } from "../rpc/disconnect_queue.ts";
import type { RpcCaller } from "../rpc/rpc_caller.ts";
import { Metrics } from "./metrics.ts";

export interface MetricSources {
  node: Node;
  hub: Hub;
  publisher: Publisher;
  disconnects: DisconnectQueue;
  rpc?: RpcCaller;
  rpcConcurrency: number;
}

/** Registers the reference's metric set over the parts' own counters. */
export function registerMetrics(tags: string[], src: MetricSources): Metrics {
  const m = new Metrics(tags);
  const { node, hub, publisher, disconnects, rpc } = src;
  const connected = () => [...node.sessions.values()].filter((s) => s.state === "connected");
  m.gauge("clients_num", "The number of active clients", () => connected().length);
  m.gauge(
    "clients_uniq_num",
    "The number of unique clients (with respect to connection identifiers)",
    () => new Set(connected().map((s) => s.identifiers)).size,
  );
  m.gauge(
    "broadcast_streams_num",
    "The number of active broadcasting streams",
    () => hub.streamsCount,
  );
  m.gauge("disconnect_queue_size", "The size of delayed disconnect", () => disconnects.size);
  m.gauge(
    "mem_sys_bytes",
    "The total bytes of memory obtained from the OS",
    () => Deno.memoryUsage().rss,
  );
  m.counter(
    "failed_auths_total",
    "The total number of failed authentication attempts",
    () => node.stats.failedAuths,
  );
  m.counter(
    "client_msg_total",
    "The total number of received messages from clients",
    () => node.stats.clientMessages,
  );
  m.counter(
    "failed_client_msg_total",
    "The total number of unrecognized messages received from clients",
    () => node.stats.failedClientMessages,
  );
  m.counter(
    "broadcast_msg_total",
    "The total number of messages received through PubSub",
    () => publisher.stats.broadcasts,
  );
  m.counter(
    "failed_broadcast_msg_total",
    "The total number of unrecognized messages received through PubSub",
    () => publisher.stats.failedBroadcasts,
  );
  m.counter(
    "server_msg_total",
    "The total number of messages sent to clients",
    () => node.stats.serverMessages,
  );
  m.counter(
    "data_sent_total",
    "The total amount of data sent to clients",
    () => node.stats.bytesSent,
  );
  m.counter(
    "data_rcvd_total",
    "The total amount of data received from clients",
    () => node.stats.bytesReceived,
  );
  m.counter("rpc_call_total", "The total number of RPC calls", () => rpc?.stats.calls ?? 0);
  m.counter(
    "rpc_error_total",
    "The total number of failed RPC calls",
    () => rpc?.stats.errors ?? 0,
  );
  m.counter(
    "rpc_retries_total",
    "The total number of RPC call retries",
    () => rpc?.stats.retries ?? 0,
  );
  m.counter(
    "rpc_timeout_total",
    "The total number of RPC calls that timed out",
    () => rpc?.stats.timeouts ?? 0,
  );
  m.counter(
    "rpc_canceled_total",
    "The total number of canceled RPC calls",
    () => rpc?.stats.canceled ?? 0,
  );
  m.gauge("rpc_pending_num", "The number of pending RPC calls", () => rpc?.stats.pending ?? 0);
  m.gauge(
    "rpc_capacity_num",
    "The max number of concurrent RPC calls allowed",
    () => src.rpcConcurrency,
  );
  return m;
}
