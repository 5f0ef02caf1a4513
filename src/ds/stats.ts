import type { Metrics } from "../metrics/metrics.ts";

/** Durable Streams request counters (AnyCable-Go's `ds_*` metrics). */
export class DsStats {
  requests = 0;
  pollRequests = 0;
  pollClients = 0;
  sseRequests = 0;
  sseClients = 0;
  writes = 0;

  register(m: Metrics): void {
    m.counter(
      "ds_requests_total",
      "The total number of durable streams HEAD/GET requests",
      () => this.requests,
    );
    m.counter(
      "ds_poll_requests_total",
      "The total number of durable streams long-poll requests",
      () => this.pollRequests,
    );
    m.counter(
      "ds_sse_requests_total",
      "The total number of durable streams SSE requests",
      () => this.sseRequests,
    );
    m.gauge(
      "ds_poll_clients_num",
      "The number of active durable streams long-poll clients",
      () => this.pollClients,
    );
    m.gauge(
      "ds_sse_clients_num",
      "The number of active durable streams SSE clients",
      () => this.sseClients,
    );
    m.counter(
      "ds_writes_total",
      "The total number of durable streams PUT/POST/DELETE requests",
      () => this.writes,
    );
  }
}
