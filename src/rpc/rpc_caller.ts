import type { Logger } from "../logger/logger.ts";
import {
  type CallMeta,
  type CommandRequest,
  type CommandResponse,
  type ConnectRequest,
  type ConnectResponse,
  type DisconnectRequest,
  type DisconnectResponse,
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
  pending: number;
}

/**
 * Wraps an RpcClient with a concurrency limit, a per-call deadline and retries with
 * exponential backoff for an unreachable backend.
 */
export class RpcCaller {
  readonly #client: RpcClient;
  readonly #opts: Required<RpcCallerOptions>;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];
  readonly stats: RpcStats = { calls: 0, errors: 0, retries: 0, timeouts: 0, pending: 0 };

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
    this.stats.calls++;
    let attempt = 0;
    for (;;) {
      let delay = 0;
      await this.#acquire();
      try {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new RpcTimeoutError(`${name}: call budget exhausted`);
        const budget = AbortSignal.timeout(remaining);
        const signal = meta.signal ? AbortSignal.any([meta.signal, budget]) : budget;
        return await fn({ ...meta, signal });
      } catch (err) {
        if (err instanceof RpcTimeoutError || isAbort(err)) {
          this.stats.timeouts++;
          this.stats.errors++;
          throw err instanceof RpcTimeoutError
            ? err
            : new RpcTimeoutError(`${name}: no answer within the call budget`, { cause: err });
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
      await sleep(delay);
    }
  }

  #acquire(): Promise<void> {
    if (this.#inFlight < this.#opts.concurrency) {
      this.#inFlight++;
      return Promise.resolve();
    }
    this.stats.pending++;
    return new Promise((resolve) =>
      this.#waiting.push(() => {
        this.stats.pending--;
        this.#inFlight++;
        resolve();
      })
    );
  }

  #release(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
