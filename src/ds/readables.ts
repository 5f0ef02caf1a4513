import { type Broker, HistoryError } from "../broker/broker.ts";
import { DsError } from "./errors.ts";
import type { DsReadable, DsReadSource, ReadableInfo, ReadChunk } from "./readable.ts";
import type { DsStreams } from "./streams.ts";
import type { DsEntry, DsMeta } from "./types.ts";

const encoder = new TextEncoder();

/**
 * Streams written through Durable Streams first; any other name reads the broker's history of
 * that broadcast stream (JSON values, the broker's offsets), as AnyCable's read side does.
 * A name with neither is unknown (404).
 */
export class CombinedReadSource implements DsReadSource {
  readonly #streams: DsStreams;
  readonly #broker: Broker;

  constructor(streams: DsStreams, broker: Broker) {
    this.#streams = streams;
    this.#broker = broker;
  }

  async open(stream: string): Promise<DsReadable | null | "gone"> {
    const meta = await this.#streams.get(stream);
    if (meta) return meta.softDeleted ? "gone" : new StoredReadable(this.#streams, stream, meta);
    if (!this.#broker.persistent) return null;
    const history = await this.#broker.historySince(stream, 0);
    if (history.length === 0) return null;
    return new BrokerReadable(this.#broker, stream, history[history.length - 1].offset ?? 0);
  }
}

class StoredReadable implements DsReadable {
  readonly #streams: DsStreams;
  readonly #stream: string;
  readonly #meta: DsMeta;

  constructor(streams: DsStreams, stream: string, meta: DsMeta) {
    this.#streams = streams;
    this.#stream = stream;
    this.#meta = meta;
  }

  info(): ReadableInfo {
    return this.#meta;
  }

  async read(after: number, maxBytes: number): Promise<ReadChunk> {
    const r = await this.#streams.read(this.#stream, this.#meta, after, maxBytes);
    return { entries: r.entries, next: r.next, upToDate: r.upToDate };
  }

  async refresh(): Promise<DsReadable | null> {
    const meta = await this.#streams.get(this.#stream);
    if (!meta || meta.softDeleted) return null;
    return new StoredReadable(this.#streams, this.#stream, meta);
  }

  touch(): Promise<void> {
    // Only a TTL slides with use.
    if (this.#meta.ttlSeconds === undefined) return Promise.resolve();
    return this.#streams.touch(this.#stream);
  }
}

/** A broadcast stream's history, read-only, always JSON. */
class BrokerReadable implements DsReadable {
  readonly #broker: Broker;
  readonly #stream: string;
  readonly #tail: number;

  constructor(broker: Broker, stream: string, tail: number) {
    this.#broker = broker;
    this.#stream = stream;
    this.#tail = tail;
  }

  info(): ReadableInfo {
    return { contentType: "application/json", tail: this.#tail, closed: false };
  }

  async read(after: number, maxBytes: number): Promise<ReadChunk> {
    if (after >= this.#tail) return { entries: [], next: after, upToDate: true };
    let messages;
    try {
      messages = after === 0
        ? await this.#broker.historySince(this.#stream, 0)
        : await this.#broker.historyFrom(this.#stream, await this.#broker.epoch(), after);
    } catch (err) {
      if (err instanceof HistoryError) {
        throw new DsError(410, "offset is no longer in the stream's history");
      }
      throw err;
    }
    const entries: DsEntry[] = [];
    let bytes = 0;
    for (const m of messages) {
      if (m.offset === undefined || m.offset <= after || m.offset > this.#tail) continue;
      if (entries.length > 0 && bytes >= maxBytes) break;
      const data = encoder.encode(jsonText(m.data));
      entries.push({ n: m.offset, data, group: 1 });
      bytes += data.byteLength;
    }
    const next = entries.length > 0 ? entries[entries.length - 1].n : this.#tail;
    return { entries, next, upToDate: next >= this.#tail };
  }

  async refresh(): Promise<DsReadable | null> {
    const history = await this.#broker.historySince(this.#stream, 0);
    const tail = history.length > 0 ? history[history.length - 1].offset ?? 0 : this.#tail;
    return new BrokerReadable(this.#broker, this.#stream, Math.max(tail, this.#tail));
  }

  touch(): Promise<void> {
    return Promise.resolve();
  }
}

/** A publication's data as a JSON value (non-JSON text becomes a JSON string). */
function jsonText(data: string): string {
  try {
    JSON.parse(data);
    return data;
  } catch {
    return JSON.stringify(data);
  }
}
