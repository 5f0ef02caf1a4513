import { deadlines } from "../util/deadline_clock.ts";

/**
 * A signal that aborts when `parent` aborts or `ms` pass, whichever comes first: what
 * `AbortSignal.any([parent, AbortSignal.timeout(ms)])` gives, for one controller, one entry in
 * the shared deadline clock (no runtime timer of its own) and one listener (no dependent-signal
 * bookkeeping), released by done(). RPC calls make one per call, a hot path in a connection
 * storm. The deadline fires up to 10 ms late, never early.
 */
export class CallSignal {
  readonly #ctl = new AbortController();
  readonly #parent?: AbortSignal;
  /** The deadline's tick in the clock, while it is pending. */
  #tick?: number;
  /** The timer fired (as opposed to the parent aborting). */
  timedOut = false;

  constructor(parent: AbortSignal | undefined, ms: number) {
    this.#parent = parent;
    if (parent?.aborted) {
      this.#ctl.abort(parent.reason);
      return;
    }
    this.#tick = deadlines.add(this, ms);
    parent?.addEventListener("abort", this);
  }

  get signal(): AbortSignal {
    return this.#ctl.signal;
  }

  /** The parent aborted (EventListenerObject: no closure per call). */
  handleEvent(): void {
    this.done();
    this.#ctl.abort(this.#parent?.reason);
  }

  /** The deadline passed: aborts with a TimeoutError, as AbortSignal.timeout does. */
  expire(): void {
    this.#tick = undefined;
    this.#parent?.removeEventListener("abort", this);
    this.timedOut = true;
    this.#ctl.abort(new DOMException("Signal timed out.", "TimeoutError"));
  }

  /** Stops the timer and the listener; call it once the call has settled. */
  done(): void {
    if (this.#tick !== undefined) {
      deadlines.cancel(this, this.#tick);
      this.#tick = undefined;
    }
    this.#parent?.removeEventListener("abort", this);
  }
}

/**
 * A client's own deadline for one request of `ms`, or undefined when the signal the caller passed
 * (its call budget, see CallMeta.deadline) fires first anyway. The caller releases it with done()
 * when the request ends.
 */
export function requestDeadline(
  caller: { signal?: AbortSignal; deadline?: number },
  ms: number,
): CallSignal | undefined {
  return caller.signal && caller.deadline !== undefined && caller.deadline - Date.now() <= ms
    ? undefined
    : new CallSignal(caller.signal, ms);
}

/**
 * Runs one request under requestDeadline(caller, ms): `request` gets that deadline (undefined
 * when the caller's own signal fires first) and the signal to pass on, and the deadline is
 * released when the request settles.
 */
export async function withRequestDeadline<T>(
  caller: { signal?: AbortSignal; deadline?: number },
  ms: number,
  request: (own: CallSignal | undefined, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const own = requestDeadline(caller, ms);
  try {
    return await request(own, own?.signal ?? caller.signal!);
  } finally {
    own?.done();
  }
}
