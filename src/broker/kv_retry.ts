/**
 * Deno KV calls that ride out SQLite lock contention. A local KV file shared by several
 * processes reports a concurrent writer as "database is locked" instead of waiting; such a
 * call did not take effect (a failed commit wrote nothing), so it is simply repeated after a
 * short, growing, jittered pause.
 */

/** Give up and rethrow after waiting this long in total. */
const MAX_WAIT_MS = 10_000;
const MAX_PAUSE_MS = 50;

function isBusy(err: unknown): boolean {
  return err instanceof Error && /database is (locked|busy)/i.test(err.message);
}

/** Runs `call`, repeating it while it fails with a lock-contention error. */
export async function retryBusy<T>(call: () => Promise<T>): Promise<T> {
  let waited = 0;
  for (let pause = 1;; pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    try {
      return await call();
    } catch (err) {
      if (!isBusy(err) || waited >= MAX_WAIT_MS) throw err;
      const ms = pause / 2 + Math.random() * pause;
      await new Promise((resolve) => setTimeout(resolve, ms));
      waited += ms;
    }
  }
}

/** The subset of Deno.Kv the brokers use, each call retried on lock contention. */
export class RetryingKv {
  readonly kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.kv = kv;
  }

  get<T>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    return retryBusy(() => this.kv.get<T>(key));
  }

  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    return retryBusy(() => this.kv.getMany<T>(keys));
  }

  /** All entries of `selector`, read again from the start if a page hits contention. */
  list<T>(selector: Deno.KvListSelector): Promise<Deno.KvEntry<T>[]> {
    return retryBusy(async () => {
      const out: Deno.KvEntry<T>[] = [];
      for await (const e of this.kv.list<T>(selector)) out.push(e);
      return out;
    });
  }

  atomic(): Deno.AtomicOperation {
    return this.kv.atomic();
  }

  /** Commits `op`; repeating a commit is safe because a failed one wrote nothing. */
  commit(op: Deno.AtomicOperation): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    return retryBusy(() => op.commit());
  }
}
