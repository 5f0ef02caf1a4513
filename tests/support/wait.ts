/** Polls `pred` until it holds; fails after `timeoutMs` naming `what` (for conditions no event announces). */
export async function waitUntil(
  pred: () => boolean,
  what = "condition",
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class WaitTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaitTimeoutError";
  }
}

/** Collects items and lets a test wait until a condition over them holds (no polling). */
export class Inbox<T> {
  readonly items: T[] = [];
  #waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** Re-checks every pending wait (e.g. when the source closed). */
  wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Resolves once `pred(items)` is true; rejects with WaitTimeoutError after `timeoutMs`.
   * `label` names what was awaited (a function for details computed at timeout).
   */
  waitFor(
    pred: (items: T[]) => boolean,
    timeoutMs = 5000,
    label: string | (() => string) = "condition",
  ): Promise<void> {
    if (pred(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!pred(this.items)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        const what = typeof label === "function" ? label() : label;
        reject(
          new WaitTimeoutError(
            `timed out after ${timeoutMs} ms waiting for ${what} (${this.items.length} items)`,
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
