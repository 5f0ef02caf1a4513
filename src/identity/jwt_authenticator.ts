import type { Authenticator, AuthOutcome } from "../node/authenticator.ts";
import type { ConnectionRequest } from "../transport/connection.ts";
import { urlQuery } from "../util/url_query.ts";
import { verifyJwt } from "./jwt.ts";

export interface JwtAuthenticatorOptions {
  secret: string;
  /** Query parameter name; the header is `x-<param>`. */
  param: string;
  enforce: boolean;
}

/** Finds the token: `x-<param>` header, `anycable-token.<jwt>` subprotocol, `?<param>=`. */
export function findToken(req: ConnectionRequest, param: string): string | null {
  const header = req.headers.get(`x-${param}`);
  if (header) return header;
  const offer = req.headers.get("sec-websocket-protocol") ?? "";
  for (const p of offer.split(",")) {
    const trimmed = p.trim();
    if (trimmed.startsWith("anycable-token.")) return trimmed.slice("anycable-token.".length);
  }
  return urlQuery(req.url).get(param);
}

/** JWT identification (docs/protocol.md#jwt): a valid token means no Connect RPC. */
export class JwtAuthenticator implements Authenticator {
  readonly #opts: JwtAuthenticatorOptions;

  constructor(opts: JwtAuthenticatorOptions) {
    this.#opts = opts;
  }

  async identify(_sid: string, req: ConnectionRequest): Promise<AuthOutcome | null> {
    const token = findToken(req, this.#opts.param);
    if (!token) {
      return this.#opts.enforce ? { ok: false, reason: "unauthorized", reconnect: false } : null;
    }
    const result = await verifyJwt(token, this.#opts.secret);
    if (result.ok) {
      const exp = result.payload.exp; // verified: a number when present (seconds)
      const expiresAt = typeof exp === "number" ? Math.trunc(exp) * 1000 : undefined;
      return { ok: true, identifiers: result.identifiers, expiresAt };
    }
    if (result.reason === "missing_ext") {
      return { ok: false, reason: "internal_error", reconnect: false, error: true };
    }
    return { ok: false, reason: result.reason, reconnect: false };
  }
}
