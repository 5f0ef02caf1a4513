import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { ClientCommand, PresenceRequest } from "../protocol/messages.ts";
import type { Session } from "./session.ts";

/** What whispers and presence need from the node. */
export interface Extras {
  deps: { broker: Broker; publish(msg: StreamMessage): Promise<void> };
}

/**
 * Commands beyond classic Action Cable: whisper, join, leave, presence
 * (docs/protocol.md#whisper, docs/protocol.md#presence). Returns false for a command it does not know.
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
    case "join": {
      if (!cmd.identifier) {
        refuse(session, cmd.command, "invalid_message", "join needs an identifier");
        return true;
      }
      const presence = presenceRequest(session, cmd.command, cmd.identifier, cmd.presence);
      if (presence) await presenceJoin(node, session, cmd.identifier, presence);
      return true;
    }
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
    refuse(
      session,
      cmd.command,
      "forbidden",
      sub ? "whisper is not allowed for this subscription" : "whisper for an unknown subscription",
      cmd.identifier,
    );
    return;
  }
  await node.deps.publish({
    stream,
    data: JSON.stringify(cmd.data ?? null),
    meta: { transient: true, exclude_socket: session.sid },
  });
}

/** Longest presence id accepted (characters). */
export const MAX_PRESENCE_ID = 255;

/**
 * The presence part of `join` and of a presence-carrying `subscribe`, checked by one rule: an
 * object whose `id` is a non-empty string of at most MAX_PRESENCE_ID characters (`info` is any
 * JSON). Anything else is refused with `invalid_message` and undefined is returned.
 */
export function presenceRequest(
  session: Session,
  command: string,
  identifier: string,
  value: unknown,
): PresenceRequest | undefined {
  const id = typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>).id
    : undefined;
  if (typeof id === "string" && id !== "" && id.length <= MAX_PRESENCE_ID) {
    return { id, info: (value as Record<string, unknown>).info };
  }
  refuse(
    session,
    command,
    "invalid_message",
    `presence needs an "id" string of 1 to ${MAX_PRESENCE_ID} characters`,
    identifier,
  );
  return undefined;
}

/** A command the server will not carry out: logged at info with the reason, and answered. */
function refuse(
  session: Session,
  command: string,
  reason: string,
  message: string,
  identifier?: string,
): void {
  session.logger.info(`${command} refused: ${message}`, { identifier, reason });
  session.send({ type: "error", identifier, reason, message });
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
    refuse(
      session,
      "join",
      "forbidden",
      "presence is not allowed for this subscription",
      identifier,
    );
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
