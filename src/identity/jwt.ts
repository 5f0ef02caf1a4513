/**
 * JWT identification tokens (PROTOCOL.md §6.2): HMAC-signed JWS compact tokens whose
 * `ext` claim carries the JSON-encoded connection identifiers.
 *
 * Verification contract (`verifyJwt`):
 * - Only HS256 / HS384 / HS512 are accepted; `none` and every other `alg` → `unauthorized`.
 * - Malformed input (segment count, base64url, JSON, non-object header/payload) and a
 *   signature made with another key → `unauthorized`. An empty secret verifies nothing.
 * - The signature is checked before any claim, so a forged expired token is `unauthorized`.
 * - `exp`/`nbf` (NumericDate seconds, fraction truncated) must be numbers when present,
 *   else `unauthorized`. `now >= exp` → `token_expired` (no leeway); `now < nbf` →
 *   `unauthorized`.
 * - A valid token whose `ext` is not a string → `missing_ext`; otherwise `identifiers` is
 *   the `ext` string verbatim.
 */

import { EmptySecretError, hmacBytes, type HmacHash, timingSafeEqual } from "../util/secrets.ts";

export type JwtAlgorithm = "HS256" | "HS384" | "HS512";

export type JwtFailureReason = "token_expired" | "unauthorized" | "missing_ext";

export type JwtResult =
  | { ok: true; identifiers: string; payload: Record<string, unknown> }
  | { ok: false; reason: JwtFailureReason };

/** Thrown by `signJwt` for an `alg` outside `JwtAlgorithm`. */
export class UnsupportedJwtAlgorithmError extends Error {
  constructor(readonly alg: string) {
    super(`unsupported JWT algorithm: ${alg} (expected HS256, HS384 or HS512)`);
    this.name = "UnsupportedJwtAlgorithmError";
  }
}

const HASH_BY_ALG: Record<JwtAlgorithm, HmacHash> = {
  HS256: "SHA-256",
  HS384: "SHA-384",
  HS512: "SHA-512",
};

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]*$/;
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isJwtAlgorithm(alg: unknown): alg is JwtAlgorithm {
  return typeof alg === "string" && Object.hasOwn(HASH_BY_ALG, alg);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function base64UrlEncode(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** Decodes one unpadded base64url segment holding a JSON object; null when it is not one. */
function decodeJsonSegment(segment: string): Record<string, unknown> | null {
  if (!BASE64URL_SEGMENT.test(segment) || segment.length % 4 === 1) return null;
  try {
    const bytes = Uint8Array.fromBase64(segment, { alphabet: "base64url" });
    const value: unknown = JSON.parse(strictUtf8.decode(bytes));
    return isPlainObject(value) ? value : null;
  } catch {
    return null;
  }
}

async function signatureFor(
  headerAndPayload: string,
  secret: string,
  alg: JwtAlgorithm,
): Promise<string> {
  return base64UrlEncode(await hmacBytes(secret, headerAndPayload, HASH_BY_ALG[alg]));
}

/** NumericDate claim in milliseconds: undefined when absent, null when not a finite number. */
function numericDateMs(payload: Record<string, unknown>, claim: string): number | undefined | null {
  if (!Object.hasOwn(payload, claim)) return undefined;
  const value = payload[claim];
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  return Math.trunc(value) * 1000;
}

const UNAUTHORIZED: JwtResult = { ok: false, reason: "unauthorized" };

/** Verifies `token` with `secret` at time `nowMs`; see the module contract above. */
export async function verifyJwt(
  token: string,
  secret: string,
  nowMs: number = Date.now(),
): Promise<JwtResult> {
  if (secret === "") return UNAUTHORIZED;

  const parts = token.split(".");
  if (parts.length !== 3) return UNAUTHORIZED;
  const [headerPart, payloadPart, signaturePart] = parts;

  const header = decodeJsonSegment(headerPart);
  if (header === null || !isJwtAlgorithm(header.alg)) return UNAUTHORIZED;

  const expected = await signatureFor(`${headerPart}.${payloadPart}`, secret, header.alg);
  if (!timingSafeEqual(signaturePart, expected)) return UNAUTHORIZED;

  const payload = decodeJsonSegment(payloadPart);
  if (payload === null) return UNAUTHORIZED;

  const expMs = numericDateMs(payload, "exp");
  const nbfMs = numericDateMs(payload, "nbf");
  if (expMs === null || nbfMs === null) return UNAUTHORIZED;
  if (expMs !== undefined && nowMs >= expMs) return { ok: false, reason: "token_expired" };
  if (nbfMs !== undefined && nowMs < nbfMs) return UNAUTHORIZED;

  const ext = payload.ext;
  if (typeof ext !== "string") return { ok: false, reason: "missing_ext" };
  return { ok: true, identifiers: ext, payload };
}

/**
 * Signs `payload` as a compact JWS with header `{"alg":alg,"typ":"JWT"}`.
 * Throws `EmptySecretError` for an empty secret and `UnsupportedJwtAlgorithmError` for
 * an algorithm other than HS256/HS384/HS512.
 */
export async function signJwt(
  payload: Record<string, unknown>,
  secret: string,
  alg: JwtAlgorithm = "HS256",
): Promise<string> {
  if (!isJwtAlgorithm(alg)) throw new UnsupportedJwtAlgorithmError(String(alg));
  if (secret === "") throw new EmptySecretError("JWT secret");
  const header = base64UrlEncode(encoder.encode(JSON.stringify({ alg, typ: "JWT" })));
  const body = base64UrlEncode(encoder.encode(JSON.stringify(payload)));
  const input = `${header}.${body}`;
  return `${input}.${await signatureFor(input, secret, alg)}`;
}

/**
 * Issues an identification token: `ext` = `identifiers` (a string is taken as already
 * JSON-encoded, an object is JSON-encoded) and, when `ttlSeconds` is given,
 * `exp` = floor(nowMs / 1000) + ttlSeconds. Throws `RangeError` for a non-finite TTL.
 */
export async function issueToken(
  identifiers: Record<string, unknown> | string,
  secret: string,
  ttlSeconds?: number,
  nowMs: number = Date.now(),
  alg: JwtAlgorithm = "HS256",
): Promise<string> {
  const ext = typeof identifiers === "string" ? identifiers : JSON.stringify(identifiers);
  const payload: Record<string, unknown> = { ext };
  if (ttlSeconds !== undefined) {
    if (!Number.isFinite(ttlSeconds)) {
      throw new RangeError(`ttlSeconds must be finite, got ${ttlSeconds}`);
    }
    payload.exp = Math.floor(nowMs / 1000) + Math.trunc(ttlSeconds);
  }
  return await signJwt(payload, secret, alg);
}
