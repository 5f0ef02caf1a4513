import {
  type Broker,
  type ExpiredPresence,
  HistoryError,
  type PresenceEvent,
  type PresenceInfo,
  type StreamMessage,
} from "../broker/broker.ts";
import type { DsStreams } from "./streams.ts";

/**
 * The broker as the rest of Cableway sees it once Durable Streams are on: a publication to a
 * stream written through Durable Streams is registered in the Durable Streams store (so it gets
 * that stream's next offset), and Action Cable history of such a stream is read from there.
 * Everything else goes to the configured broker.
 */
export class DurableBroker implements Broker {
  readonly #inner: Broker;
  readonly #streams: DsStreams;

  constructor(inner: Broker, streams: DsStreams) {
    this.#inner = inner;
    this.#streams = streams;
  }

  get name(): string {
    return this.#inner.name;
  }
  get persistent(): boolean {
    return this.#inner.persistent;
  }
  start(): Promise<void> {
    return this.#inner.start();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
  epoch(): Promise<string> {
    return this.#inner.epoch();
  }

  async store(msg: StreamMessage): Promise<StreamMessage> {
    const meta = await this.#streams.get(msg.stream);
    if (meta && !meta.softDeleted) return await this.#streams.register(msg);
    return await this.#inner.store(msg);
  }

  async historyFrom(stream: string, epoch: string, offset: number): Promise<StreamMessage[]> {
    const meta = await this.#streams.get(stream);
    if (!meta || meta.softDeleted) return await this.#inner.historyFrom(stream, epoch, offset);
    if (epoch !== await this.#inner.epoch()) throw new HistoryError("unknown epoch");
    if (offset > meta.tail) throw new HistoryError("offset is past the stream's end");
    return await this.#streams.history(stream, meta, offset);
  }

  async historySince(stream: string, sinceSeconds: number): Promise<StreamMessage[]> {
    const meta = await this.#streams.get(stream);
    if (!meta || meta.softDeleted) return await this.#inner.historySince(stream, sinceSeconds);
    return await this.#streams.history(stream, meta, 0);
  }

  commitSession(sid: string, state: string): Promise<void> {
    return this.#inner.commitSession(sid, state);
  }
  restoreSession(sid: string): Promise<string | null> {
    return this.#inner.restoreSession(sid);
  }
  touchSession(sid: string): Promise<void> {
    return this.#inner.touchSession(sid);
  }
  presenceAdd(
    stream: string,
    sid: string,
    id: string,
    info: unknown,
  ): Promise<PresenceEvent | null> {
    return this.#inner.presenceAdd(stream, sid, id, info);
  }
  presenceRemove(stream: string, sid: string): Promise<PresenceEvent | null> {
    return this.#inner.presenceRemove(stream, sid);
  }
  presenceInfo(stream: string): Promise<PresenceInfo> {
    return this.#inner.presenceInfo(stream);
  }
  presenceTouch(sid: string): Promise<void> {
    return this.#inner.presenceTouch(sid);
  }
  presenceExpire(): Promise<ExpiredPresence[]> {
    return this.#inner.presenceExpire();
  }
}
