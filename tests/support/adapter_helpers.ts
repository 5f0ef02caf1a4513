/** Event-driven waiting helpers for the Redis/NATS adapter tests (no fixed sleeps). */
import { Logger } from "../../src/logger/logger.ts";
import { Inbox, WaitTimeoutError } from "./wait.ts";

export { Inbox, WaitTimeoutError };

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
