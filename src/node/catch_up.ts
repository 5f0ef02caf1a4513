/**
 * Catching up after the pub/sub link dropped (docs/cluster.md, "When Redis or NATS goes
 * down"). Other nodes may accept publications while this node's subscriptions are down or
 * being re-established; they are registered in the shared broker but never reach this node
 * live. So, for every stream with local subscribers:
 *
 * - while the link is up, remember the highest offset delivered here (per stream, one map
 *   lookup per message, not per client);
 * - from `linkLost` on, hold the stream's registered messages instead of delivering them;
 * - on `linkRestored` (every subscription acknowledged), read the stream's history, deliver
 *   what came after the remembered offset (or, after an epoch change, everything of the new
 *   epoch) in offset order, then release the held messages the history did not carry.
 *
 * Until every stream has caught up, `ready` is false and the node refuses publications
 * (HTTP 501), so nothing is acknowledged that this node's subscribers could miss.
 *
 * Why held messages received before a history read can be dropped: a registered message is
 * stored before it is published, so anything that arrived before the read is in the history
 * the read returns; only what arrives during the read has to be kept and filtered by offset.
 */
import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { Logger } from "../logger/logger.ts";
import type { PubSubHandler, RemoteCommand } from "../pubsub/pubsub.ts";

export interface CatchUpOptions {
  /** Where messages go (the node). */
  target: PubSubHandler;
  /** A broker shared by every node (redis, nats, kv); its history fills the gap. */
  broker: Broker;
  logger: Logger;
  /** Pause before retrying a failed history read; default 500 ms. */
  retryMs?: number;
}

/** History reads in flight at once during a catch-up. */
const CONCURRENT_READS = 16;
/**
 * Held messages per stream before the buffer is emptied (while no read of that stream is in
 * flight, whatever is held is in the history its next read returns, so nothing is lost).
 */
const MAX_HELD = 10_000;

interface StreamPosition {
  /** Epoch of the last registered message delivered here; undefined before the first one. */
  epoch?: string;
  offset: number;
  /** When this node got its first subscriber for the stream (ms). */
  since: number;
  /** Registered messages kept back while the stream catches up; null when not holding. */
  held: StreamMessage[] | null;
  /** A history read of this stream is in flight. */
  reading: boolean;
  /**
   * Offsets (replayedFrom, replayedTo] of `replayedEpoch` were delivered from history by the
   * last catch-up: a live copy arriving later (published before the read, but slow to reach
   * the pub/sub) is dropped.
   */
  replayedFrom: number;
  replayedTo: number;
  replayedEpoch?: string;
}

export class StreamCatchUp implements PubSubHandler {
  readonly #target: PubSubHandler;
  readonly #broker: Broker;
  readonly #logger: Logger;
  readonly #retryMs: number;
  readonly #streams = new Map<string, StreamPosition>();
  /** True from linkLost until every stream has caught up. */
  #behind = false;
  /** Bumped on every linkLost: a catch-up run of an older generation stops. */
  #generation = 0;
  #closed = false;
  #running?: Promise<void>;
  #retryTimer?: ReturnType<typeof setTimeout>;
  readonly stats = { caughtUp: 0, replayed: 0, gaps: 0 };

  constructor(opts: CatchUpOptions) {
    this.#target = opts.target;
    this.#broker = opts.broker;
    this.#logger = opts.logger.child({ component: "catch_up" });
    this.#retryMs = opts.retryMs ?? 500;
  }

  /** False while this node may be missing other nodes' publications. */
  get ready(): boolean {
    return !this.#behind;
  }

  /** Resolves when the current catch-up (if any) has finished or was superseded. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
  }

  /** The hub's first local subscriber of `stream`. */
  streamAdded(stream: string): void {
    if (this.#streams.has(stream)) return;
    this.#streams.set(stream, {
      offset: 0,
      since: Date.now(),
      held: this.#behind ? [] : null,
      reading: false,
      replayedFrom: 0,
      replayedTo: 0,
    });
  }

  /** The hub's last local subscriber of `stream` left. */
  streamRemoved(stream: string): void {
    this.#streams.delete(stream);
  }

  deliver(msg: StreamMessage): void {
    const offset = msg.offset;
    if (offset !== undefined) {
      const pos = this.#streams.get(msg.stream);
      if (pos !== undefined) {
        if (pos.held !== null) {
          if (pos.held.length >= MAX_HELD && !pos.reading) pos.held = [];
          pos.held.push(msg);
          return;
        }
        if (
          offset <= pos.replayedTo && offset > pos.replayedFrom && msg.epoch === pos.replayedEpoch
        ) return;
        if (pos.epoch !== msg.epoch) {
          pos.epoch = msg.epoch;
          pos.offset = offset;
        } else if (offset > pos.offset) pos.offset = offset;
      }
    }
    this.#target.deliver(msg);
  }

  execute(cmd: RemoteCommand): void {
    this.#target.execute(cmd);
  }

  linkLost(): void {
    if (this.#closed) return;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    if (!this.#behind) {
      this.#behind = true;
      this.#logger.warn("pub/sub link lost: holding registered messages until caught up", {
        streams: this.#streams.size,
      });
    }
    for (const pos of this.#streams.values()) pos.held ??= [];
  }

  linkRestored(): void {
    if (this.#closed || !this.#behind) return;
    this.#start(this.#generation);
  }

  #start(generation: number): void {
    const run = this.#catchUp(generation);
    this.#running = run;
    run.finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
  }

  async #catchUp(generation: number): Promise<void> {
    const started = Date.now();
    let replayed = 0;
    const stale = () => generation !== this.#generation || this.#closed;
    try {
      // Rounds until no stream holds: streams subscribed meanwhile start out holding.
      for (let round = 0; !stale(); round++) {
        const batch = [...this.#streams].filter(([, pos]) => pos.held !== null);
        if (batch.length === 0) break;
        let next = 0;
        const worker = async () => {
          while (next < batch.length && !stale()) {
            const [stream, pos] = batch[next++];
            if (this.#streams.get(stream) !== pos || pos.held === null) continue;
            const n = await this.#catchUpStream(stream, pos, generation);
            replayed += n; // not `replayed += await …`: that reads `replayed` before awaiting
          }
        };
        await Promise.all(
          Array.from({ length: Math.min(CONCURRENT_READS, batch.length) }, worker),
        );
      }
    } catch (err) {
      if (stale()) return;
      this.#logger.warn("catch-up history read failed, retrying", {
        error: err,
        retry_ms: this.#retryMs,
      });
      this.#retryTimer = setTimeout(() => {
        if (!stale()) this.#start(generation);
      }, this.#retryMs);
      return;
    }
    if (stale()) return;
    this.#behind = false;
    this.stats.caughtUp++;
    this.stats.replayed += replayed;
    this.#logger.info("pub/sub caught up", {
      streams: this.#streams.size,
      replayed,
      ms: Date.now() - started,
    });
  }

  /** Returns the number of messages delivered from history. */
  async #catchUpStream(
    stream: string,
    pos: StreamPosition,
    generation: number,
  ): Promise<number> {
    // Everything held so far was stored before this read: the read returns it.
    pos.held = [];
    const since = pos.epoch === undefined ? Math.floor(pos.since / 1000) : 0;
    let entries: StreamMessage[];
    pos.reading = true;
    try {
      entries = await this.#broker.historySince(stream, since);
    } finally {
      pos.reading = false;
    }
    if (generation !== this.#generation || this.#closed) return 0;
    if (this.#streams.get(stream) !== pos) return 0; // unsubscribed meanwhile
    const current = entries[0]?.epoch;
    let fresh = entries;
    let expected: number | undefined; // the first offset this node has not seen, when known
    if (pos.epoch !== undefined && current === pos.epoch) {
      fresh = entries.filter((m) => m.offset! > pos.offset);
      expected = pos.offset + 1;
    } else if (pos.epoch !== undefined) {
      expected = 1; // a new epoch: everything in it is new here
    }
    if (expected !== undefined && fresh.length > 0 && fresh[0].offset! > expected) {
      this.stats.gaps++;
      this.#logger.warn("messages trimmed from history before this node caught up", {
        stream,
        missing: fresh[0].offset! - expected,
        hint: "raise --history_limit (publication rate × outage time)",
      });
    }
    for (const msg of fresh) this.#target.deliver(msg);
    if (fresh.length > 0) {
      pos.replayedEpoch = current;
      pos.replayedFrom = fresh[0].offset! - 1;
      pos.replayedTo = fresh[fresh.length - 1].offset!;
    }
    const held = pos.held;
    pos.held = null;
    if (current !== undefined) {
      const last = entries[entries.length - 1].offset!;
      if (current !== pos.epoch || last > pos.offset) {
        pos.epoch = current;
        pos.offset = last;
      }
    }
    for (const msg of held) {
      // Already carried by the read (or delivered before the drop): skip.
      if (current !== undefined && msg.epoch === pos.epoch && msg.offset! <= pos.offset) continue;
      this.deliver(msg);
    }
    return fresh.length;
  }
}
