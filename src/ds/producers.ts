import type { ProducerState } from "./types.ts";

/** Producer state is forgotten after a week without writes. */
export const PRODUCER_STATE_TTL_MS = 7 * 24 * 3600 * 1000;

export type ProducerCheck =
  | { status: "accepted"; next: ProducerState }
  | { status: "duplicate"; lastSeq: number }
  | { status: "stale_epoch"; currentEpoch: number }
  | { status: "invalid_epoch_seq" }
  | { status: "sequence_gap"; expected: number; received: number };

/**
 * Checks one producer write against its state without changing it: a new producer or a new
 * epoch starts at seq 0, an older epoch is fenced, a seen seq is a duplicate, a skipped one a gap.
 */
export function checkProducer(
  state: ProducerState | undefined,
  epoch: number,
  seq: number,
  now: number,
): ProducerCheck {
  if (!state || epoch > state.epoch) {
    if (state && seq !== 0) return { status: "invalid_epoch_seq" };
    if (seq !== 0) return { status: "sequence_gap", expected: 0, received: seq };
    return { status: "accepted", next: { epoch, lastSeq: 0, updatedAt: now } };
  }
  if (epoch < state.epoch) return { status: "stale_epoch", currentEpoch: state.epoch };
  if (seq <= state.lastSeq) return { status: "duplicate", lastSeq: state.lastSeq };
  if (seq === state.lastSeq + 1) {
    return { status: "accepted", next: { epoch, lastSeq: seq, updatedAt: now } };
  }
  return { status: "sequence_gap", expected: state.lastSeq + 1, received: seq };
}

/** Drops producers idle for longer than PRODUCER_STATE_TTL_MS. */
export function pruneProducers(producers: Record<string, ProducerState>, now: number): void {
  for (const [id, s] of Object.entries(producers)) {
    if (now - s.updatedAt > PRODUCER_STATE_TTL_MS) delete producers[id];
  }
}
