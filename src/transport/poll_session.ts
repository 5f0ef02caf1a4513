import type { Connection } from "./connection.ts";

export interface PollSessionOptions {
  /** How long outgoing messages are buffered before a held poll answers (ms). */
  flushMs: number;
  /** The session dies this long after its last poll ended (ms). */
  keepaliveMs: number;
  /** No poll for keepaliveMs: the owner closes the session. */
  onExpired(p: PollSession): void;
  /** The session closed. Undelivered lines stay readable through takePending(). */
  onClosed(p: PollSession): void;
}

/** Handle of one poll request. */
export interface PollRequest {
  /** The response body: the JSONL lines this poll delivers, then the end. */
  body: ReadableStream<Uint8Array>;
  /** The poll's own commands were processed: it may now be answered. */
  ready(): void;
}

interface HeldPoll {
  controller: ReadableStreamDefaultController<Uint8Array>;
  holdMs: number;
  ready: boolean;
  holdTimer?: ReturnType<typeof setTimeout>;
  flushTimer?: ReturnType<typeof setTimeout>;
}

/**
 * The long-polling Connection of one session (docs/protocol.md#long-polling): server messages queue
 * here as JSONL lines until a poll takes them.
 *
 * Contract of a poll (see begin):
 * - At most one poll is held. A newer poll takes over; the older one is answered at once with
 *   an EMPTY body, and whatever is pending goes to the newer one. (Clients abort a held poll
 *   to send commands sooner; answering the aborted one with messages could lose them.)
 * - A held poll is answered only after its own commands were processed (ready), then: as soon
 *   as lines are pending, `flushMs` after the oldest pending line was queued; with nothing
 *   pending, after `holdMs` with an empty body; at once when the session closes.
 * - When the client abandons a poll (the body is cancelled), pending lines stay queued.
 * - `keepaliveMs` after the last poll ended without a newer one, onExpired fires.
 */
export class PollSession implements Connection {
  readonly id: string;
  readonly #opts: PollSessionOptions;
  readonly #encoder = new TextEncoder();
  #lines: string[] = [];
  #chars = 0;
  #firstAt = 0;
  #poll?: HeldPoll;
  #keepalive?: ReturnType<typeof setTimeout>;
  #closed = false;
  #expired = false;

  constructor(id: string, opts: PollSessionOptions) {
    this.id = id;
    this.#opts = opts;
  }

  /** The keep-alive deadline passed (the client stopped polling). */
  get expired(): boolean {
    return this.#expired;
  }

  // Connection

  send(frame: string): void {
    if (this.#closed) return;
    this.#lines.push(frame);
    this.#chars += frame.length + 1;
    if (this.#lines.length === 1) this.#firstAt = Date.now();
    this.#maybeFlush();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#keepalive);
    if (this.#poll) this.#answer(this.#poll);
    this.#opts.onClosed(this);
  }

  /** Pending output, in UTF-16 code units (close to bytes for JSON). */
  get bufferedAmount(): number {
    return this.#chars;
  }

  // Polling

  /** A poll request arrived: it becomes the held poll (see the class contract). */
  begin(holdMs: number): PollRequest {
    clearTimeout(this.#keepalive);
    this.#keepalive = undefined;
    let poll!: HeldPoll;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        poll = { controller, holdMs, ready: false };
      },
      cancel: () => this.#abandoned(poll),
    });
    const older = this.#poll;
    this.#poll = poll;
    if (older) this.#finish(older, "");
    if (this.#closed) this.#answer(poll);
    return { body, ready: () => this.#ready(poll) };
  }

  /** Takes every pending line as one JSONL text ("" when none). */
  takePending(): string {
    const text = this.#lines.map((l) => l + "\n").join("");
    this.#lines = [];
    this.#chars = 0;
    return text;
  }

  #ready(poll: HeldPoll): void {
    if (poll !== this.#poll || poll.ready) return;
    poll.ready = true;
    poll.holdTimer = setTimeout(() => this.#answer(poll), poll.holdMs);
    this.#maybeFlush();
  }

  #maybeFlush(): void {
    const poll = this.#poll;
    if (!poll || !poll.ready || poll.flushTimer !== undefined || this.#lines.length === 0) return;
    const delay = Math.max(0, this.#firstAt + this.#opts.flushMs - Date.now());
    poll.flushTimer = setTimeout(() => this.#answer(poll), delay);
  }

  /** Answers the held poll with everything pending. */
  #answer(poll: HeldPoll): void {
    if (poll !== this.#poll) return;
    this.#poll = undefined;
    this.#finish(poll, this.takePending());
    if (!this.#closed) this.#startKeepalive();
  }

  #abandoned(poll: HeldPoll): void {
    if (poll !== this.#poll) return;
    this.#poll = undefined;
    clearTimeout(poll.holdTimer);
    clearTimeout(poll.flushTimer);
    if (!this.#closed) this.#startKeepalive();
  }

  #finish(poll: HeldPoll, text: string): void {
    clearTimeout(poll.holdTimer);
    clearTimeout(poll.flushTimer);
    try {
      if (text) poll.controller.enqueue(this.#encoder.encode(text));
      poll.controller.close();
    } catch {
      // the client already went away
    }
  }

  #startKeepalive(): void {
    clearTimeout(this.#keepalive);
    this.#keepalive = setTimeout(() => {
      this.#keepalive = undefined;
      if (this.#poll || this.#closed) return;
      this.#expired = true;
      this.#opts.onExpired(this);
    }, this.#opts.keepaliveMs);
  }
}
