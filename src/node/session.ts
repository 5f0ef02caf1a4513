import type { StreamMessage } from "../broker/broker.ts";
import type { Subscriber } from "../hub/hub.ts";
import type { LogBudget, Logger } from "../logger/logger.ts";
import { encodeReply } from "../protocol/encoder.ts";
import type { Reply } from "../protocol/messages.ts";
import type { Env } from "../rpc/rpc_client.ts";
import { CLOSE_NORMAL, type Connection } from "../transport/connection.ts";
import { utf8Length } from "../util/utf8_length.ts";
import type { CallContext } from "./controller.ts";
import type { WriteWatchdog } from "./write_watchdog.ts";

/** The last stream position delivered to one subscription (mutated in place). */
export interface StreamCursor {
  epoch: string;
  offset: number;
}

/** A live message kept while its subscription is held. */
export interface HeldMessage {
  frame: string;
  msg: StreamMessage;
}

/** One subscription (identifier) of a session. */
export interface Subscription {
  istate: Record<string, string>;
  streams: Set<string>;
  /**
   * Set while the subscription is held (history replay, gap fill, restore waiting for the
   * client's history request): live messages wait here, in arrival order.
   */
  held?: HeldMessage[];
  /** How many reasons hold the subscription; the buffer is released when it drops to 0. */
  holds?: number;
  /** Approximate bytes in `held` (bounded by the session's hold limit). */
  heldBytes?: number;
  /** Restored and waiting for the client's history request (or the restore hold timeout). */
  awaitingHistory?: boolean;
  /**
   * The restore hold timed out: live messages went out before the client's history request,
   * so its replay skips what this session already sent.
   */
  releasedUnasked?: boolean;
  /** Per stream, the last position delivered in this session: never go at or below it. */
  cursors?: Map<string, StreamCursor>;
  presenceId?: string;
}

/**
 * What one session may write to the log: a client sending bad frames in a loop gets 20 lines per
 * 10 s and then one summary line per window (the metrics still count every frame).
 */
export const SESSION_LOG_BUDGET: LogBudget = { lines: 20, perMs: 10_000 };

/**
 * Fills a per-stream gap from the broker's history (the subscription is held meanwhile and
 * released by the filler). Shared by all sessions.
 */
export type GapFiller = (
  session: Session,
  identifier: string,
  sub: Subscription,
  gap: { stream: string; epoch: string; after: number; upTo: number },
) => void;

export type SessionState = "connecting" | "connected" | "closed";

export interface SessionInit {
  sid: string;
  ext: boolean;
  conn: Connection;
  env: Env;
  transport: "ws" | "sse" | "poll";
  logger: Logger;
  /** Outbound bytes that may wait before the client is disconnected as too_slow. */
  maxPending: number;
  /** The client's X-Request-ID when it did not become the sid. */
  requestId?: string;
  /** Shared traffic counters (metrics). */
  stats?: { serverMessages: number; bytesSent: number };
  /** Called once when the session closes; shared by all sessions (no closure per session). */
  closed?: (session: Session) => void;
  /** The write timeout (WebSocket sessions): told when the socket holds a backlog. */
  writes?: WriteWatchdog<Session>;
  /** Bytes of live messages a held subscription may keep before the client is disconnected. */
  maxHeld?: number;
  /** Fills per-stream gaps from history; without it a gap is delivered as is. */
  fillGap?: GapFiller;
}

/** The disconnect reason when a held subscription's buffer passes its byte limit. */
export const HOLD_OVERFLOW_REASON = "hold_overflow";

/**
 * Per-client state: identifiers, connection and channel state, subscriptions, and the
 * strictly ordered queue of inbound frames. Behaviour lives in Node; this is the data plus
 * the few operations every caller shares.
 */
export class Session implements Subscriber {
  #sid: string;
  readonly ext: boolean;
  readonly env: Env;
  readonly transport: "ws" | "sse" | "poll";
  readonly conn: Connection;
  state: SessionState = "connecting";
  identifiers?: string;
  readonly cstate: Record<string, string> = {};
  readonly subscriptions = new Map<string, Subscription>();
  /** When the credential that identified the session expires (ms); restore is refused after. */
  expiresAt?: number;
  /** The client's X-Request-ID when it did not become the sid (kept for logs). */
  requestId?: string;
  /** The backend wants a Disconnect call (sticky). */
  interest = false;
  /** Characters of inbound frames queued and not yet processed (see MAX_INBOUND_BACKLOG). */
  inboundBacklog = 0;
  /** When the last inbound frame arrived (ms), for pong enforcement. */
  lastSeen = Date.now();
  readonly #maxPending: number;
  readonly #stats: { serverMessages: number; bytesSent: number };
  #tooSlow = false;
  readonly #writes?: WriteWatchdog<Session>;
  /** UTF-8 bytes handed to the connection so far (the write timeout compares it). */
  sentBytes = 0;
  /** Held by the write watchdog. */
  writeWatched = false;
  /** Subscriptions currently holding live messages (keeps deliver() lookup-free otherwise). */
  #held = 0;
  readonly #maxHeld: number;
  readonly #fillGap?: GapFiller;
  #restoreTimer?: ReturnType<typeof setTimeout>;
  /** The cursor deliver() used last, for its lookup-free path (see #deliverPositioned). */
  #fast?: StreamCursor;
  #fastIdentifier = "";
  #fastStream = "";
  /** Live copies dropped because this session already delivered their offset. */
  duplicatesDropped = 0;
  #queue: Promise<void> = Promise.resolve();
  /** Made on first use (a session without controller calls never needs one). */
  #gone?: AbortController;
  readonly #baseLogger: Logger;
  #logger?: Logger;
  readonly #closed?: (session: Session) => void;
  /** The ping interval (seconds) and the Pinger's tick this session is due at. */
  pingInterval = 0;
  pingDue = 0;

  constructor(init: SessionInit) {
    this.#sid = init.sid;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    this.ext = init.ext;
    this.conn = init.conn;
    this.env = init.env;
    this.transport = init.transport;
    this.#baseLogger = init.logger;
    this.#closed = init.closed;
    this.#maxPending = init.maxPending;
    this.#stats = init.stats ?? { serverMessages: 0, bytesSent: 0 };
    this.#writes = init.writes;
    this.#maxHeld = init.maxHeld ?? 1048576;
    this.#fillGap = init.fillGap;
  }

  /**
   * A logger tagged with this sid, within SESSION_LOG_BUDGET (made on first use: most sessions
   * never log).
   */
  get logger(): Logger {
    return this.#logger ??= this.#baseLogger.child(
      { sid: this.#sid, request_id: this.requestId },
      SESSION_LOG_BUDGET,
    );
  }

  get sid(): string {
    return this.#sid;
  }

  /**
   * Gives a session that is still authenticating another sid (the requested one turned out to
   * be taken). The caller re-files it under the new sid.
   */
  rekey(sid: string, requestId: string): void {
    if (this.state !== "connecting") throw new Error("only an authenticating session is rekeyed");
    this.#sid = sid;
    this.requestId = requestId;
    this.#logger = undefined;
  }

  /**
   * Live messages carry their stream position (`stream_id`, `epoch`, `offset`) whenever the
   * broker gave them one, on every protocol and transport, as the reference does.
   */
  get positions(): boolean {
    return true;
  }

  get open(): boolean {
    return this.state !== "closed";
  }

  /** Runs `task` after every task queued before it; failures are logged, never thrown. */
  enqueue(task: () => Promise<void> | void): Promise<void> {
    const next = this.#queue.then(async () => {
      if (this.state === "closed") return;
      try {
        await task();
      } catch (err) {
        this.logger.error("command failed", { error: err });
      }
    });
    this.#queue = next;
    return next;
  }

  send(reply: Reply): void {
    this.sendFrame(encodeReply(reply));
  }

  sendFrame(frame: string): void {
    if (this.state === "closed") return;
    this.conn.send(frame);
    const bytes = utf8Length(frame);
    this.sentBytes += bytes;
    this.#stats.serverMessages++;
    this.#stats.bytesSent += bytes;
    const pending = this.conn.bufferedAmount;
    if (pending === undefined) return;
    if (pending > this.#maxPending) {
      this.dropSlow("client is too slow, disconnecting", pending);
    } else if (pending > bytes && this.#writes && !this.writeWatched) {
      // More than this frame waits: something sent earlier is not written yet.
      this.#writes.watch(this);
    }
  }

  /** Outbound bytes the connection has not written yet. */
  get pendingBytes(): number {
    return this.conn.bufferedAmount ?? 0;
  }

  /** The client does not take what it is sent: `too_slow` (read if it ever reads), then close. */
  dropSlow(why: string, pending: number): void {
    // Once: the disconnect message itself goes through sendFrame.
    if (this.#tooSlow) return;
    this.#tooSlow = true;
    this.logger.warn(why, { pending });
    this.disconnect("too_slow", true);
  }

  /**
   * A live message for `identifier`. Positioned messages (broker offsets) go through the
   * subscription's cursor: an offset at or below the last delivered one is dropped, a jump
   * past undelivered offsets is filled from history first. A held subscription keeps them.
   */
  deliver(identifier: string, frame: string, msg: StreamMessage): void {
    const offset = msg.offset;
    if (offset === undefined || msg.epoch === undefined) {
      if (this.#held > 0) {
        const sub = this.subscriptions.get(identifier);
        if (sub?.held) {
          this.#keep(sub, frame, msg);
          return;
        }
      }
      this.sendFrame(frame);
      return;
    }
    // The usual case, the next offset of the stream delivered last, touches nothing else.
    const fast = this.#fast;
    if (
      this.#held === 0 && fast !== undefined && offset === fast.offset + 1 &&
      identifier === this.#fastIdentifier && msg.stream === this.#fastStream &&
      msg.epoch === fast.epoch
    ) {
      fast.offset = offset;
      this.sendFrame(frame);
      return;
    }
    const sub = this.subscriptions.get(identifier);
    if (sub === undefined) {
      this.sendFrame(frame);
      return;
    }
    if (sub.held) {
      this.#keep(sub, frame, msg);
      return;
    }
    this.#deliverPositioned(identifier, sub, frame, msg);
  }

  #deliverPositioned(identifier: string, sub: Subscription, frame: string, msg: StreamMessage) {
    const offset = msg.offset!;
    const epoch = msg.epoch!;
    const cursors = sub.cursors ??= new Map();
    let cursor = cursors.get(msg.stream);
    if (cursor === undefined) {
      cursors.set(msg.stream, cursor = { epoch, offset });
    } else if (cursor.epoch !== epoch) {
      // A new storage generation: its offsets start over.
      cursor.epoch = epoch;
      cursor.offset = offset;
    } else if (offset <= cursor.offset) {
      this.duplicatesDropped++;
      return;
    } else if (offset > cursor.offset + 1 && this.#fillGap) {
      this.holdLive(sub);
      this.#keep(sub, frame, msg);
      this.#fillGap(this, identifier, sub, {
        stream: msg.stream,
        epoch,
        after: cursor.offset,
        upTo: offset,
      });
      return;
    } else {
      cursor.offset = offset;
    }
    this.#fast = cursor;
    this.#fastIdentifier = identifier;
    this.#fastStream = msg.stream;
    this.sendFrame(frame);
  }

  /**
   * Sends a message read from history (gap fill, or a replay the client may already have
   * parts of) unless this session already delivered its offset; returns whether it was sent.
   * No gap check: the caller sends a contiguous run.
   */
  deliverStored(sub: Subscription, msg: StreamMessage, encode: () => string): boolean {
    if (msg.offset !== undefined && msg.epoch !== undefined) {
      const cursors = sub.cursors ??= new Map();
      const cursor = cursors.get(msg.stream);
      if (cursor === undefined) cursors.set(msg.stream, { epoch: msg.epoch, offset: msg.offset });
      else if (cursor.epoch !== msg.epoch) {
        cursor.epoch = msg.epoch;
        cursor.offset = msg.offset;
      } else if (msg.offset <= cursor.offset) return false;
      else cursor.offset = msg.offset;
    }
    this.sendFrame(encode());
    return true;
  }

  /**
   * Sends a message the client asked for with a history request, even one this session sent
   * before (the client asked from its own position); the cursor only moves forward, so live
   * copies of it are dropped afterwards.
   */
  deliverRequested(sub: Subscription, msg: StreamMessage, encode: () => string): void {
    if (msg.offset !== undefined && msg.epoch !== undefined) {
      this.skipTo(sub, msg.stream, msg.epoch, msg.offset);
    }
    this.sendFrame(encode());
  }

  /** True when the held messages of `sub` hold every offset of the gap (they came live). */
  heldCovers(
    sub: Subscription,
    gap: { stream: string; epoch: string; after: number; upTo: number },
  ): boolean {
    const have = new Set<number>();
    for (const { msg } of sub.held ?? []) {
      if (msg.stream === gap.stream && msg.epoch === gap.epoch && msg.offset !== undefined) {
        have.add(msg.offset);
      }
    }
    for (let o = gap.after + 1; o < gap.upTo; o++) if (!have.has(o)) return false;
    return true;
  }

  /** The last position delivered for `stream` in this subscription, if any. */
  cursor(sub: Subscription, stream: string): StreamCursor | undefined {
    return sub.cursors?.get(stream);
  }

  /** Moves the cursor forward without sending (a gap history could not fill was reported). */
  skipTo(sub: Subscription, stream: string, epoch: string, offset: number): void {
    const cursors = sub.cursors ??= new Map();
    const cursor = cursors.get(stream);
    if (cursor === undefined) cursors.set(stream, { epoch, offset });
    else if (cursor.epoch !== epoch || cursor.offset < offset) {
      cursor.epoch = epoch;
      cursor.offset = offset;
    }
  }

  #keep(sub: Subscription, frame: string, msg: StreamMessage): void {
    sub.held!.push({ frame, msg });
    sub.heldBytes = (sub.heldBytes ?? 0) + frame.length;
    if (sub.heldBytes > this.#maxHeld && this.state !== "closed") {
      // Never a silent drop: the client reconnects and asks history from its position.
      this.logger.warn("held live messages passed the hold limit, disconnecting", {
        held: sub.held!.length,
        bytes: sub.heldBytes,
      });
      this.disconnect(HOLD_OVERFLOW_REASON, true);
    }
  }

  /** Live messages for `sub` wait (history replay, gap fill, restore) until releaseLive. */
  holdLive(sub: Subscription): void {
    sub.holds = (sub.holds ?? 0) + 1;
    if (sub.held) return;
    sub.held = [];
    sub.heldBytes = 0;
    this.#held++;
  }

  /**
   * Ends one hold of `sub`; when none is left, delivers what was kept, per stream in offset
   * order, through the cursor (what a replay already carried is dropped, a gap is filled).
   */
  releaseLive(sub: Subscription): void {
    if (!sub.holds) return;
    if (--sub.holds > 0) return;
    const buffered = sub.held;
    if (!buffered) return;
    sub.held = undefined;
    sub.heldBytes = 0;
    this.#held--;
    const identifier = this.#identifierOf(sub);
    const ordered = inOffsetOrder(buffered);
    for (let i = 0; i < ordered.length; i++) {
      const { frame, msg } = ordered[i];
      if (sub.held) {
        // A gap fill started: the rest waits behind it, in order.
        this.#keep(sub, frame, msg);
        continue;
      }
      if (identifier === undefined || msg.offset === undefined || msg.epoch === undefined) {
        this.sendFrame(frame);
      } else this.#deliverPositioned(identifier, sub, frame, msg);
    }
  }

  /** The subscription left the session: forget its hold (its kept messages go nowhere). */
  dropHolds(sub: Subscription): void {
    this.#fast = undefined;
    sub.holds = 0;
    sub.awaitingHistory = false;
    if (!sub.held) return;
    sub.held = undefined;
    sub.heldBytes = 0;
    this.#held--;
  }

  /**
   * A restored subscription gets nothing live until the client's history request for it was
   * answered (endRestoreHold), or until `timeoutMs` passed.
   */
  holdRestored(sub: Subscription, timeoutMs: number): void {
    sub.awaitingHistory = true;
    this.holdLive(sub);
    if (this.#restoreTimer !== undefined) return;
    this.#restoreTimer = setTimeout(() => {
      this.#restoreTimer = undefined;
      let waiting = 0;
      for (const s of this.subscriptions.values()) {
        if (s.awaitingHistory) {
          waiting++;
          s.releasedUnasked = true;
          this.endRestoreHold(s);
        }
      }
      if (waiting) {
        this.logger.debug("no history request after restore, releasing live messages", {
          subscriptions: waiting,
        });
      }
    }, timeoutMs);
  }

  /** The restored subscription's history was answered (or not asked for in time). */
  endRestoreHold(sub: Subscription): void {
    if (!sub.awaitingHistory) return;
    sub.awaitingHistory = false;
    this.releaseLive(sub);
  }

  #identifierOf(sub: Subscription): string | undefined {
    for (const [identifier, s] of this.subscriptions) if (s === sub) return identifier;
    return undefined;
  }

  /** Sends a `disconnect` message, then closes. */
  disconnect(reason: string, reconnect: boolean, code = CLOSE_NORMAL): void {
    if (this.state === "closed") return;
    this.send({ type: "disconnect", reason, reconnect });
    this.close(code, reason);
  }

  /** Aborts when the session closes; controller calls carry it so none runs late. */
  get signal(): AbortSignal {
    this.#gone ??= new AbortController();
    if (this.state === "closed" && !this.#gone.signal.aborted) this.#gone.abort(goneReason());
    return this.#gone.signal;
  }

  /** Closes the link and tells the node, once. */
  close(code = CLOSE_NORMAL, reason = ""): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.#logger?.flush();
    this.#gone?.abort(goneReason());
    // Only restored sessions have one; clearTimeout(undefined) still costs a timers lookup.
    if (this.#restoreTimer !== undefined) clearTimeout(this.#restoreTimer);
    try {
      this.conn.close(code, reason);
    } catch {
      // already closed by the peer
    }
    this.#closed?.(this);
  }

  /**
   * What a controller call from this session knows (`env` as callEnv makes it). Its signal is
   * made when read: an RPC client reads it, a subscription the server handles itself does not.
   */
  callContext(identifier?: string): CallContext {
    return new SessionCall(this, this.callEnv(identifier));
  }

  /** Context for controller calls; `istate` only for one subscription. */
  callEnv(identifier?: string): Env {
    const env: Env = { url: this.env.url, headers: this.env.headers, cstate: { ...this.cstate } };
    if (identifier !== undefined) {
      const sub = this.subscriptions.get(identifier);
      if (sub) env.istate = { ...sub.istate };
    }
    return env;
  }
}

/** A session's CallContext (see Session.callContext). */
class SessionCall implements CallContext {
  readonly sid: string;
  readonly env: Env;
  readonly identifiers?: string;
  readonly #session: Session;

  constructor(session: Session, env: Env) {
    this.sid = session.sid;
    this.env = env;
    this.identifiers = session.identifiers;
    this.#session = session;
  }

  get signal(): AbortSignal {
    return this.#session.signal;
  }
}

/**
 * The abort reason of every closed session's signal: one instance, made once (a DOMException
 * captures a stack trace, which cost more than the rest of closing a session).
 */
const GONE = new DOMException("session closed", "AbortError");

function goneReason(): DOMException {
  return GONE;
}

/**
 * The kept messages with each stream's positioned messages in offset order (cross-node
 * pub/sub may reorder them); everything else keeps its place.
 */
function inOffsetOrder(held: HeldMessage[]): HeldMessage[] {
  if (held.length < 2) return held;
  const byStream = new Map<string, HeldMessage[]>();
  for (const h of held) {
    if (h.msg.offset === undefined) continue;
    let list = byStream.get(h.msg.stream);
    if (!list) byStream.set(h.msg.stream, list = []);
    list.push(h);
  }
  let sorted = false;
  for (const list of byStream.values()) {
    for (let i = 1; i < list.length; i++) {
      if (list[i].msg.offset! < list[i - 1].msg.offset!) {
        list.sort((a, b) => a.msg.offset! - b.msg.offset!);
        sorted = true;
        break;
      }
    }
  }
  if (!sorted) return held;
  const next = new Map<string, number>();
  return held.map((h) => {
    if (h.msg.offset === undefined) return h;
    const i = next.get(h.msg.stream) ?? 0;
    next.set(h.msg.stream, i + 1);
    return byStream.get(h.msg.stream)![i];
  });
}
