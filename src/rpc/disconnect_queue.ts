import type { Logger } from "../logger/logger.ts";

export interface DisconnectQueueOptions {
  /** Calls per second while running normally. */
  rate: number;
  /** Queued calls beyond this are dropped (and logged). */
  backlog: number;
  logger: Logger;
}

/**
 * Disconnect RPC calls go through here: rate-limited while serving, flushed unthrottled on
 * shutdown within a deadline.
 */
export class DisconnectQueue {
  readonly #opts: DisconnectQueueOptions;
  readonly #items: Array<() => Promise<unknown>> = [];
  #running = false;
  #draining = false;
  #idle?: () => void;

  constructor(opts: DisconnectQueueOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#items.length;
  }

  enqueue(call: () => Promise<unknown>): void {
    if (this.#items.length >= this.#opts.backlog) {
      this.#opts.logger.warn("disconnect queue is full, dropping a Disconnect call", {
        backlog: this.#opts.backlog,
      });
      return;
    }
    this.#items.push(call);
    if (!this.#running) this.#run();
  }

  /** Runs everything left without throttling; gives up after `timeoutMs`. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (!this.#running && this.#items.length === 0) return;
    const idle = new Promise<void>((resolve) => (this.#idle = resolve));
    if (!this.#running) this.#run();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.#opts.logger.warn("shutdown timeout: Disconnect calls left unsent", {
        left: this.#items.length,
      });
      this.#items.length = 0;
    }
  }

  async #run(): Promise<void> {
    this.#running = true;
    const interval = 1000 / Math.max(1, this.#opts.rate);
    while (this.#items.length > 0) {
      const started = Date.now();
      if (this.#draining) {
        // Unthrottled, but bounded parallelism so the backend is not flooded.
        const batch = this.#items.splice(0, 16);
        await Promise.all(batch.map((call) => this.#exec(call)));
        continue;
      }
      const call = this.#items.shift()!;
      await this.#exec(call);
      const wait = interval - (Date.now() - started);
      if (wait > 0 && !this.#draining) await new Promise((r) => setTimeout(r, wait));
    }
    this.#running = false;
    this.#idle?.();
  }

  async #exec(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      this.#opts.logger.error("Disconnect RPC failed", { error: err });
    }
  }
}
