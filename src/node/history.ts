import { HistoryError, type StreamMessage } from "../broker/broker.ts";
import type { HistoryRequest } from "../protocol/messages.ts";
import { encodeStreamMessage, messageJson } from "../protocol/encoder.ts";
import type { Node } from "./node.ts";
import type { GapFiller, Session, Subscription } from "./session.ts";

/**
 * Replays history for one subscription (extended protocol), then confirms it. Live
 * messages that arrive meanwhile are held and released afterwards through the
 * subscription's cursor, so what the replay carried is not sent again and nothing goes out
 * of order. Answering it also ends a restored subscription's wait for its history request.
 */
export async function replayHistory(
  node: Node,
  session: Session,
  identifier: string,
  sub: Subscription,
  req: HistoryRequest,
): Promise<void> {
  session.holdLive(sub);
  try {
    await replay(node, session, identifier, sub, req);
  } finally {
    session.releaseLive(sub);
    session.endRestoreHold(sub);
  }
}

async function replay(
  node: Node,
  session: Session,
  identifier: string,
  sub: Subscription,
  req: HistoryRequest,
): Promise<void> {
  const since = typeof req.since === "number" ? req.since : 0;
  const positions = req.streams && typeof req.streams === "object" ? req.streams : undefined;
  if (since <= 0 && !positions) {
    session.logger.warn("history request has neither since nor streams", { identifier });
    return;
  }
  const broker = node.deps.broker;
  const batches: StreamMessage[][] = [];
  try {
    for (const stream of sub.streams) {
      const pos = positions?.[stream];
      if (pos !== undefined) {
        if (
          typeof pos !== "object" || pos === null || typeof pos.epoch !== "string" ||
          typeof pos.offset !== "number"
        ) {
          throw new HistoryError(`malformed position for stream ${stream}`);
        }
        batches.push(await broker.historyFrom(stream, pos.epoch, pos.offset));
      } else if (since > 0) {
        batches.push(await broker.historySince(stream, since));
      }
    }
  } catch (err) {
    session.logger.info("history rejected", { identifier, error: err });
    session.send({ type: "reject_history", identifier });
    return;
  }
  // The client gets what it asked for; only after a restore hold that timed out may it
  // already have some of it.
  const skipSent = sub.releasedUnasked === true;
  sub.releasedUnasked = false;
  for (const batch of batches) {
    for (const msg of batch) {
      const encode = () => encodeStreamMessage(identifier, msg, messageJson(msg.data), true);
      if (skipSent) session.deliverStored(sub, msg, encode);
      else session.deliverRequested(sub, msg, encode);
    }
  }
  session.send({ type: "confirm_history", identifier });
}

/** How long a gap may wait for its messages to arrive live before history is read (ms). */
export const GAP_GRACE_MS = 100;

interface PendingGap {
  session: Session;
  identifier: string;
  sub: Subscription;
  gap: Gap;
}

type Gap = Parameters<GapFiller>[3];

/**
 * A gap filler for sessions of `node`: a live message jumped past offsets this subscription
 * never got (the subscription is held meanwhile). Pub/subs between nodes may deliver a
 * stream's messages out of order, so the missing ones get `graceMs` to arrive live; what is
 * still missing then is read from the broker (one read per stream and position, shared by
 * the sessions waiting on it) and sent first. When history cannot fill the gap the client
 * gets `reject_history` for the subscription, as for a failed history request, and delivery
 * goes on from the live message.
 */
export function gapFiller(node: Node, graceMs = GAP_GRACE_MS): GapFiller {
  const pending = new Map<string, PendingGap[]>();
  return (session, identifier, sub, gap) => {
    let waiting = pending.get(gap.stream);
    if (!waiting) {
      const list: PendingGap[] = waiting = [];
      pending.set(gap.stream, list);
      setTimeout(() => {
        pending.delete(gap.stream);
        const reads = new Map<string, Promise<StreamMessage[]>>();
        for (const p of list) {
          fillGap(node, p, reads).catch((err) =>
            p.session.logger.error("gap fill failed", { identifier: p.identifier, error: err })
          );
        }
      }, graceMs);
    }
    waiting.push({ session, identifier, sub, gap });
  };
}

async function fillGap(
  node: Node,
  { session, identifier, sub, gap }: PendingGap,
  reads: Map<string, Promise<StreamMessage[]>>,
): Promise<void> {
  try {
    if (session.state === "closed" || session.heldCovers(sub, gap)) return;
    let filled = true;
    try {
      const key = `${gap.epoch}\0${gap.after}`;
      let read = reads.get(key);
      if (!read) {
        read = node.deps.broker.historyFrom(gap.stream, gap.epoch, gap.after);
        reads.set(key, read);
      }
      const batch = await read;
      const positioned = session.positions;
      for (const msg of batch) {
        if (msg.offset === undefined || msg.offset >= gap.upTo) break;
        session.deliverStored(
          sub,
          msg,
          () => encodeStreamMessage(identifier, msg, messageJson(msg.data), positioned),
        );
      }
      const cursor = session.cursor(sub, gap.stream);
      filled = cursor !== undefined && cursor.epoch === gap.epoch &&
        cursor.offset >= gap.upTo - 1;
    } catch (err) {
      // A broker error cannot fill it either; retrying here would hold the client forever.
      if (!(err instanceof HistoryError)) {
        session.logger.warn("history read for a gap failed", { identifier, error: err });
      }
      filled = false;
    }
    if (filled) {
      session.logger.debug("stream gap filled from history", {
        identifier,
        stream: gap.stream,
        after: gap.after,
        up_to: gap.upTo,
      });
      return;
    }
    session.logger.warn("stream gap cannot be filled from history", {
      identifier,
      stream: gap.stream,
      after: gap.after,
      up_to: gap.upTo,
    });
    if (session.ext) session.send({ type: "reject_history", identifier });
    session.skipTo(sub, gap.stream, gap.epoch, gap.upTo - 1);
  } finally {
    session.releaseLive(sub);
  }
}
