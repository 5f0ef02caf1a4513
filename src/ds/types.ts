/** What the Durable Streams store keeps per stream (plain JSON-compatible data). */

/** Idempotent producer state (Kafka-style: an epoch fences zombies, a sequence dedups). */
export interface ProducerState {
  epoch: number;
  lastSeq: number;
  /** Milliseconds since epoch. */
  updatedAt: number;
}

export interface ClosedBy {
  producerId: string;
  epoch: number;
  seq: number;
}

export interface DsMeta {
  /** Unique per incarnation: entries of a deleted-then-recreated stream never mix. */
  generation: string;
  contentType: string;
  /** Highest entry number (entries are numbered from 1; forks continue their source's count). */
  tail: number;
  ttlSeconds?: number;
  /** ISO timestamp as given. */
  expiresAt?: string;
  createdAt: number;
  lastAccessedAt: number;
  closed: boolean;
  closedBy?: ClosedBy;
  /** Last `Stream-Seq` accepted (compared as strings). */
  lastSeq?: string;
  producers: Record<string, ProducerState>;
  /** Number of forks reading through this stream. */
  refCount: number;
  /** Deleted (or expired) while forks still read through it. */
  softDeleted: boolean;
  fork?: ForkInfo;
}

export interface ForkInfo {
  /** Source stream name. */
  source: string;
  /** The source's generation when forked. */
  sourceGeneration: string;
  /** Entries 1..base come from the source chain. */
  base: number;
  /** The fork offset and sub-offset as requested (for idempotent re-creation). */
  offset: number;
  subOffset: number;
}

/** One stored entry: an append (binary/text) or one JSON value. */
export interface DsEntry {
  n: number;
  data: Uint8Array;
  /** JSON streams: on the first value of an append, the number of values that append had. */
  group?: number;
}
