import type { StreamMessage } from "../broker/broker.ts";
import { EV } from "./protocol.ts";

/**
 * How Pusher events travel as stream publications, and back.
 *
 * A Pusher channel is the stream of the same name. An event (from the HTTP API or a client)
 * is published with `data` = `{"event": <name>, "data": <payload>}` (plus `user_id` for client
 * events on presence channels); presence changes are the broker's presence events
 * (`broadcast_type: "presence"`, `{"type": "join"|"leave", "id", "info"}`), the same ones
 * Action Cable clients receive.
 */
export function publicationData(event: string, data: unknown, userId?: string): string {
  const body: Record<string, unknown> = { event, data };
  if (userId !== undefined) body.user_id = userId;
  return JSON.stringify(body);
}

// One publication reaches every Pusher subscriber of its stream as the same object: encode once.
const encoded = new WeakMap<StreamMessage, string | null>();

/**
 * The Pusher frame for a publication on `msg.stream`, or null when it is not a Pusher event
 * (e.g. an Action Cable broadcast without an `event` name).
 */
export function encodePublication(msg: StreamMessage): string | null {
  const cached = encoded.get(msg);
  if (cached !== undefined) return cached;
  const frame = encode(msg);
  encoded.set(msg, frame);
  return frame;
}

function encode(msg: StreamMessage): string | null {
  let value: unknown;
  try {
    value = JSON.parse(msg.data);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const body = value as Record<string, unknown>;
  if (msg.meta?.broadcast_type === "presence") {
    if (typeof body.id !== "string") return null;
    if (body.type === "join") {
      return frame(EV.memberAdded, msg.stream, { user_id: body.id, user_info: body.info });
    }
    if (body.type === "leave") return frame(EV.memberRemoved, msg.stream, { user_id: body.id });
    return null;
  }
  if (typeof body.event !== "string" || body.event === "") return null;
  const out: Record<string, unknown> = {
    event: body.event,
    channel: msg.stream,
    data: typeof body.data === "string" ? body.data : JSON.stringify(body.data ?? {}),
  };
  if (typeof body.user_id === "string") out.user_id = body.user_id;
  return JSON.stringify(out);
}

function frame(event: string, channel: string, data: unknown): string {
  return JSON.stringify({ event, channel, data: JSON.stringify(data) });
}
