/**
 * JSON documents in NATS JetStream KV buckets, with revision checks (create = only if absent,
 * update = only if unchanged) for optimistic, conflict-retried updates.
 */
import type { KV } from "nats";

/** A JSON document read from a bucket with the revision to compare against when writing. */
export interface Versioned<T> {
  value: T | null;
  /** 0 when the key has never been written (write with `create`). */
  revision: number;
  /** The last operation was a delete/purge (write with `update` on `revision`). */
  deleted: boolean;
}

export class KvConflictError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KvConflictError";
  }
}

/** Optimistic updates give up after this many conflicts in a row. */
export const MAX_ATTEMPTS = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Any string as a KV key token (KV keys allow only `[-/_=.A-Za-z0-9]`): base64url. */
export function keyToken(s: string): string {
  const bytes = encoder.encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** The inverse of keyToken. */
export function fromKeyToken(token: string): string {
  const b64 = token.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return decoder.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

export async function readJson<T>(kv: KV, key: string): Promise<Versioned<T>> {
  const entry = await kv.get(key);
  if (entry === null) return { value: null, revision: 0, deleted: false };
  if (entry.operation !== "PUT") return { value: null, revision: entry.revision, deleted: true };
  return {
    value: JSON.parse(decoder.decode(entry.value)) as T,
    revision: entry.revision,
    deleted: false,
  };
}

/**
 * Writes `value` only if the key is still as `read` saw it; returns false on a conflict
 * (someone else wrote first), throws other errors.
 */
export async function writeJsonIfUnchanged<T>(
  kv: KV,
  key: string,
  value: T,
  read: Versioned<unknown>,
): Promise<boolean> {
  const data = encoder.encode(JSON.stringify(value));
  try {
    if (read.revision === 0) await kv.create(key, data);
    else await kv.update(key, data, read.revision);
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

/** Creates `key` only if absent; false when it already exists. */
export async function createJson<T>(kv: KV, key: string, value: T): Promise<boolean> {
  try {
    await kv.create(key, encoder.encode(JSON.stringify(value)));
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

/**
 * Read-modify-write with retries on conflict. `change` returns the new document, or
 * `undefined` to leave the key untouched; the result of the last `change` call is returned.
 */
export async function modifyJson<T, R>(
  kv: KV,
  key: string,
  change: (current: T | null) => { next?: T; result: R },
): Promise<R> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const read = await readJson<T>(kv, key);
    const { next, result } = change(read.value);
    if (next === undefined) return result;
    if (await writeJsonIfUnchanged(kv, key, next, read)) return result;
  }
  throw new KvConflictError(`update of ${key} kept conflicting`);
}

/** JetStream "wrong last sequence" (10071): the revision check failed. */
function isConflict(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string } | null;
  return e?.api_error?.err_code === 10071 ||
    (typeof e?.message === "string" && e.message.includes("wrong last sequence"));
}
