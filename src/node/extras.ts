import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { ClientCommand, PresenceRequest } from "../protocol/messages.ts";
import type { Session } from "./session.ts";

/** What whispers and presence need from the node. */
export interface Extras {
  deps: { broker: Broker; publish(msg: StreamMessage): Promise<void> };
}

/**
 * Commands beyond classic Action Cable: whisper, join, leave, presence
 * (shared/PROTOCOL.md §4.5, §4.6). Returns false for a command it does not know.
 */
export async function handleExtraCommand(
  node: Extras,
  session: Session,
  cmd: ClientCommand,
): Promise<boolean> {
  switch (cmd.command) {
    case "whisper":
      await whisper(node, session, cmd);
      return true;
    case "join":
      if (!cmd.identifier) return true;
      if (!cmd.presence || typeof cmd.presence.id !== "string") {
        session.logger.warn("join without a presence id", { identifier: cmd.identifier });
        return true;
      }
      await presenceJoin(node, session, cmd.identifier, cmd.presence);
      return true;
    case "leave":
      if (cmd.identifier) await presenceLeaveAll(node, session, cmd.identifier);
      return true;
    case "presence":
      if (cmd.identifier) await presenceInfo(node, session, cmd.identifier);
      return true;
    default:
      return false;
  }
}

async function whisper(node: Extras, session: Session, cmd: ClientCommand): Promise<void> {
  const sub = cmd.identifier ? session.subscriptions.get(cmd.identifier) : undefined;
  const stream = sub?.istate["$w"];
  if (!sub || !stream) {
    session.logger.debug("whisper is not allowed here", { identifier: cmd.identifier });
    return;
  }
  await node.deps.publish({
    stream,
    data: JSON.stringify(cmd.data ?? null),
    meta: { transient: true, exclude_socket: session.sid },
  });
}

function presenceStream(session: Session, identifier: string): string | undefined {
  return session.subscriptions.get(identifier)?.istate["$p"];
}

export async function presenceJoin(
  node: Extras,
  session: Session,
  identifier: string,
  req: PresenceRequest,
): Promise<void> {
  const stream = presenceStream(session, identifier);
  if (!stream) {
    session.logger.debug("presence is not allowed here", { identifier });
    return;
  }
  try {
    const event = await node.deps.broker.presenceAdd(stream, session.sid, req.id, req.info);
    session.subscriptions.get(identifier)!.presenceId = req.id;
    if (event) await publishPresence(node, stream, event);
  } catch (err) {
    session.logger.warn("presence join failed", { identifier, error: err });
  }
}

export async function presenceLeaveAll(
  node: Extras,
  session: Session,
  identifier: string,
): Promise<void> {
  const sub = session.subscriptions.get(identifier);
  const stream = sub?.istate["$p"];
  if (!sub || !stream || sub.presenceId === undefined) return;
  sub.presenceId = undefined;
  try {
    const event = await node.deps.broker.presenceRemove(stream, session.sid);
    if (event) await publishPresence(node, stream, event);
  } catch (err) {
    session.logger.warn("presence leave failed", { identifier, error: err });
  }
}

async function presenceInfo(node: Extras, session: Session, identifier: string): Promise<void> {
  const stream = presenceStream(session, identifier);
  if (!stream) return;
  try {
    const info = await node.deps.broker.presenceInfo(stream);
    const message: Record<string, unknown> = { type: "info", total: info.total };
    if (info.records.length) message.records = info.records;
    session.send({ type: "presence", identifier, message });
  } catch (err) {
    session.logger.warn("presence info failed", { identifier, error: err });
    session.send({ type: "presence", identifier, message: { type: "error", total: 0 } });
  }
}

function publishPresence(
  node: Extras,
  stream: string,
  event: { type: string; id: string; info?: unknown },
): Promise<void> {
  return node.deps.publish({
    stream,
    data: JSON.stringify(event),
    meta: { transient: true, broadcast_type: "presence" },
  });
}
