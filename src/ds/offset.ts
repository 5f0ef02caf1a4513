/**
 * Durable Streams offsets: opaque to clients, lexicographically ordered. Cableway's are
 * `0000000000000000_<n>` with `n` the entry number zero-padded to 16 digits — the same number
 * Action Cable clients see as a message's `offset`. `-1` is the start, `now` the tail.
 */

const WIDTH = 16;
const PREFIX = "0".repeat(WIDTH) + "_";
const PATTERN = /^\d{1,20}_\d{1,20}$/;

export type ParsedOffset = { kind: "start" } | { kind: "now" } | { kind: "at"; n: number };

export function formatOffset(n: number): string {
  return PREFIX + String(n).padStart(WIDTH, "0");
}

/** The offset a client sent, or null when it is malformed. */
export function parseOffset(raw: string): ParsedOffset | null {
  if (raw === "-1") return { kind: "start" };
  if (raw === "now") return { kind: "now" };
  if (!PATTERN.test(raw)) return null;
  const [high, low] = raw.split("_");
  if (Number(high) !== 0) return null;
  const n = Number(low);
  return Number.isSafeInteger(n) ? { kind: "at", n } : null;
}
