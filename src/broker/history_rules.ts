/**
 * History rules shared by every broker (docs/protocol.md#history, docs/protocol.md#broker-storage), so that all adapters
 * accept and refuse exactly the same requests.
 */
import { HistoryError } from "./broker.ts";

/** What a broker knows about one stream when it answers an offset request. */
export interface StreamWindow {
  /** Offset of the last message stored in the stream's current generation (>= 1). */
  latest: number;
  /** Lowest offset still retained, or undefined when every message expired or was trimmed. */
  oldest?: number;
}

/**
 * Throws HistoryError unless "messages with offset > `offset`" can be answered completely.
 *
 * - `offset` above `latest` -> rejected; equal to `latest` -> accepted (zero messages), even when
 *   the buffer is already empty: the client has seen everything, nothing is missing.
 * - `offset` below `oldest` -> rejected. Like the reference, this includes `offset == oldest-1`,
 *   and therefore also `offset 0` on a stream that never lost a message (oldest is 1). We keep
 *   that on purpose for drop-in compatibility: official clients only send offsets they have
 *   received (>= 1) and ask for "everything" with `since`, so 0 never comes from them.
 * - An empty buffer with `offset < latest` -> rejected (messages were lost).
 */
export function checkHistoryOffset(stream: string, offset: number, window: StreamWindow): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new HistoryError(`invalid offset ${offset} for stream ${stream}`);
  }
  if (offset > window.latest) {
    throw new HistoryError(
      `requested offset ${offset} is above the latest ${window.latest} in stream ${stream}`,
    );
  }
  if (offset === window.latest) return;
  if (window.oldest === undefined) {
    throw new HistoryError(`stream ${stream} has no retained messages`);
  }
  if (offset < window.oldest) {
    throw new HistoryError(
      `requested offset ${offset} is below the oldest retained ${window.oldest} in stream ${stream}`,
    );
  }
}

/** True when a message stored at `storedMs` is older than the history TTL at `nowMs`. */
export function historyExpired(storedMs: number, nowMs: number, ttlSeconds: number): boolean {
  return nowMs - storedMs > ttlSeconds * 1000;
}

/** True when a stream whose last message was stored at `lastMs` must be forgotten (§13). */
export function streamForgotten(lastMs: number, nowMs: number, ttlSeconds: number): boolean {
  return nowMs - lastMs > 10 * ttlSeconds * 1000;
}

/** The store time compared with a history `since` (Unix seconds). */
export function storedSeconds(storedMs: number): number {
  return Math.floor(storedMs / 1000);
}
