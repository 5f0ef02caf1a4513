import type { StreamMessage } from "../broker/broker.ts";
import { encodeStreamMessage, messageJson } from "../protocol/encoder.ts";

/** What the hub delivers to: one client session. */
export interface Subscriber {
  readonly sid: string;
  /** Delivered messages carry stream_id/epoch/offset (extended protocol, SSE). */
  readonly positions: boolean;
  /** A message for one of the subscriber's identifiers, already encoded. */
  deliver(identifier: string, frame: string, msg: StreamMessage): void;
}

export interface HubEvents {
  /** The first local subscriber of `stream` arrived. */
  streamAdded?(stream: string): void;
  /** The last local subscriber of `stream` left. */
  streamRemoved?(stream: string): void;
}

/**
 * stream -> subscribers fan-out. A publication is encoded once per (identifier, protocol
 * flavour), not once per client.
 */
export class Hub {
  // The usual case, one identifier per session and stream, is kept as a bare string.
  readonly #streams = new Map<string, Map<Subscriber, string | Set<string>>>();
  readonly #events: HubEvents;

  constructor(events: HubEvents = {}) {
    this.#events = events;
  }

  get streamsCount(): number {
    return this.#streams.size;
  }

  subscribe(sub: Subscriber, stream: string, identifier: string): void {
    let subs = this.#streams.get(stream);
    if (!subs) {
      subs = new Map();
      this.#streams.set(stream, subs);
      this.#events.streamAdded?.(stream);
    }
    const ids = subs.get(sub);
    if (ids === undefined) subs.set(sub, identifier);
    else if (typeof ids === "string") {
      if (ids !== identifier) subs.set(sub, new Set([ids, identifier]));
    } else ids.add(identifier);
  }

  unsubscribe(sub: Subscriber, stream: string, identifier: string): void {
    const subs = this.#streams.get(stream);
    const ids = subs?.get(sub);
    if (!subs || ids === undefined) return;
    if (typeof ids === "string") {
      if (ids !== identifier) return;
      subs.delete(sub);
    } else {
      ids.delete(identifier);
      if (ids.size === 1) subs.set(sub, ids.values().next().value!);
    }
    if (subs.size === 0) {
      this.#streams.delete(stream);
      this.#events.streamRemoved?.(stream);
    }
  }

  /** Number of local subscribers of `stream` (sessions, not identifiers). */
  subscribersCount(stream: string): number {
    return this.#streams.get(stream)?.size ?? 0;
  }

  broadcast(msg: StreamMessage): void {
    const subs = this.#streams.get(msg.stream);
    if (!subs) return;
    const message = messageJson(msg.data);
    const exclude = msg.meta?.exclude_socket;
    const plain = new Map<string, string>();
    const ext = new Map<string, string>();
    // A delivery may close a slow session, which unsubscribes it: Map iteration tolerates
    // deletion (removed entries are skipped), so no snapshot is needed on this hot path.
    for (const [sub, ids] of subs) {
      if (exclude !== undefined && sub.sid === exclude) continue;
      const cache = sub.positions ? ext : plain;
      if (typeof ids === "string") {
        deliverOne(sub, ids, cache, msg, message);
        continue;
      }
      for (const identifier of ids) deliverOne(sub, identifier, cache, msg, message);
    }
  }
}

function deliverOne(
  sub: Subscriber,
  identifier: string,
  cache: Map<string, string>,
  msg: StreamMessage,
  message: string,
): void {
  let frame = cache.get(identifier);
  if (frame === undefined) {
    frame = encodeStreamMessage(identifier, msg, message, sub.positions);
    cache.set(identifier, frame);
  }
  sub.deliver(identifier, frame, msg);
}
