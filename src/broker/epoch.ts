/** Epoch ids: short random strings naming one storage generation (docs/protocol.md#stream-positions). */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

/** A random id of `length` URL-safe characters (4 like the reference unless asked otherwise). */
export function newEpoch(length = 4): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += ALPHABET[b & 63];
  return out;
}
