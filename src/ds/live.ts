import type { StreamMessage } from "../broker/broker.ts";
import type { Hub, Subscriber } from "../hub/hub.ts";

export type WaitOutcome = "changed" | "timeout" | "aborted";

const IDENTIFIER = JSON.stringify({ channel: "$durable_streams" });

/**
 * Wakes Durable Streams readers (long-poll, SSE) when their stream changes. Publications reach
 * them through the hub like any subscriber (so appends on other nodes arrive via the pub/sub);
 * this node's closes and deletes wake them directly.
 */
export class DsLive {
  readonly #hub: Hub;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #subscribers = new Map<string, Subscriber>();
  #closed = false;

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  /** Something about `stream` changed: every reader waiting on it re-reads. */
  changed(stream: string): void {
    const set = this.#waiters.get(stream);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /** Resolves on the next change of `stream`, after `timeoutMs`, or when `signal` aborts. */
  wait(stream: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.#closed || signal?.aborted) return Promise.resolve("aborted");
    return new Promise((resolve) => {
      let set = this.#waiters.get(stream);
      if (!set) {
        this.#waiters.set(stream, set = new Set());
        this.#subscribe(stream);
      }
      const done = (outcome: WaitOutcome) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        set!.delete(wake);
        if (set!.size === 0 && this.#waiters.get(stream) === set) {
          this.#waiters.delete(stream);
          this.#unsubscribe(stream);
        }
        resolve(outcome);
      };
      const wake = () => done(this.#closed ? "aborted" : "changed");
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done("timeout"), timeoutMs);
      signal?.addEventListener("abort", onAbort);
      set.add(wake);
    });
  }

  /** Ends every wait (shutdown). */
  close(): void {
    this.#closed = true;
    for (const stream of [...this.#waiters.keys()]) this.changed(stream);
  }

  #subscribe(stream: string): void {
    const sub: Subscriber = {
      sid: `ds-live:${stream}`,
      positions: true,
      deliver: (_identifier: string, _frame: string, _msg: StreamMessage) => this.changed(stream),
    };
    this.#subscribers.set(stream, sub);
    this.#hub.subscribe(sub, stream, IDENTIFIER);
  }

  #unsubscribe(stream: string): void {
    const sub = this.#subscribers.get(stream);
    if (!sub) return;
    this.#subscribers.delete(stream);
    this.#hub.unsubscribe(sub, stream, IDENTIFIER);
  }
}
