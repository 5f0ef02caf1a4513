import type { HistoryRequest } from "../protocol/messages.ts";
import { jsonLines } from "./request_body.ts";

/** One subscription an SSE request asks for. */
export interface SseSubscription {
  /** The channel identifier string, used byte-for-byte. */
  identifier: string;
  /** History to replay after the confirmation (POST lines may carry their own). */
  history?: HistoryRequest;
}

/**
 * The subscription of a GET request, from the first non-empty of (docs/protocol.md#server-sent-events):
 * `identifier` (as is), `channel` (`{"channel":...}`), `stream` ($pubsub stream_name),
 * `signed_stream` ($pubsub signed_stream_name), `turbo_signed_stream_name`
 * (Turbo::StreamsChannel). Null when none is present.
 */
export function subscriptionFromQuery(params: URLSearchParams): string | null {
  const get = (name: string) => {
    const v = params.get(name);
    return v === null || v === "" ? null : v;
  };
  const identifier = get("identifier");
  if (identifier !== null) return identifier;
  const channel = get("channel");
  if (channel !== null) return JSON.stringify({ channel });
  const stream = get("stream");
  if (stream !== null) return JSON.stringify({ channel: "$pubsub", stream_name: stream });
  const signed = get("signed_stream");
  if (signed !== null) return JSON.stringify({ channel: "$pubsub", signed_stream_name: signed });
  const turbo = get("turbo_signed_stream_name");
  if (turbo !== null) {
    return JSON.stringify({ channel: "Turbo::StreamsChannel", signed_stream_name: turbo });
  }
  return null;
}

/**
 * The subscriptions of a POST body: one JSON object per line, each a subscribe request (its
 * `command` is ignored) with a string `identifier` and an optional `history` object.
 * Returns an error text for a malformed line or an empty body.
 */
export function subscriptionsFromBody(body: string): SseSubscription[] | string {
  const subs: SseSubscription[] = [];
  for (const line of jsonLines(body)) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return "malformed JSON line";
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return "each line must be a JSON object";
    }
    const { identifier, history } = value as Record<string, unknown>;
    if (typeof identifier !== "string" || identifier === "") return "identifier must be a string";
    const sub: SseSubscription = { identifier };
    if (typeof history === "object" && history !== null && !Array.isArray(history)) {
      sub.history = history as HistoryRequest;
    }
    subs.push(sub);
  }
  return subs.length ? subs : "no subscription requested";
}

/**
 * The history request a reconnecting client implies: `Last-Event-ID: <offset>/<epoch>/<stream>`
 * becomes a by-offset position for that stream, `?history_since=<unix seconds>` a by-time
 * request; both may combine. Undefined when there is neither (or they are malformed).
 */
export function resumeHistory(
  lastEventId: string | null,
  historySince: string | null,
): HistoryRequest | undefined {
  const req: HistoryRequest = {};
  const m = lastEventId?.trim().match(/^(\d+)\/([^/]+)\/(.+)$/);
  if (m) req.streams = { [m[3]]: { epoch: m[2], offset: Number(m[1]) } };
  if (historySince && /^\d+(\.\d+)?$/.test(historySince.trim())) {
    const since = Number(historySince.trim());
    if (since > 0) req.since = since;
  }
  return req.streams || req.since ? req : undefined;
}

/** `?raw=1|true|t|y` */
export function isTruthyParam(value: string | null): boolean {
  return value !== null && ["1", "true", "t", "y"].includes(value.toLowerCase());
}
