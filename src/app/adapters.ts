import type { Broker, BrokerOptions } from "../broker/broker.ts";
import { PassthroughBroker } from "../broker/passthrough_broker.ts";
import type { Broadcaster } from "../broadcast/broadcaster.ts";
import type { Config } from "../config/options.ts";
import type { Logger } from "../logger/logger.ts";
import { LocalPubSub } from "../pubsub/local_pubsub.ts";
import type { PubSub } from "../pubsub/pubsub.ts";
import { INTERNAL_CHANNEL } from "../pubsub/pubsub_codec.ts";
import type { RedisSettings } from "../util/redis_settings.ts";

/** The Redis options every Redis adapter shares. */
export function redisSettings(config: Config): RedisSettings {
  return {
    sentinels: config.redis_sentinels
      ? config.redis_sentinels.split(",").map((s) => s.trim()).filter(Boolean)
      : undefined,
    sentinelDiscoveryInterval: config.redis_sentinel_discovery_interval,
    keepaliveInterval: config.redis_keepalive_interval,
    tls: {
      verify: config.redis_tls_verify,
      caPath: config.redis_tls_ca_cert_path || undefined,
      certPath: config.redis_tls_client_cert_path || undefined,
      keyPath: config.redis_tls_client_key_path || undefined,
    },
  };
}

/**
 * Picks concrete adapters from the config. Network clients (Redis, NATS) are loaded with
 * import() only when asked for, so a default start needs neither.
 */
export async function createBroker(config: Config, logger: Logger): Promise<Broker> {
  const opts: BrokerOptions = {
    historyLimit: config.history_limit,
    historyTtl: config.history_ttl,
    sessionsTtl: config.sessions_ttl,
    presenceTtl: config.presence_ttl,
    logger,
  };
  switch (config.broker) {
    case "memory": {
      const { MemoryBroker } = await import("../broker/memory_broker.ts");
      return new MemoryBroker(opts);
    }
    case "kv": {
      const { KvBroker } = await import("../broker/kv_broker.ts");
      return new KvBroker({ ...opts, path: config.kv_path || undefined });
    }
    case "redis": {
      const { RedisBroker } = await import("../broker/redis_broker.ts");
      return new RedisBroker({
        ...opts,
        url: config.redis_url,
        redis: redisSettings(config),
        logger,
      });
    }
    case "nats": {
      const { NatsBroker } = await import("../broker/nats_broker.ts");
      return new NatsBroker({
        ...opts,
        servers: config.nats_servers,
        noRandomize: config.nats_dont_randomize_servers,
        logger,
      });
    }
    default:
      return new PassthroughBroker();
  }
}

/**
 * The pub/sub's channel for remote commands: `__anycable_internal__`, with `-int` appended when
 * the fan-out broadcaster of the same kind (legacy `redis`, or `nats`) listens on that very
 * name (docs/protocol.md#pubsub-between-nodes), so publications and commands never share a channel.
 */
export function pubsubInternalChannel(config: Config): string {
  const clash = config.pubsub === "redis"
    ? config.broadcast_adapter.includes("redis") && config.redis_channel === INTERNAL_CHANNEL
    : config.pubsub === "nats" &&
      config.broadcast_adapter.includes("nats") && config.nats_channel === INTERNAL_CHANNEL;
  return clash ? `${INTERNAL_CHANNEL}-int` : INTERNAL_CHANNEL;
}

export async function createPubSub(config: Config, logger: Logger): Promise<PubSub> {
  const internalChannel = pubsubInternalChannel(config);
  if (internalChannel !== INTERNAL_CHANNEL) {
    logger.warn("broadcaster and pub/sub share a channel name; pub/sub commands moved", {
      channel: internalChannel,
    });
  }
  switch (config.pubsub) {
    case "redis": {
      const { RedisPubSub } = await import("../pubsub/redis_pubsub.ts");
      return new RedisPubSub({
        url: config.redis_url,
        redis: redisSettings(config),
        internalChannel,
        logger,
      });
    }
    case "nats": {
      const { NatsPubSub } = await import("../pubsub/nats_pubsub.ts");
      return new NatsPubSub({
        servers: config.nats_servers,
        noRandomize: config.nats_dont_randomize_servers,
        internalChannel,
        logger,
      });
    }
    case "kv": {
      const { KvPubSub } = await import("../pubsub/kv_pubsub.ts");
      return new KvPubSub({ path: config.kv_path || undefined, logger });
    }
    default:
      return new LocalPubSub();
  }
}

/** Broadcasters other than http (which the server mounts itself). */
export async function createBroadcasters(config: Config, logger: Logger): Promise<Broadcaster[]> {
  const out: Broadcaster[] = [];
  for (const name of config.broadcast_adapter) {
    if (name === "redis") {
      const { RedisBroadcaster } = await import("../broadcast/redis_broadcaster.ts");
      out.push(
        new RedisBroadcaster({
          url: config.redis_url,
          redis: redisSettings(config),
          channel: config.redis_channel,
          logger,
        }),
      );
    } else if (name === "redisx") {
      const { RedisStreamsBroadcaster } = await import("../broadcast/redisx_broadcaster.ts");
      out.push(
        new RedisStreamsBroadcaster({
          url: config.redis_url,
          redis: redisSettings(config),
          stream: config.redisx_stream,
          group: config.redisx_group,
          blockMs: config.redisx_read_block_milliseconds,
          logger,
        }),
      );
    } else if (name === "nats") {
      const { NatsBroadcaster } = await import("../broadcast/nats_broadcaster.ts");
      out.push(
        new NatsBroadcaster({
          servers: config.nats_servers,
          noRandomize: config.nats_dont_randomize_servers,
          channel: config.nats_channel,
          logger,
        }),
      );
    }
  }
  return out;
}
