import type { Hub, Subscriber } from "../hub/hub.ts";

export type WaitOutcome = "changed" | "timeout" | "aborted";

const IDENTIFIER = JSON.stringify({ channel: "$durable_streams" });

/**
 * One reader's interest in a stream. It notes changes from the moment it is created, so a
 * change between a read and the next wait is never missed.
 */
export class Watch {
  #dirty = false;
  #wake?: () => void;
  #closed = false;
  readonly #release: () => void;

  constructor(release: () => void) {
    this.#release = release;
  }

  notify(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  /** Resolves on a change since the last call, after `timeoutMs`, or on `signal`. */
  next(timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.#closed || signal?.aborted) return Promise.resolve("aborted");
    if (this.#dirty) {
      this.#dirty = false;
      return Promise.resolve("changed");
    }
    return new Promise((resolve) => {
      const done = (outcome: WaitOutcome) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#wake = undefined;
        if (outcome === "changed") this.#dirty = false;
        resolve(this.#closed ? "aborted" : outcome);
      };
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done("timeout"), timeoutMs);
      signal?.addEventListener("abort", onAbort);
      this.#wake = () => done("changed");
    });
  }

  /** Ends the watch (and any pending wait). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    this.#release();
  }
}

/**
 * Wakes Durable Streams readers (long-poll, SSE) when their stream changes. Publications reach
 * them through the hub like any subscriber (so appends on other nodes arrive via the pub/sub);
 * this node's closes and deletes wake them directly.
 */
export class DsLive {
  readonly #hub: Hub;
  readonly #watches = new Map<string, Set<Watch>>();
  readonly #subscribers = new Map<string, Subscriber>();
  #closed = false;

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  /** Something about `stream` changed: every reader watching it re-reads. */
  changed(stream: string): void {
    const set = this.#watches.get(stream);
    if (!set) return;
    for (const w of [...set]) w.notify();
  }

  /** Readers currently watching some stream. */
  get watching(): number {
    let n = 0;
    for (const set of this.#watches.values()) n += set.size;
    return n;
  }

  /** Starts watching `stream`; close the watch when done. */
  watch(stream: string): Watch {
    let set = this.#watches.get(stream);
    if (!set) {
      this.#watches.set(stream, set = new Set());
      this.#subscribe(stream);
    }
    const watches = set;
    const w: Watch = new Watch(() => {
      watches.delete(w);
      if (watches.size === 0 && this.#watches.get(stream) === watches) {
        this.#watches.delete(stream);
        this.#unsubscribe(stream);
      }
    });
    if (this.#closed) w.close();
    else watches.add(w);
    return w;
  }

  /** Ends every watch (shutdown). */
  close(): void {
    this.#closed = true;
    for (const set of [...this.#watches.values()]) for (const w of [...set]) w.close();
  }

  #subscribe(stream: string): void {
    const sub: Subscriber = {
      sid: `ds-live:${stream}`,
      positions: true,
      deliver: () => this.changed(stream),
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
