/**
 * The warning for a history that is too short for its TTL: `--history_limit` dropped a
 * message younger than `--history_ttl`, so a client offline for less than the TTL can
 * already be told `history_not_found`. Logged once per stream (per process); the sizing rule
 * is limit ≥ publication rate × the longest reconnect you want to survive.
 */
import type { Logger } from "../logger/logger.ts";
import { historyExpired } from "./history_rules.ts";

/** Streams remembered as warned; past this, warnings stop (the log has made its point). */
const MAX_WARNED_STREAMS = 10_000;

export class TrimWarning {
  readonly #logger?: Logger;
  readonly #limit: number;
  readonly #ttl: number;
  readonly #warned = new Set<string>();

  constructor(opts: { logger?: Logger; historyLimit: number; historyTtl: number }) {
    this.#logger = opts.logger;
    this.#limit = opts.historyLimit;
    this.#ttl = opts.historyTtl;
  }

  /** Streams warned about so far. */
  get warned(): number {
    return this.#warned.size;
  }

  /** The limit removed from `stream` an entry stored at `storedMs`; it is now `nowMs`. */
  trimmed(stream: string, storedMs: number, nowMs: number): void {
    if (this.#limit <= 0 || historyExpired(storedMs, nowMs, this.#ttl)) return;
    if (this.#warned.has(stream) || this.#warned.size >= MAX_WARNED_STREAMS) return;
    this.#warned.add(stream);
    const keptSeconds = Math.max(0, (nowMs - storedMs) / 1000);
    this.#logger?.warn("history trimmed before --history_ttl", {
      stream,
      history_limit: this.#limit,
      history_ttl: this.#ttl,
      kept_seconds: Math.round(keptSeconds * 10) / 10,
      hint: "clients offline longer than kept_seconds get history_not_found; " +
        "size --history_limit as publication rate × reconnect time",
    });
  }
}
