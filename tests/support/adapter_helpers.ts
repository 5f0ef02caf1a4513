/** Event-driven waiting helpers for the Redis/NATS adapter tests (no fixed sleeps). */
import { Logger } from "../../src/logger/logger.ts";

export class WaitTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaitTimeoutError";
  }
}

/** Collects items and lets a test wait until a condition over them holds. */
export class Inbox<T> {
  readonly items: T[] = [];
  #waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves once `pred(items)` is true; rejects with WaitTimeoutError after `timeoutMs`. */
  waitFor(pred: (items: T[]) => boolean, timeoutMs = 5000, label = "condition"): Promise<void> {
    if (pred(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!pred(this.items)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new WaitTimeoutError(
            `timed out after ${timeoutMs} ms waiting for ${label} (${this.items.length} items)`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      this.#waiters.add(wake);
    });
  }

  /** Resolves once at least `n` items arrived. */
  waitForCount(n: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor((items) => items.length >= n, timeoutMs, `${n} items`);
  }
}

/**
 * Repeats `attempt` (errors ignored) until `inbox` satisfies `pred`, giving each attempt up to
 * `intervalMs` to show its effect, within an overall `timeoutMs`. For "delivery resumes" checks.
 */
export async function retryUntilDelivered<T>(
  inbox: Inbox<T>,
  pred: (items: T[]) => boolean,
  attempt: (i: number) => Promise<unknown>,
  opts: { intervalMs?: number; timeoutMs?: number; label?: string } = {},
): Promise<number> {
  const interval = opts.intervalMs ?? 250;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (let i = 0; Date.now() < deadline; i++) {
    await attempt(i).catch(() => {});
    try {
      await inbox.waitFor(pred, Math.max(1, Math.min(interval, deadline - Date.now())));
      return i + 1;
    } catch (err) {
      if (!(err instanceof WaitTimeoutError)) throw err;
    }
  }
  throw new WaitTimeoutError(`delivery did not resume: ${opts.label ?? "condition"}`);
}

/** Polls an async condition (e.g. a Redis key state) until true, bounded by `timeoutMs`. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 5000,
  label = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${label}`);
}

/** A logger whose lines are kept in `lines` (and in an Inbox to wait on). */
export function captureLogger(level: "debug" | "info" | "warn" | "error" = "info"): {
  logger: Logger;
  lines: Inbox<string>;
} {
  const lines = new Inbox<string>();
  const logger = new Logger({ level, sink: { write: (line) => lines.push(line) } });
  return { logger, lines };
}
