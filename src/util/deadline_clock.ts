/**
 * Many short deadlines on one timer. A connection storm makes three RPC calls per connection,
 * each with a deadline it nearly always beats: a runtime timer per call (created, then cleared)
 * cost more than the rest of the call's bookkeeping. Here a deadline is an entry in the set of
 * its due tick, and one interval, running only while deadlines are pending, expires the due
 * sets. Deadlines fire up to one tick (10 ms) late, never early.
 */

/** What a deadline fires. */
export interface Expiring {
  expire(): void;
}

const TICK_MS = 10;

export class DeadlineClock {
  readonly #due = new Map<number, Set<Expiring>>();
  readonly #tickMs: number;
  #pending = 0;
  /** The last tick whose set was expired. */
  #done: number;
  #timer?: ReturnType<typeof setInterval>;

  constructor(tickMs = TICK_MS) {
    this.#tickMs = tickMs;
    this.#done = this.#now();
  }

  /** Fires `item.expire()` once `ms` have passed, unless cancel() comes first; returns its tick. */
  add(item: Expiring, ms: number): number {
    if (this.#timer === undefined) {
      this.#done = Math.max(this.#done, this.#now());
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    }
    const tick = Math.max(this.#done + 1, Math.ceil((performance.now() + ms) / this.#tickMs));
    let set = this.#due.get(tick);
    if (!set) this.#due.set(tick, set = new Set());
    set.add(item);
    this.#pending++;
    return tick;
  }

  /** Forgets a deadline add() filed at `tick` (no-op when it fired or was cancelled). */
  cancel(item: Expiring, tick: number): void {
    const set = this.#due.get(tick);
    if (!set?.delete(item)) return;
    if (set.size === 0) this.#due.delete(tick);
    if (--this.#pending === 0) this.#stop();
  }

  /** Deadlines waiting to fire. */
  get pending(): number {
    return this.#pending;
  }

  #now(): number {
    return Math.floor(performance.now() / this.#tickMs);
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = this.#now();
    // A late timer catches up tick by tick (each a map lookup); usually this is one step.
    while (this.#done < now) {
      const set = this.#due.get(++this.#done);
      if (!set) continue;
      this.#due.delete(this.#done);
      this.#pending -= set.size;
      for (const item of set) item.expire();
    }
    if (this.#pending === 0) this.#stop();
  }
}

/** The process's clock for RPC call deadlines. */
export const deadlines = new DeadlineClock();
