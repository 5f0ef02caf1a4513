import { jsonMembers, parseMember } from "./json_members.ts";

/** `retry:` sent with a `disconnect` that forbids reconnecting: one year, in ms. */
export const NO_RECONNECT_RETRY_MS = 31536000000;

export interface SseEncoderOptions {
  /**
   * GET requests: data messages carry only their `message` value (a string message is sent
   * raw, not JSON-quoted). POST requests send every message as full JSON.
   */
  unwrapData: boolean;
  /** `?raw=1`: typed messages (welcome, ping, confirmations, disconnect...) are dropped. */
  raw: boolean;
}

/**
 * Encodes one server message (its JSON text, as the node hands it to a Connection) as one
 * Server-Sent Event, docs/protocol.md#server-sent-events:
 *
 *     [event: <type>\n]data: <payload>[\nid: <offset>/<epoch>/<stream>][\nretry: <ms>]\n\n
 *
 * `event:` for messages with a `type`; `id:` when the message carries a broker position
 * (stream_id + epoch + offset); `retry:` for `disconnect` with `reconnect: false`. Payload
 * line breaks become several `data:` lines. Returns null when the event is suppressed.
 */
export function encodeSseEvent(frame: string, opts: SseEncoderOptions): string | null {
  const members = jsonMembers(frame);
  if (!members) return formatEvent(undefined, frame);
  const type = parseMember(members, "type");
  if (typeof type === "string" && type !== "") {
    if (opts.raw) return null;
    const retry = type === "disconnect" && parseMember(members, "reconnect") === false
      ? NO_RECONNECT_RETRY_MS
      : undefined;
    return formatEvent(type, frame, eventId(members), retry);
  }
  let payload = frame;
  const message = members.get("message");
  if (opts.unwrapData && message !== undefined) {
    payload = message.startsWith('"') ? String(parseMember(members, "message") ?? "") : message;
  }
  return formatEvent(undefined, payload, eventId(members));
}

/** `<offset>/<epoch>/<stream>` of a broker-registered message; the stream goes last. */
function eventId(members: Map<string, string>): string | undefined {
  const stream = parseMember(members, "stream_id");
  const epoch = parseMember(members, "epoch");
  const offset = parseMember(members, "offset");
  if (typeof stream !== "string" || typeof epoch !== "string" || typeof offset !== "number") {
    return undefined;
  }
  const id = `${offset}/${epoch}/${stream}`;
  // An id with a line break or NUL cannot be framed (and EventSource would ignore it).
  return /[\r\n\0]/.test(id) ? undefined : id;
}

function formatEvent(
  event: string | undefined,
  payload: string,
  id?: string,
  retry?: number,
): string {
  let out = event !== undefined && !/[\r\n]/.test(event) ? `event: ${event}\n` : "";
  out += payload.split(/\r\n|\r|\n/).map((line) => `data: ${line}`).join("\n");
  if (id !== undefined) out += `\nid: ${id}`;
  if (retry !== undefined) out += `\nretry: ${retry}`;
  return out + "\n\n";
}
