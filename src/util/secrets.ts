/**
 * HMAC primitives shared by every secret-based check (PROTOCOL.md §14).
 *
 * Contracts:
 * - Keys and messages are strings, encoded as UTF-8 before hashing.
 * - An empty key is never used: signing/deriving with "" throws `EmptySecretError`.
 * - Imported CryptoKeys are cached per (hash, key) in a small bounded map, so repeated
 *   verification with the same secret does not re-import it.
 */

export type HmacHash = "SHA-256" | "SHA-384" | "SHA-512";

/** Thrown when a caller asks to sign or derive with an empty key. */
export class EmptySecretError extends Error {
  constructor(what = "HMAC key") {
    super(`${what} must not be empty`);
    this.name = "EmptySecretError";
  }
}

const encoder = new TextEncoder();

/** Upper bound on cached CryptoKeys; a config normally has only a handful of secrets. */
const KEY_CACHE_LIMIT = 64;
const keyCache = new Map<string, Promise<CryptoKey>>();

function importHmacKey(key: string, hash: HmacHash): Promise<CryptoKey> {
  // Hash names contain no ":", so the first ":" separates hash from key unambiguously.
  const cacheKey = `${hash}:${key}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;

  if (keyCache.size >= KEY_CACHE_LIMIT) {
    const oldest = keyCache.keys().next().value;
    if (oldest !== undefined) keyCache.delete(oldest);
  }
  const imported = crypto.subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  keyCache.set(cacheKey, imported);
  imported.catch(() => keyCache.delete(cacheKey));
  return imported;
}

/** Raw HMAC of `message` under `key`. Throws `EmptySecretError` for an empty key. */
export async function hmacBytes(
  key: string,
  message: string,
  hash: HmacHash = "SHA-256",
): Promise<Uint8Array> {
  if (key === "") throw new EmptySecretError();
  const cryptoKey = await importHmacKey(key, hash);
  const sig = await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(message));
  return new Uint8Array(sig);
}

/** Lowercase hex encoding of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Lowercase hex HMAC-SHA256(key, message). Throws `EmptySecretError` for an empty key. */
export async function hmacSha256Hex(key: string, message: string): Promise<string> {
  return toHex(await hmacBytes(key, message, "SHA-256"));
}

/**
 * Derives a purpose-specific key from the application secret (§14):
 * lowercase hex HMAC-SHA256(key = secret, message = purpose), e.g. purpose `broadcast-cable`.
 * Throws `EmptySecretError` for an empty secret: callers decide what "no secret" means.
 */
export async function deriveKey(secret: string, purpose: string): Promise<string> {
  if (secret === "") throw new EmptySecretError("secret");
  return await hmacSha256Hex(secret, purpose);
}

/**
 * String equality whose running time depends only on the lengths, not on where the
 * inputs differ. Different lengths return false immediately (length is not secret).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Byte-array counterpart of `timingSafeEqual`. */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
