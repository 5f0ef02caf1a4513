import type { Logger } from "../logger/logger.ts";
import { CallSignal } from "./call_signal.ts";
import {
  type CallMeta,
  type CommandRequest,
  type CommandResponse,
  type ConnectRequest,
  type ConnectResponse,
  type DisconnectRequest,
  type DisconnectResponse,
  RpcCanceledError,
  type RpcClient,
  RpcTimeoutError,
  RpcUnavailableError,
} from "./rpc_client.ts";

export interface RpcCallerOptions {
  /** Maximum calls in flight; the rest wait in FIFO order. */
  concurrency: number;
  /** Budget for one call including retries, ms. */
  callTimeout: number;
  /** First retry delay, doubled each time, ms. */
  retryBase?: number;
  logger: Logger;
}

export interface RpcStats {
  calls: number;
  errors: number;
  retries: number;
  timeouts: number;
  /** Calls dropped or abandoned because their session had gone. */
  canceled: number;
  pending: number;
}

/**
 * Wraps an RpcClient with a concurrency limit, a per-call deadline and retries with
 * exponential backoff for an unreachable backend. A call whose `meta.signal` aborts (its
 * session closed) is never sent late: dropped while it waits for a slot or a retry, its
 * request abandoned while in flight; either way it ends with RpcCanceledError.
 */
export class RpcCaller {
  readonly #client: RpcClient;
  readonly #opts: Required<RpcCallerOptions>;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];
  readonly stats: RpcStats = {
    calls: 0,
    errors: 0,
    retries: 0,
    timeouts: 0,
    canceled: 0,
    pending: 0,
  };

  constructor(client: RpcClient, opts: RpcCallerOptions) {
    this.#client = client;
    this.#opts = { retryBase: 100, ...opts };
  }

  connect(req: ConnectRequest, meta: CallMeta): Promise<ConnectResponse> {
    return this.#call("connect", (m) => this.#client.connect(req, m), meta);
  }

  command(req: CommandRequest, meta: CallMeta): Promise<CommandResponse> {
    return this.#call("command", (m) => this.#client.command(req, m), meta);
  }

  disconnect(req: DisconnectRequest, meta: CallMeta): Promise<DisconnectResponse> {
    return this.#call("disconnect", (m) => this.#client.disconnect(req, m), meta);
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  async #call<T>(name: string, fn: (meta: CallMeta) => Promise<T>, meta: CallMeta): Promise<T> {
    const deadline = Date.now() + this.#opts.callTimeout;
    const gone = meta.signal;
    this.stats.calls++;
    // One signal for the whole call (every attempt): the session going or the budget running
    // out aborts it. Clients see the deadline and skip a timer of their own that would fire later.
    const call = new CallSignal(gone, this.#opts.callTimeout);
    const callMeta: CallMeta = { ...meta, signal: call.signal, deadline };
    try {
      let attempt = 0;
      for (;;) {
        let delay = 0;
        await this.#acquire(name, gone);
        try {
          if (gone?.aborted) throw this.#canceled(name, "dropped before it was sent");
          if (deadline - Date.now() <= 0 || call.timedOut) {
            throw new RpcTimeoutError(`${name}: call budget exhausted`);
          }
          return await fn(callMeta);
        } catch (err) {
          if (err instanceof RpcCanceledError) throw err;
          if (gone?.aborted) throw this.#canceled(name, "abandoned in flight", err);
          if (err instanceof RpcTimeoutError || isAbort(err)) {
            this.stats.timeouts++;
            this.stats.errors++;
            throw err instanceof RpcTimeoutError ? err : new RpcTimeoutError(
              `${name}: no answer within the call budget (${this.#opts.callTimeout} ms)`,
              { cause: err },
            );
          }
          const base = err instanceof RpcUnavailableError && err.retryBase !== undefined
            ? err.retryBase
            : this.#opts.retryBase;
          delay = base * 2 ** attempt;
          if (!(err instanceof RpcUnavailableError) || Date.now() + delay >= deadline) {
            this.stats.errors++;
            throw err;
          }
          attempt++;
          this.stats.retries++;
          this.#opts.logger.debug("rpc retry", { call: name, attempt, error: err, sid: meta.sid });
        } finally {
          this.#release();
        }
        await sleep(delay, gone);
      }
    } finally {
      call.done();
    }
  }

  #canceled(name: string, what: string, cause?: unknown): RpcCanceledError {
    this.stats.canceled++;
    return new RpcCanceledError(`${name}: session closed; call ${what}`, { cause });
  }

  /** Takes a slot; a call whose session goes while it waits leaves the line at once. */
  #acquire(name: string, gone?: AbortSignal): Promise<void> {
    if (this.#inFlight < this.#opts.concurrency) {
      this.#inFlight++;
      return Promise.resolve();
    }
    if (gone?.aborted) return Promise.reject(this.#canceled(name, "dropped before it was sent"));
    this.stats.pending++;
    return new Promise((resolve, reject) => {
      const take = () => {
        gone?.removeEventListener("abort", leave);
        this.stats.pending--;
        this.#inFlight++;
        resolve();
      };
      const leave = () => {
        const at = this.#waiting.indexOf(take);
        if (at < 0) return;
        this.#waiting.splice(at, 1);
        this.stats.pending--;
        reject(this.#canceled(name, "dropped before it was sent"));
      };
      gone?.addEventListener("abort", leave, { once: true });
      this.#waiting.push(take);
    });
  }

  #release(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** Waits `ms`, or less if `signal` aborts (the next attempt then finds it aborted). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
