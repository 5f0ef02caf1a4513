/**
 * A signal that aborts when `parent` aborts or `ms` pass, whichever comes first: what
 * `AbortSignal.any([parent, AbortSignal.timeout(ms)])` gives, for one controller, one timer and
 * one listener (no dependent-signal bookkeeping), released by done(). RPC calls make one per
 * call, a hot path in a connection storm.
 */
export class CallSignal {
  readonly #ctl = new AbortController();
  readonly #parent?: AbortSignal;
  #timer?: ReturnType<typeof setTimeout>;
  /** The timer fired (as opposed to the parent aborting). */
  timedOut = false;

  constructor(parent: AbortSignal | undefined, ms: number) {
    this.#parent = parent;
    if (parent?.aborted) {
      this.#ctl.abort(parent.reason);
      return;
    }
    this.#timer = setTimeout(fire, ms, this);
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

  /** The timer fired: aborts with a TimeoutError, as AbortSignal.timeout does. */
  expire(): void {
    this.#timer = undefined;
    this.#parent?.removeEventListener("abort", this);
    this.timedOut = true;
    this.#ctl.abort(new DOMException("Signal timed out.", "TimeoutError"));
  }

  /** Stops the timer and the listener; call it once the call has settled. */
  done(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#parent?.removeEventListener("abort", this);
  }
}

function fire(s: CallSignal): void {
  s.expire();
}
