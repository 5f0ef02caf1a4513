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
    const frames = new FrameCache(msg, message);
    // A delivery may close a slow session, which unsubscribes it: Map iteration tolerates
    // deletion (removed entries are skipped), so no snapshot is needed on this hot path.
    for (const [sub, ids] of subs) {
      if (exclude !== undefined && sub.sid === exclude) continue;
      if (typeof ids === "string") {
        sub.deliver(ids, frames.get(ids, sub.positions), msg);
        continue;
      }
      for (const identifier of ids) {
        sub.deliver(identifier, frames.get(identifier, sub.positions), msg);
      }
    }
  }
}

/**
 * The frames of one publication, encoded once per (identifier, flavour). The usual stream has
 * one identifier and one flavour: one slot serves it without a Map; a Map is made only for more.
 */
class FrameCache {
  readonly #msg: StreamMessage;
  readonly #message: string;
  #identifier?: string;
  #positions = false;
  #frame = "";
  #more?: Map<string, string>;

  constructor(msg: StreamMessage, message: string) {
    this.#msg = msg;
    this.#message = message;
  }

  get(identifier: string, positions: boolean): string {
    if (identifier === this.#identifier && positions === this.#positions) return this.#frame;
    const frame = this.#encoded(identifier, positions);
    this.#identifier = identifier;
    this.#positions = positions;
    this.#frame = frame;
    return frame;
  }

  #encoded(identifier: string, positions: boolean): string {
    if (this.#identifier !== undefined) {
      // Keep the slot's frame too: subscribers of several identifiers alternate.
      const more = this.#more ??= new Map();
      more.set(this.#positions ? "1" + this.#identifier : "0" + this.#identifier, this.#frame);
      const key = positions ? "1" + identifier : "0" + identifier;
      const known = more.get(key);
      if (known !== undefined) return known;
    }
    return encodeStreamMessage(identifier, this.#msg, this.#message, positions);
  }
}
