import type { Logger } from "../logger/logger.ts";

/**
 * The Broker seam: stream history with epoch + offsets, resumable sessions and presence.
 * A broker only stores; delivery is the pub/sub's job (see src/node/publisher.ts).
 */

export interface StreamMessageMeta {
  /** sid of the session that must not receive this message. */
  exclude_socket?: string;
  /** Transient messages are never stored and carry no offset. */
  transient?: boolean;
  /** Put into the delivered message's `type`. */
  broadcast_type?: string;
}

/** A publication (docs/protocol.md#publication-format), with `offset`/`epoch` once a broker registered it. */
export interface StreamMessage {
  stream: string;
  data: string;
  meta?: StreamMessageMeta;
  offset?: number;
  epoch?: string;
}

/** Why a history request cannot be answered; becomes `reject_history` at the edge. */
export class HistoryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HistoryError";
  }
}

export interface PresenceEvent {
  type: "join" | "leave";
  id: string;
  info?: unknown;
}

export interface PresenceRecord {
  id: string;
  info?: unknown;
}

export interface PresenceInfo {
  total: number;
  records: PresenceRecord[];
}

export interface ExpiredPresence {
  stream: string;
  event: PresenceEvent;
}

export interface Broker {
  /** Adapter name for logs: "none", "memory", "kv", "redis", "nats". */
  readonly name: string;
  /** True when history and sessions are really kept (false for the passthrough). */
  readonly persistent: boolean;

  start(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;

  /** The current epoch (one per storage generation: per process for memory, per database for KV). */
  epoch(): Promise<string>;

  /**
   * Registers a non-transient publication: assigns the stream's next offset (from 1) and the
   * epoch, stores it, and returns the registered copy. Offsets never repeat or skip within an
   * epoch, even with concurrent publishers.
   */
  store(msg: StreamMessage): Promise<StreamMessage>;

  /** Messages with offset > `offset`, in order. Throws HistoryError per PROTOCOL.md §4.2. */
  historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]>;
  /** Messages stored at or after `sinceSeconds` (Unix seconds), in order. */
  historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]>;

  /** Saves an opaque serialized session under `sid` for sessions_ttl. */
  commitSession(sid: string, state: string): Promise<void>;
  /** The saved session, or null when unknown or expired. */
  restoreSession(sid: string): Promise<string | null>;
  /** Extends the session's TTL (called while connected and once on disconnect). */
  touchSession(sid: string): Promise<void>;

  /** Adds `sid` as presence `id` in `stream`; returns the join event when `id` is new there. */
  presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null>;
  /** Removes `sid` from `stream`; returns the leave event when it was the last session of its id. */
  presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null>;
  presenceInfo(stream: string): Promise<PresenceInfo>;
  /** Refreshes the TTL of every presence entry of `sid`. */
  presenceTouch(sid: string): Promise<void>;
  /** Drops entries not touched within presence_ttl; returns the resulting leave events. */
  presenceExpire(): Promise<ExpiredPresence[]>;
}

export interface BrokerOptions {
  historyLimit: number;
  /** Seconds. */
  historyTtl: number;
  /** Seconds. */
  sessionsTtl: number;
  /** Seconds. */
  presenceTtl: number;
  /** Milliseconds since epoch; injectable for fake-time tests. */
  now?: () => number;
  /** For the warnings a broker logs (history trimmed before its TTL). */
  logger?: Logger;
}
