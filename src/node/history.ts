import { HistoryError, type StreamMessage } from "../broker/broker.ts";
import type { HistoryRequest } from "../protocol/messages.ts";
import { encodeStreamMessage, messageJson } from "../protocol/encoder.ts";
import type { Node } from "./node.ts";
import type { Session, Subscription } from "./session.ts";

/**
 * Replays history for one subscription (shared/PROTOCOL.md §4.2), then confirms it. Live
 * messages that arrive meanwhile wait in the subscription's replay buffer and are flushed
 * afterwards, minus the ones the replay already carried: none lost, none duplicated.
 */
export async function replayHistory(
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
    session.releaseLive(sub);
    return;
  }
  session.holdLive(sub);
  const broker = node.deps.broker;
  const sent = new Map<string, number>();
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
    session.releaseLive(sub);
    return;
  }
  for (const batch of batches) {
    for (const msg of batch) {
      session.sendFrame(encodeStreamMessage(identifier, msg, messageJson(msg.data), true));
      if (msg.offset !== undefined) {
        sent.set(msg.stream, Math.max(sent.get(msg.stream) ?? 0, msg.offset));
      }
    }
  }
  session.send({ type: "confirm_history", identifier });
  session.releaseLive(sub, (msg) => {
    const last = sent.get(msg.stream);
    return last !== undefined && msg.offset !== undefined && msg.offset <= last;
  });
}
