import type { DsEntry } from "./types.ts";

/** What the read side needs to know about a stream, whichever store keeps it. */
export interface ReadableInfo {
  contentType: string;
  tail: number;
  closed: boolean;
  ttlSeconds?: number;
  expiresAt?: string;
}

export interface ReadChunk {
  entries: DsEntry[];
  next: number;
  upToDate: boolean;
}

/** One stream opened for reading: Durable Streams written ones, or a broadcast stream's history. */
export interface DsReadable {
  info(): ReadableInfo;
  /** Entries after `after` (about `maxBytes` at most). */
  read(after: number, maxBytes: number): Promise<ReadChunk>;
  /** Reloads the stream (after a wake-up): null once it is gone. */
  refresh(): Promise<DsReadable | null>;
  /** Extends a TTL (reads do). */
  touch(): Promise<void>;
}

/** Where the handler finds streams to read. */
export interface DsReadSource {
  /** The stream, null when unknown, "gone" when soft-deleted. */
  open(stream: string): Promise<DsReadable | null | "gone">;
}
