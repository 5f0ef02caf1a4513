import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config/options.ts";
import { NodeDsAccess } from "../ds/access.ts";
import { DurableBroker } from "../ds/durable_broker.ts";
import { createDsHandler } from "../ds/handler.ts";
import { DsLive } from "../ds/live.ts";
import { MemoryStreamStore } from "../ds/memory_store.ts";
import { CombinedReadSource } from "../ds/readables.ts";
import type { DurableStreamStore } from "../ds/store.ts";
import { DsStats } from "../ds/stats.ts";
import { DsStreams } from "../ds/streams.ts";
import type { Hub } from "../hub/hub.ts";
import type { Logger } from "../logger/logger.ts";
import type { Controller } from "../node/controller.ts";
import type { Node } from "../node/node.ts";
import type { PubSub } from "../pubsub/pubsub.ts";
import type { RouteHandler } from "../server/server.ts";

export interface DsSetup {
  /** The broker every other part uses (Durable Streams streams registered in their store). */
  broker: Broker;
  store: DurableStreamStore;
  /** Request counters for the metrics. */
  stats: DsStats;
  /** Routes for the main server, once the node exists. */
  routes(node: Node, controller: Controller, apiKey: string): Map<string, RouteHandler>;
  close(): Promise<void>;
}

/** The Durable Streams store that matches --broker: Deno KV, Redis, or memory. */
async function createStore(config: Config, logger: Logger): Promise<DurableStreamStore> {
  if (config.broker === "kv") {
    const { KvStreamStore } = await import("../ds/kv_store.ts");
    return new KvStreamStore({ path: config.kv_path });
  }
  if (config.broker === "redis") {
    const { RedisStreamStore } = await import("../ds/redis_store.ts");
    return new RedisStreamStore({ url: config.redis_url, logger });
  }
  if (config.broker === "nats") {
    logger.warn("Durable Streams written over HTTP are kept in memory with --broker=nats");
  }
  return new MemoryStreamStore();
}

/** Builds Durable Streams (--ds) over the broker, hub and pub/sub; undefined when off. */
export async function setupDs(
  config: Config,
  broker: Broker,
  hub: Hub,
  pubsub: PubSub,
  logger: Logger,
): Promise<DsSetup | undefined> {
  if (!config.ds) return undefined;
  const log = logger.child({ context: "ds" });
  const store = await createStore(config, log);
  await store.start();
  const live = new DsLive(hub);
  const streams = new DsStreams({
    store,
    deliver: (msg) => pubsub.broadcast(msg),
    epoch: () => broker.epoch(),
    changed: (stream) => live.changed(stream),
    logger: log,
  });
  const shutdown = new AbortController();
  const stats = new DsStats();
  // Expired streams nobody touches again are dropped by a sweep where the store can list.
  const sweeper = store.list
    ? setInterval(() => {
      streams.sweep().catch((err) => log.warn("ds sweep failed", { error: err }));
    }, 60_000)
    : undefined;
  const path = config.ds_path.replace(/\/+$/, "");
  return {
    broker: new DurableBroker(broker, streams),
    store,
    stats,
    routes(node, controller, apiKey) {
      const writeKey = config.ds_write_key === "none"
        ? ""
        : config.ds_write_key || apiKey || (config.public ? "" : null);
      if (writeKey === null) {
        log.warn(
          "Durable Streams writes are refused: set --ds_write_key, --api_secret or --secret",
        );
      } else if (writeKey === "") {
        log.warn("Durable Streams writes are not authenticated");
      }
      const handler = createDsHandler({
        path,
        allowedOrigins: config.allowed_origins,
        pollIntervalMs: config.ds_poll_interval * 1000,
        sseTtlMs: config.ds_sse_ttl * 1000,
        maxAppendSize: config.ds_max_append_size,
        maxReadSize: 256 * 1024,
        logger: log,
      }, {
        streams,
        source: new CombinedReadSource(streams, broker),
        live,
        access: new NodeDsAccess(node, controller, { skipAuth: config.ds_skip_auth, writeKey }),
        shutdown: shutdown.signal,
        stats,
      });
      log.info("Handle Durable Streams requests", { path, store: store.name });
      return new Map([[`${path}/*`, handler]]);
    },
    async close() {
      clearInterval(sweeper);
      shutdown.abort();
      live.close();
      await store.close();
    },
  };
}
