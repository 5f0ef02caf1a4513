import type { ConnectionRequest } from "../transport/connection.ts";

/** An identification step that runs before the controller's Connect (JWT, noauth). */
export interface Authenticator {
  /**
   * `null`: not applicable, try the next step. `ok`: identified without RPC.
   * Otherwise: refuse with a disconnect reason.
   */
  identify(sid: string, req: ConnectionRequest): Promise<AuthOutcome | null>;
}

export type AuthOutcome =
  /** `expiresAt` (ms): when the credential expires; a session is not restored past it. */
  | { ok: true; identifiers: string; expiresAt?: number }
  | { ok: false; reason: string; reconnect: boolean; error?: boolean };

/** `--noauth` / `--public`: everyone is identified by their sid. */
export class NoAuthAuthenticator implements Authenticator {
  identify(sid: string): Promise<AuthOutcome> {
    return Promise.resolve({ ok: true, identifiers: JSON.stringify({ sid }) });
  }
}
