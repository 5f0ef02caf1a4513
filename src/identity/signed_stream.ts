/**
 * Signed stream names (PROTOCOL.md §8), Rails MessageVerifier with the JSON serializer:
 *
 *   signed = base64(utf8(JSON.stringify(name))) + "--" + hex(HMAC-SHA256(secret, base64 text))
 *
 * Base64 is the standard alphabet with padding; the digest is lowercase hex and compared
 * case-sensitively in constant time. Unlike the reference, an empty secret never verifies.
 */

import { EmptySecretError, hmacSha256Hex, timingSafeEqual } from "../util/secrets.ts";

const SEPARATOR = "--";
const PADDED_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Signs `name`. Throws `EmptySecretError` for an empty secret. */
export async function signStream(name: string, secret: string): Promise<string> {
  if (secret === "") throw new EmptySecretError("streams secret");
  const data = encoder.encode(JSON.stringify(name)).toBase64();
  return `${data}${SEPARATOR}${await hmacSha256Hex(secret, data)}`;
}

/** Decodes strict padded base64 holding a UTF-8 JSON string; null for anything else. */
function decodeStreamName(data: string): string | null {
  if (data.length % 4 !== 0 || !PADDED_BASE64.test(data)) return null;
  try {
    const bytes = Uint8Array.fromBase64(data, { lastChunkHandling: "strict" });
    const value: unknown = JSON.parse(strictUtf8.decode(bytes));
    return typeof value === "string" ? value : null;
  } catch {
    return null;
  }
}

/**
 * Returns the stream name carried by `signed`, or null when the secret is empty, the
 * format is wrong, the digest does not match, or the payload is not a JSON string.
 */
export async function verifyStream(signed: string, secret: string): Promise<string | null> {
  if (secret === "") return null;
  const parts = signed.split(SEPARATOR);
  if (parts.length !== 2) return null;
  const [data, digest] = parts;
  const expected = await hmacSha256Hex(secret, data);
  if (!timingSafeEqual(digest, expected)) return null;
  return decodeStreamName(data);
}
