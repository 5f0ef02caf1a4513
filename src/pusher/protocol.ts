/**
 * The Pusher Channels wire format (protocol 7): event names, error codes, and the frames the
 * server writes. Every frame is a JSON object `{event, channel?, data?}`; `data` of server
 * events is a JSON-encoded string, except `pusher:error`, whose data is an object.
 */

export const PROTOCOL_VERSION = 7;
/** Oldest protocol version accepted in `?protocol=`. */
export const MIN_PROTOCOL_VERSION = 5;

export const EV = {
  connectionEstablished: "pusher:connection_established",
  error: "pusher:error",
  ping: "pusher:ping",
  pong: "pusher:pong",
  subscribe: "pusher:subscribe",
  unsubscribe: "pusher:unsubscribe",
  signin: "pusher:signin",
  signinSuccess: "pusher:signin_success",
  subscriptionError: "pusher:subscription_error",
  subscriptionSucceeded: "pusher_internal:subscription_succeeded",
  memberAdded: "pusher_internal:member_added",
  memberRemoved: "pusher_internal:member_removed",
} as const;

/**
 * Pusher's close/error codes. 4000-4099: do not reconnect; 4100-4199: reconnect with backoff;
 * 4200-4299: reconnect at once. `null` marks an error that keeps the connection open.
 */
export const ERR = {
  appNotFound: 4001,
  pathNotFound: 4005,
  invalidVersion: 4006,
  unsupportedProtocol: 4007,
  noProtocol: 4008,
  unauthorized: 4009,
  overCapacity: 4100,
  reconnect: 4200,
  noPong: 4201,
} as const;

/** Longest channel name Pusher accepts, and the characters it allows. */
export const MAX_CHANNEL_LENGTH = 164;
const CHANNEL_RE = /^[A-Za-z0-9_\-=@,.;]+$/;

/** Largest event name and payload Pusher accepts (client events and HTTP API events). */
export const MAX_EVENT_NAME_LENGTH = 200;
export const MAX_EVENT_DATA_BYTES = 10240;

export type ChannelKind = "public" | "private" | "presence";

export function channelKind(channel: string): ChannelKind {
  if (channel.startsWith("presence-")) return "presence";
  // private-encrypted-* channels are private channels whose payload the server never reads.
  if (channel.startsWith("private-")) return "private";
  return "public";
}

export function validChannelName(channel: string): boolean {
  return channel.length > 0 &&
    channel.length <= MAX_CHANNEL_LENGTH && CHANNEL_RE.test(channel);
}

/** A decoded client frame. */
export interface ClientFrame {
  event: string;
  channel?: string;
  data?: unknown;
}

export class InvalidFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidFrameError";
  }
}

/** Parses one client frame; throws InvalidFrameError for anything but `{event: string, ...}`. */
export function decodeFrame(raw: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new InvalidFrameError("Invalid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidFrameError("A message must be a JSON object");
  }
  const frame = value as Record<string, unknown>;
  if (typeof frame.event !== "string" || frame.event === "") {
    throw new InvalidFrameError("A message needs an event name");
  }
  const out: ClientFrame = { event: frame.event };
  if (frame.channel !== undefined) {
    if (typeof frame.channel !== "string") throw new InvalidFrameError("channel must be a string");
    out.channel = frame.channel;
  }
  if (frame.data !== undefined) {
    // Pusher clients may send data JSON-encoded; subscription commands need the object.
    out.data = frame.data;
  }
  return out;
}

/** `data` as an object: parsed when the client sent it JSON-encoded. */
export function dataObject(data: unknown): Record<string, unknown> | undefined {
  let value = data;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}

/** A server event frame; object data is JSON-encoded, as Pusher sends it. */
export function encodeEvent(event: string, data: unknown, channel?: string): string {
  const frame: Record<string, unknown> = { event };
  if (channel !== undefined) frame.channel = channel;
  frame.data = typeof data === "string" ? data : JSON.stringify(data ?? {});
  return JSON.stringify(frame);
}

export function connectionEstablished(socketId: string, activityTimeout: number): string {
  return encodeEvent(EV.connectionEstablished, {
    socket_id: socketId,
    activity_timeout: activityTimeout,
  });
}

/** `pusher:error`; its data stays an object. `code` null = the connection stays open. */
export function errorFrame(code: number | null, message: string): string {
  return JSON.stringify({ event: EV.error, data: { code, message } });
}

export function subscriptionErrorFrame(
  channel: string,
  type: string,
  error: string,
  status: number,
): string {
  return JSON.stringify({ event: EV.subscriptionError, channel, data: { type, error, status } });
}

export const PONG_FRAME = JSON.stringify({ event: EV.pong, data: {} });
export const PING_FRAME = JSON.stringify({ event: EV.ping, data: {} });
