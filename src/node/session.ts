import type { StreamMessage } from "../broker/broker.ts";
import type { Subscriber } from "../hub/hub.ts";
import type { LogBudget, Logger } from "../logger/logger.ts";
import { encodeReply } from "../protocol/encoder.ts";
import type { Reply } from "../protocol/messages.ts";
import type { Env } from "../rpc/rpc_client.ts";
import { CLOSE_NORMAL, type Connection } from "../transport/connection.ts";
import { utf8Length } from "../util/utf8_length.ts";
import type { WriteWatchdog } from "./write_watchdog.ts";

/** One subscription (identifier) of a session. */
export interface Subscription {
  istate: Record<string, string>;
  streams: Set<string>;
  /** Set while history is replayed: live messages wait here (see Node.replay). */
  replayBuffer?: Array<{ frame: string; msg: StreamMessage }>;
  presenceId?: string;
}

/**
 * What one session may write to the log: a client sending bad frames in a loop gets 20 lines per
 * 10 s and then one summary line per window (the metrics still count every frame).
 */
export const SESSION_LOG_BUDGET: LogBudget = { lines: 20, perMs: 10_000 };

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
}

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

  deliver(identifier: string, frame: string, msg: StreamMessage): void {
    if (this.#held > 0) {
      const sub = this.subscriptions.get(identifier);
      if (sub?.replayBuffer) {
        sub.replayBuffer.push({ frame, msg });
        return;
      }
    }
    this.sendFrame(frame);
  }

  /** Live messages for `sub` wait (while its history is replayed) until releaseLive. */
  holdLive(sub: Subscription): void {
    if (sub.replayBuffer) return;
    sub.replayBuffer = [];
    this.#held++;
  }

  /** Sends what holdLive kept, minus what `skip` says the replay already carried. Idempotent. */
  releaseLive(sub: Subscription, skip?: (msg: StreamMessage) => boolean): void {
    const buffered = sub.replayBuffer;
    if (!buffered) return;
    sub.replayBuffer = undefined;
    this.#held--;
    for (const { frame, msg } of buffered) {
      if (!skip?.(msg)) this.sendFrame(frame);
    }
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
    try {
      this.conn.close(code, reason);
    } catch {
      // already closed by the peer
    }
    this.#closed?.(this);
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

function goneReason(): DOMException {
  return new DOMException("session closed", "AbortError");
}
