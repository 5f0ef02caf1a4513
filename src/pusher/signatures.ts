import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Pusher's HMAC-SHA256 signatures (hex digests, keyed with the app secret):
 * - channel auth `<key>:<sig>` over `<socket_id>:<channel>` (private) or
 *   `<socket_id>:<channel>:<channel_data>` (presence);
 * - user sign-in auth `<key>:<sig>` over `<socket_id>::user::<user_data>`;
 * - HTTP API requests: `auth_signature` over `<METHOD>\n<path>\n<sorted query without it>`.
 */
export class PusherSigner {
  readonly #key: string;
  readonly #secret: string;

  constructor(key: string, secret: string) {
    if (!secret) throw new Error("a Pusher secret is required");
    this.#key = key;
    this.#secret = secret;
  }

  sign(message: string): string {
    return createHmac("sha256", this.#secret).update(message).digest("hex");
  }

  /** Checks `auth` = `<key>:<hex signature of message>` in constant time. */
  verifyAuth(auth: unknown, message: string): boolean {
    if (typeof auth !== "string") return false;
    const colon = auth.indexOf(":");
    if (colon < 0 || auth.slice(0, colon) !== this.#key) return false;
    return safeEqual(auth.slice(colon + 1), this.sign(message));
  }

  verifyChannel(socketId: string, channel: string, auth: unknown, channelData?: string): boolean {
    const message = channelData === undefined
      ? `${socketId}:${channel}`
      : `${socketId}:${channel}:${channelData}`;
    return this.verifyAuth(auth, message);
  }

  verifyUser(socketId: string, userData: string, auth: unknown): boolean {
    return this.verifyAuth(auth, `${socketId}::user::${userData}`);
  }

  /**
   * Checks an HTTP API request's query signature; returns why it fails, or null when valid.
   * `nowSeconds` is compared with auth_timestamp (±`maxSkewSeconds`).
   */
  verifyRequest(
    method: string,
    path: string,
    query: URLSearchParams,
    body: string,
    nowSeconds: number,
    maxSkewSeconds = 600,
  ): string | null {
    if (query.get("auth_key") !== this.#key) return "unknown auth_key";
    if (query.get("auth_version") !== "1.0") return "auth_version must be 1.0";
    const ts = query.get("auth_timestamp") ?? "";
    if (!/^\d+$/.test(ts)) return "auth_timestamp is missing";
    if (Math.abs(nowSeconds - Number(ts)) > maxSkewSeconds) {
      return `auth_timestamp is more than ${maxSkewSeconds} s from the server's time`;
    }
    if (body !== "") {
      const md5 = createHash("md5").update(body).digest("hex");
      if (query.get("body_md5") !== md5) return "body_md5 does not match the body";
    }
    const signature = query.get("auth_signature");
    if (!signature) return "auth_signature is missing";
    const params = [...query.entries()]
      .filter(([k]) => k !== "auth_signature")
      .map(([k, v]) => [k.toLowerCase(), v] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const expected = this.sign(`${method.toUpperCase()}\n${path}\n${params}`);
    return safeEqual(signature, expected) ? null : "invalid auth_signature";
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
