/**
 * `Stream-Cursor` values for CDN request collapsing: the number of 20-second intervals since
 * 2024-10-09T00:00:00Z. A client cursor at or past the current interval gets a random jitter
 * on top, so successive cursors only move forward.
 */

const EPOCH_MS = Date.UTC(2024, 9, 9);
const INTERVAL_SECONDS = 20;

export function nextCursor(clientCursor: string | null, now = Date.now()): string {
  const current = Math.floor((now - EPOCH_MS) / (INTERVAL_SECONDS * 1000));
  if (!clientCursor) return String(current);
  const client = Number.parseInt(clientCursor, 10);
  if (!Number.isFinite(client) || client < current) return String(current);
  const jitterSeconds = 1 + Math.floor(Math.random() * 3600);
  return String(client + Math.max(1, Math.ceil(jitterSeconds / INTERVAL_SECONDS)));
}
