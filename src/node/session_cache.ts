import { PROTOCOL_EXT_JSON } from "../protocol/messages.ts";
import type { ConnectionRequest } from "../transport/connection.ts";
import { urlQuery } from "../util/url_query.ts";
import type { Node } from "./node.ts";
import type { Session, Subscription } from "./session.ts";

/** The default of --restore_hold_timeout (ms). */
export const RESTORE_HOLD_TIMEOUT_MS = 3000;

/** What the broker keeps of a session for a later restore (docs/protocol.md#session-restore). */
interface CachedSession {
  identifiers: string;
  cstate: Record<string, string>;
  interest: boolean;
  /** When the credential that identified the session expires (ms since epoch). */
  expires_at?: number;
  subscriptions: Record<string, { istate: Record<string, string>; streams: string[] }>;
}

/** Whether the session is saved for restores (callers check first: no async call otherwise). */
export function cacheable(node: Node, session: Session): boolean {
  return session.ext && session.transport === "ws" && node.deps.broker.persistent &&
    node.opts.sessionsTtl > 0 && session.identifiers !== undefined;
}

/**
 * The backend's welcome with this session's `sid` added when the session is restorable and the
 * backend left it out (a Rails backend over HTTP RPC adds it only with a middleware), so restore
 * works with every backend. Any other transmission is returned unchanged.
 */
export function welcomeWithSid(node: Node, session: Session, frame: string): string {
  if (!cacheable(node, session) || !frame.includes('"welcome"')) return frame;
  let msg: unknown;
  try {
    msg = JSON.parse(frame);
  } catch {
    return frame;
  }
  if (
    typeof msg !== "object" || msg === null || Array.isArray(msg) ||
    (msg as { type?: unknown }).type !== "welcome" ||
    (typeof (msg as { sid?: unknown }).sid === "string" && (msg as { sid: string }).sid !== "")
  ) {
    return frame;
  }
  return JSON.stringify({ ...msg, sid: session.sid });
}

/** Saves the session so a reconnecting client can restore it without a Connect call. */
export async function commitSession(node: Node, session: Session): Promise<void> {
  if (!cacheable(node, session)) return;
  const cached: CachedSession = {
    identifiers: session.identifiers!,
    cstate: session.cstate,
    interest: session.interest,
    subscriptions: {},
  };
  if (session.expiresAt !== undefined) cached.expires_at = session.expiresAt;
  for (const [identifier, sub] of session.subscriptions) {
    cached.subscriptions[identifier] = { istate: sub.istate, streams: [...sub.streams] };
  }
  try {
    await node.deps.broker.commitSession(session.sid, JSON.stringify(cached));
  } catch (err) {
    session.logger.warn("failed to cache the session", { error: err });
  }
}

/** Whether a session of this request could be restored (the cheap check before restoreSession). */
export function restorable(node: Node, req: ConnectionRequest): boolean {
  return req.protocol === PROTOCOL_EXT_JSON && req.transport === "ws" &&
    node.deps.broker.persistent && node.opts.sessionsTtl > 0;
}

/**
 * Restores a session from `?sid=` or X-ANYCABLE-RESTORE-SID (ext protocol only). Returns
 * false on a miss so the caller authenticates normally.
 */
export async function restoreSession(
  node: Node,
  session: Session,
  req: ConnectionRequest,
): Promise<boolean> {
  if (!restorable(node, req)) return false;
  const oldSid = req.headers.get("x-anycable-restore-sid") ||
    urlQuery(req.url).get("sid");
  if (!oldSid) return false;
  let raw: string | null;
  try {
    raw = await node.deps.broker.restoreSession(oldSid);
  } catch (err) {
    session.logger.warn("session restore failed", { error: err });
    return false;
  }
  if (!raw) return false;
  let cached: CachedSession;
  try {
    cached = JSON.parse(raw);
    if (typeof cached.identifiers !== "string" || typeof cached.subscriptions !== "object") {
      throw new Error("bad shape");
    }
  } catch (err) {
    session.logger.warn("cached session is unreadable", { error: err });
    return false;
  }
  // A restore never outlives the token that authenticated the session: the client connects
  // afresh instead (and a JWT that expired meanwhile is refused with token_expired).
  if (typeof cached.expires_at === "number" && Date.now() >= cached.expires_at) {
    session.logger.info("session restore refused: its credential has expired", { from: oldSid });
    return false;
  }
  session.identifiers = cached.identifiers;
  session.expiresAt = cached.expires_at;
  Object.assign(session.cstate, cached.cstate ?? {});
  session.interest = Boolean(cached.interest);
  for (const [identifier, sub] of Object.entries(cached.subscriptions)) {
    const streams = new Set(sub.streams ?? []);
    const restored: Subscription = { istate: { ...sub.istate }, streams };
    session.subscriptions.set(identifier, restored);
    // Nothing live before the client's history request is answered (or a bounded wait).
    session.holdRestored(restored, node.opts.restoreHoldTimeout ?? RESTORE_HOLD_TIMEOUT_MS);
    for (const stream of streams) node.deps.hub.subscribe(session, stream, identifier);
  }
  session.state = "connected";
  node.startPings(session);
  session.send({
    type: "welcome",
    sid: session.sid,
    restored: true,
    restored_ids: [...session.subscriptions.keys()],
  });
  session.logger.info("session restored", { from: oldSid });
  await commitSession(node, session);
  return true;
}
