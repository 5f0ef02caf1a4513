import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { RemoteCommand } from "../pubsub/pubsub.ts";
import type { Logger } from "../logger/logger.ts";
import { readBodyLimited } from "../transport/request_body.ts";
import { utf8Length } from "../util/utf8_length.ts";
import { USER_CHANNEL_PREFIX } from "./commands.ts";
import { publicationData } from "./encoder.ts";
import { userIdentifiers } from "./pusher_session.ts";
import {
  channelKind,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_NAME_LENGTH,
  validChannelName,
} from "./protocol.ts";
import type { PusherSigner } from "./signatures.ts";

/** Most channels one event may go to, and most events in one batch (Pusher's limits). */
export const MAX_EVENT_CHANNELS = 100;
export const MAX_BATCH_EVENTS = 10;
/** Largest request body the API reads. */
export const MAX_API_BODY_BYTES = 1024 * 1024;

export interface PusherApiDeps {
  appId: string;
  signer: PusherSigner;
  broker: Broker;
  /** Publishes through the cluster (the node's publisher). */
  publish(msg: StreamMessage): Promise<void>;
  /** Sends a remote command to every node (terminate_connections). */
  command(cmd: RemoteCommand): Promise<void>;
  /** Pusher subscriptions per channel on this node. */
  occupancy: ReadonlyMap<string, number>;
  logger: Logger;
  /** Unix seconds (injectable for tests). */
  now?: () => number;
}

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface EventRequest {
  name: string;
  data: string;
  channels: string[];
  socketId?: string;
  info: string[];
}

/**
 * Pusher's HTTP API under `/apps/<app_id>/`, every request signed (401 otherwise):
 * `POST events`, `POST batch_events`, `GET channels`, `GET channels/<c>`,
 * `GET channels/<c>/users`, `POST users/<id>/terminate_connections`. Events are publications
 * on the channel's stream.
 */
export function createPusherApiHandler(
  deps: PusherApiDeps,
): (req: Request) => Promise<Response> {
  const prefix = `/apps/${deps.appId}/`;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const logger = deps.logger;

  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    const body = req.method === "POST" ? await readBodyLimited(req, MAX_API_BODY_BYTES) : "";
    if (body === null) return text(413, "Request body too large");
    const why = deps.signer.verifyRequest(req.method, path, url.searchParams, body, now());
    if (why) {
      logger.warn("pusher api request refused", { path, reason: why });
      return text(401, why);
    }
    try {
      const route = path.slice(prefix.length).split("/").map(decodePart);
      if (req.method === "POST" && route.length === 1 && route[0] === "events") {
        const event = parseEvent(parseJson(body), true);
        await publishEvents([event]);
        if (!event.info.length) return json({});
        const channels: Record<string, unknown> = {};
        for (const c of event.channels) channels[c] = await attributes(c, event.info);
        return json({ channels });
      }
      if (req.method === "POST" && route.length === 1 && route[0] === "batch_events") {
        const parsed = parseJson(body);
        const batch = isRecord(parsed) ? parsed.batch : undefined;
        if (!Array.isArray(batch) || batch.length === 0) {
          throw new ApiError(400, "batch must be a non-empty array");
        }
        if (batch.length > MAX_BATCH_EVENTS) {
          throw new ApiError(400, `Batch of more than ${MAX_BATCH_EVENTS} events`);
        }
        const events = batch.map((e) => parseEvent(e, false));
        await publishEvents(events);
        if (!events.some((e) => e.info.length)) return json({});
        const infos = [];
        for (const e of events) infos.push(await attributes(e.channels[0], e.info));
        return json({ batch: infos });
      }
      if (
        req.method === "POST" && route.length === 3 && route[0] === "users" &&
        route[2] === "terminate_connections" && route[1] !== ""
      ) {
        // Every node closes the user's signed-in sockets with 4009 (do not reconnect).
        await deps.command({
          command: "disconnect",
          payload: { identifier: userIdentifiers(route[1]), reconnect: false },
        });
        return json({});
      }
      if (req.method === "GET" && route[0] === "channels") {
        if (route.length === 1) return json(await listChannels(url.searchParams));
        if (route.length === 2) return json(await channelInfo(route[1], url.searchParams));
        if (route.length === 3 && route[2] === "users") return json(await channelUsers(route[1]));
      }
      if (["events", "batch_events", "channels"].includes(route[0])) {
        throw new ApiError(405, `${req.method} is not allowed here`);
      }
      return text(404, "Not found");
    } catch (err) {
      if (err instanceof ApiError) {
        logger.warn("pusher api request rejected", {
          path,
          status: err.status,
          reason: err.message,
        });
        return text(err.status, err.message);
      }
      logger.error("pusher api request failed", { path, error: err });
      return text(500, "Internal error");
    }
  };

  /** Publishes every event to each of its channels' streams; 501 when that fails (as broadcasts). */
  async function publishEvents(events: EventRequest[]): Promise<void> {
    const publications: Promise<void>[] = [];
    for (const e of events) {
      const data = publicationData(e.name, e.data);
      for (const stream of e.channels) {
        const msg: StreamMessage = { stream, data };
        if (e.socketId) msg.meta = { exclude_socket: e.socketId };
        publications.push(deps.publish(msg));
      }
    }
    try {
      await Promise.all(publications);
    } catch (err) {
      logger.error("pusher api publish failed", { error: err });
      throw new ApiError(501, "Publishing failed");
    }
  }

  async function attributes(channel: string, info: string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (info.includes("subscription_count")) {
      out.subscription_count = deps.occupancy.get(channel) ?? 0;
    }
    if (info.includes("user_count") && channelKind(channel) === "presence") {
      out.user_count = await userCount(channel);
    }
    return out;
  }

  async function userCount(channel: string): Promise<number> {
    if (!deps.broker.persistent) return 0;
    return (await deps.broker.presenceInfo(channel)).total;
  }

  async function listChannels(params: URLSearchParams): Promise<Record<string, unknown>> {
    const prefixFilter = params.get("filter_by_prefix") ?? "";
    const info = splitInfo(params.get("info"));
    if (info.includes("user_count") && !prefixFilter.startsWith("presence-")) {
      throw new ApiError(400, "info=user_count needs filter_by_prefix=presence-");
    }
    const channels: Record<string, unknown> = {};
    for (const name of [...deps.occupancy.keys()].sort()) {
      if (!name.startsWith(prefixFilter) || name.startsWith(USER_CHANNEL_PREFIX)) continue;
      channels[name] = info.includes("user_count") ? { user_count: await userCount(name) } : {};
    }
    return { channels };
  }

  async function channelInfo(
    channel: string,
    params: URLSearchParams,
  ): Promise<Record<string, unknown>> {
    if (!validChannelName(channel)) throw new ApiError(400, "Invalid channel name");
    const info = splitInfo(params.get("info"));
    const presence = channelKind(channel) === "presence";
    if (info.includes("user_count") && !presence) {
      throw new ApiError(400, "user_count is only available for presence channels");
    }
    const subscriptions = deps.occupancy.get(channel) ?? 0;
    const users = presence ? await userCount(channel) : 0;
    const out: Record<string, unknown> = { occupied: subscriptions > 0 || users > 0 };
    if (info.includes("subscription_count")) out.subscription_count = subscriptions;
    if (info.includes("user_count")) out.user_count = users;
    return out;
  }

  async function channelUsers(channel: string): Promise<Record<string, unknown>> {
    if (channelKind(channel) !== "presence") {
      throw new ApiError(400, "Users are only available for presence channels");
    }
    if (!deps.broker.persistent) return { users: [] };
    const info = await deps.broker.presenceInfo(channel);
    return { users: info.records.map((r) => ({ id: r.id })) };
  }
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError(400, "Malformed path");
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new ApiError(400, "Body is not valid JSON");
  }
}

/** Validates one event (`channel` or `channels`) the way Pusher does. */
function parseEvent(value: unknown, allowMany: boolean): EventRequest {
  if (!isRecord(value)) throw new ApiError(400, "An event must be a JSON object");
  const e = value;
  if (typeof e.name !== "string" || e.name === "") throw new ApiError(400, "name is required");
  if (e.name.length > MAX_EVENT_NAME_LENGTH) {
    throw new ApiError(400, `name is longer than ${MAX_EVENT_NAME_LENGTH} characters`);
  }
  if (e.data === undefined) throw new ApiError(400, "data is required");
  const data = typeof e.data === "string" ? e.data : JSON.stringify(e.data);
  if (utf8Length(data) > MAX_EVENT_DATA_BYTES) {
    throw new ApiError(413, `data is larger than ${MAX_EVENT_DATA_BYTES} bytes`);
  }
  let channels: unknown[];
  if (typeof e.channel === "string") channels = [e.channel];
  else if (allowMany && Array.isArray(e.channels)) channels = e.channels;
  else {throw new ApiError(
      400,
      allowMany ? "channel or channels is required" : "channel is required",
    );}
  if (channels.length === 0) throw new ApiError(400, "channels must not be empty");
  if (channels.length > MAX_EVENT_CHANNELS) {
    throw new ApiError(400, `More than ${MAX_EVENT_CHANNELS} channels`);
  }
  for (const c of channels) {
    const ok = typeof c === "string" &&
      (validChannelName(c) || (c.startsWith(USER_CHANNEL_PREFIX) && c.length <= 200));
    if (!ok) throw new ApiError(400, `Invalid channel name: ${String(c).slice(0, 200)}`);
  }
  let socketId: string | undefined;
  if (e.socket_id !== undefined) {
    if (typeof e.socket_id !== "string" || !/^\d+\.\d+$/.test(e.socket_id)) {
      throw new ApiError(400, "Invalid socket_id");
    }
    socketId = e.socket_id;
  }
  return { name: e.name, data, channels: channels as string[], socketId, info: splitInfo(e.info) };
}

function splitInfo(info: unknown): string[] {
  return typeof info === "string" ? info.split(",").map((s) => s.trim()).filter(Boolean) : [];
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

function text(status: number, message: string): Response {
  return new Response(message + "\n", { status, headers: { "content-type": "text/plain" } });
}
