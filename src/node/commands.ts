import type { ClientCommand, HistoryRequest } from "../protocol/messages.ts";
import { RpcCanceledError, Status } from "../rpc/rpc_client.ts";
import { CLOSE_NORMAL } from "../transport/connection.ts";
import type { CommandResult } from "./controller.ts";
import { handleExtraCommand, presenceJoin, presenceLeaveAll, presenceRequest } from "./extras.ts";
import { replayHistory } from "./history.ts";
import type { Node } from "./node.ts";
import type { Session, Subscription } from "./session.ts";
import { cacheable, commitSession } from "./session_cache.ts";
import { mergeState } from "./state.ts";

/** Channel commands: subscribe, unsubscribe, perform, and applying a Command result. */

/**
 * Whether a controller call's outcome must be thrown away because its session closed while
 * the call was pending: no transmissions to a dead socket, no streams or state for it.
 */
export function discarded(session: Session, call: string, err?: unknown): boolean {
  if (session.state !== "closed" && !(err instanceof RpcCanceledError)) return false;
  session.logger.debug(`skip ${call} result: session closed`, {
    canceled: err instanceof RpcCanceledError,
  });
  return true;
}

export function findSubscription(
  session: Session,
  cmd: ClientCommand,
): Subscription | undefined {
  if (!cmd.identifier) {
    session.logger.warn(`${cmd.command} without an identifier`);
    session.send({
      type: "error",
      reason: "invalid_message",
      message: `${cmd.command} needs an identifier`,
    });
    return undefined;
  }
  const sub = session.subscriptions.get(cmd.identifier);
  if (!sub) {
    session.logger.warn(`${cmd.command} for an unknown subscription`, {
      identifier: cmd.identifier,
    });
  }
  return sub;
}

export async function subscribe(node: Node, session: Session, cmd: ClientCommand): Promise<void> {
  const identifier = cmd.identifier;
  if (!identifier) {
    findSubscription(session, cmd);
    return;
  }
  const existing = session.subscriptions.get(identifier);
  if (existing) {
    session.logger.warn("already subscribed", { identifier });
    // A restored subscription asked for its history this way: serve it.
    if (existing.awaitingHistory && cmd.history && typeof cmd.history === "object") {
      await replayHistory(node, session, identifier, existing, cmd.history);
    }
    return;
  }
  const sub: Subscription = { istate: {}, streams: new Set() };
  // Live messages wait while the requested history is replayed.
  const history = cmd.history && typeof cmd.history === "object" ? cmd.history : undefined;
  if (history) session.holdLive(sub);
  try {
    await subscribeWith(node, session, cmd, identifier, sub, history);
  } finally {
    session.releaseLive(sub);
  }
}

async function subscribeWith(
  node: Node,
  session: Session,
  cmd: ClientCommand,
  identifier: string,
  sub: Subscription,
  history: HistoryRequest | undefined,
): Promise<void> {
  let res: CommandResult;
  try {
    res = await node.deps.controller.subscribe(
      session.callContext(),
      identifier,
    );
  } catch (err) {
    if (discarded(session, "subscribe", err)) return;
    session.logger.error("subscribe failed", { identifier, error: err });
    session.send({ type: "reject_subscription", identifier });
    return;
  }
  if (discarded(session, "subscribe")) return;
  if (res.status === Status.SUCCESS) session.subscriptions.set(identifier, sub);
  else if (res.status === Status.ERROR) {
    session.logger.error("subscribe returned an error", { identifier, error_msg: res.error_msg });
    session.send({ type: "reject_subscription", identifier });
    return;
  }
  applyResult(node, session, identifier, res);
  if (res.status !== Status.SUCCESS) return;
  if (cacheable(node, session)) await commitSession(node, session);
  if (history) await replayHistory(node, session, identifier, sub, history);
  if (cmd.presence !== undefined) {
    const presence = presenceRequest(session, "subscribe", identifier, cmd.presence);
    if (presence) await presenceJoin(node, session, identifier, presence);
  }
}

export async function unsubscribe(
  node: Node,
  session: Session,
  cmd: ClientCommand,
): Promise<void> {
  const sub = findSubscription(session, cmd);
  const identifier = cmd.identifier;
  if (!sub || !identifier) return;
  let res: CommandResult;
  try {
    res = await node.deps.controller.unsubscribe(
      session.callContext(identifier),
      identifier,
    );
  } catch (err) {
    if (discarded(session, "unsubscribe", err)) return;
    session.logger.error("unsubscribe failed", { identifier, error: err });
    res = { status: Status.ERROR };
  }
  if (discarded(session, "unsubscribe")) return;
  if (res.status === Status.ERROR) {
    session.logger.error("unsubscribe returned an error", { identifier });
    return;
  }
  applyResult(node, session, identifier, { ...res, streams: [], stop_streams: true });
  await presenceLeaveAll(node, session, identifier);
  session.subscriptions.delete(identifier);
  session.dropHolds(sub);
  await commitSession(node, session);
}

export async function perform(node: Node, session: Session, cmd: ClientCommand): Promise<void> {
  const sub = findSubscription(session, cmd);
  const identifier = cmd.identifier;
  if (!sub || !identifier) return;
  if (typeof cmd.data !== "string") {
    session.logger.warn("message data must be a JSON string", { identifier });
    session.send({
      type: "error",
      reason: "invalid_message",
      message: "data must be a string",
    });
    return;
  }
  let res: CommandResult;
  try {
    res = await node.deps.controller.perform(
      session.callContext(identifier),
      identifier,
      cmd.data,
    );
  } catch (err) {
    if (discarded(session, "perform", err)) return;
    session.logger.error("perform failed", { identifier, error: err });
    return;
  }
  if (discarded(session, "perform")) return;
  if (res.status === Status.ERROR) {
    session.logger.error("perform returned an error", { identifier, error_msg: res.error_msg });
    return;
  }
  if (applyResult(node, session, identifier, res)) await commitSession(node, session);
}

/**
 * Applies a Command result in the reference's order; returns whether state changed.
 * Closes the session afterwards when the backend asked for it.
 */
export function applyResult(
  node: Node,
  session: Session,
  identifier: string,
  res: CommandResult,
): boolean {
  if (res.interest) session.interest = true;
  const sub = session.subscriptions.get(identifier);
  let changed = false;
  if (sub) {
    if (res.stop_streams) {
      for (const stream of sub.streams) node.deps.hub.unsubscribe(session, stream, identifier);
      changed ||= sub.streams.size > 0;
      sub.streams.clear();
    } else {
      for (const stream of res.stopped_streams ?? []) {
        if (sub.streams.delete(stream)) {
          node.deps.hub.unsubscribe(session, stream, identifier);
          changed = true;
        }
      }
    }
    for (const stream of res.streams ?? []) {
      if (!sub.streams.has(stream)) {
        sub.streams.add(stream);
        node.deps.hub.subscribe(session, stream, identifier);
        changed = true;
      }
    }
    changed = mergeState(sub.istate, res.env?.istate) || changed;
  }
  changed = mergeState(session.cstate, res.env?.cstate) || changed;
  for (const t of res.transmissions ?? []) session.sendFrame(t);
  if (res.presence && sub) {
    session.enqueue(() =>
      handleExtraCommand(node, session, {
        command: res.presence!.type === "join" ? "join" : "leave",
        identifier,
        presence: { id: res.presence!.id, info: parseInfo(res.presence!.info) },
      }).then(() => {})
    );
  }
  if (res.disconnect) session.close(CLOSE_NORMAL, "Command Failed");
  return changed;
}

function parseInfo(info: string | undefined): unknown {
  if (info === undefined) return undefined;
  try {
    return JSON.parse(info);
  } catch {
    return info;
  }
}
