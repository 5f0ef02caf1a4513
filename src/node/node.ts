import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { Hub } from "../hub/hub.ts";
import type { Logger } from "../logger/logger.ts";
import { decodeCommand, InvalidFrameError } from "../protocol/decoder.ts";
import { type ClientCommand, PROTOCOL_EXT_JSON } from "../protocol/messages.ts";
import type { PubSubHandler, RemoteCommand } from "../pubsub/pubsub.ts";
import type { DisconnectQueue } from "../rpc/disconnect_queue.ts";
import { Status } from "../rpc/rpc_client.ts";
import {
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL,
  CLOSE_NORMAL,
  type Connection,
  type ConnectionRequest,
} from "../transport/connection.ts";
import { CopiedHeaders } from "../transport/request_headers.ts";
import { nanoid } from "../util/nanoid.ts";
import { urlQuery } from "../util/url_query.ts";
import { utf8Length } from "../util/utf8_length.ts";
import type { Authenticator } from "./authenticator.ts";
import type { Controller } from "./controller.ts";
import { handleExtraCommand } from "./extras.ts";
import { discarded, findSubscription, perform, subscribe, unsubscribe } from "./commands.ts";
import { gapFiller, replayHistory } from "./history.ts";
import { Pinger, pingIntervalParam } from "./pinger.ts";
import { WriteWatchdog } from "./write_watchdog.ts";
import { type GapFiller, Session } from "./session.ts";
import {
  cacheable,
  commitSession,
  restorable,
  restoreSession,
  welcomeWithSid,
} from "./session_cache.ts";
import { mergeState } from "./state.ts";

/**
 * Characters of inbound frames a session may have waiting to be processed (1 MiB of ASCII):
 * thousands of ordinary commands, or 16 frames of the default 64 KiB maximum.
 */
export const MAX_INBOUND_BACKLOG = 1024 * 1024;

/** An X-Request-ID that may become a sid: a plain token of at most 64 characters. */
const REQUEST_ID_SID = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface NodeOptions {
  pingInterval: number;
  pingPrecision: "s" | "ms" | "ns";
  pongTimeout: number;
  sessionsTtl: number;
  presenceTtl: number;
  maxPending: number;
  /** Seconds a WebSocket's written bytes may stall before too_slow; 0 = off. */
  writeTimeout?: number;
  forwardHeaders: string[];
  proxyCookies: string[];
  disconnectMode: "auto" | "always" | "never";
  /** More request headers authenticators read (e.g. the JWT header). */
  readHeaders?: string[];
  /** Ms a restored subscription holds live messages waiting for the client's history request. */
  restoreHoldTimeout?: number;
  /** Bytes of live messages one held subscription may keep (see Session.holdLive). */
  holdBufferSize?: number;
}

export interface NodeDeps {
  hub: Hub;
  broker: Broker;
  controller: Controller;
  disconnects: DisconnectQueue;
  authenticators: Authenticator[];
  logger: Logger;
  /** Publishes transient messages (whispers, presence events) through the cluster. */
  publish(msg: StreamMessage): Promise<void>;
}

export interface NodeStats {
  failedAuths: number;
  failedClientMessages: number;
  clientMessages: number;
  /** Frames and bytes sent to clients, bytes received from them. */
  serverMessages: number;
  bytesSent: number;
  bytesReceived: number;
}

/**
 * Sessions and what happens to them: authenticate, subscribe, perform, history, disconnect.
 * Transports call open/receive/closed; pub/sub calls deliver/execute.
 */
export class Node implements PubSubHandler {
  readonly opts: NodeOptions;
  readonly deps: NodeDeps;
  readonly sessions = new Map<string, Session>();
  readonly stats: NodeStats = {
    failedAuths: 0,
    failedClientMessages: 0,
    clientMessages: 0,
    serverMessages: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
  #shuttingDown = false;
  #keepalive?: ReturnType<typeof setInterval>;
  readonly #pinger: Pinger;
  readonly #writes?: WriteWatchdog<Session>;
  readonly #closedHook = (session: Session) => this.#cleanup(session);
  readonly #fillGap: GapFiller;
  readonly #wantedHeaders: string[];

  constructor(opts: NodeOptions, deps: NodeDeps) {
    this.opts = opts;
    this.deps = deps;
    this.#pinger = new Pinger({ pongTimeoutSeconds: opts.pongTimeout });
    this.#fillGap = gapFiller(this);
    if (opts.writeTimeout && opts.writeTimeout > 0) {
      this.#writes = new WriteWatchdog<Session>(
        opts.writeTimeout * 1000,
        (s) => s.dropSlow("client takes nothing (write timeout), disconnecting", s.pendingBytes),
      );
    }
    this.#wantedHeaders = [
      ...new Set([
        ...opts.forwardHeaders.map((h) => h.toLowerCase()),
        ...(opts.readHeaders ?? []).map((h) => h.toLowerCase()),
        "x-request-id",
        "x-anycable-restore-sid",
        "sec-websocket-protocol",
        "origin",
        "last-event-id",
      ]),
    ];
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  start(): void {
    if (!this.deps.broker.persistent) return;
    // One ticker for all sessions: keep cached sessions and presence alive, expire presence.
    const every = Math.max(1, Math.min(this.opts.sessionsTtl, this.opts.presenceTtl) / 2) * 1000;
    this.#keepalive = setInterval(() => this.#tick(), every);
  }

  /**
   * Copies the request headers the node reads (forwarded ones, sid, restore, tokens). Reading
   * them one by one, instead of iterating, keeps Deno from building an iteration cache on a
   * request it retains for the connection's lifetime.
   */
  copyHeaders(headers: Headers): CopiedHeaders {
    const out = new CopiedHeaders();
    for (const name of this.#wantedHeaders) {
      const value = headers.get(name);
      if (value !== null) out.add(name, value);
    }
    return out;
  }

  /** A transport has a new client; authentication starts at once, frames queue behind it. */
  open(conn: Connection, req: ConnectionRequest): Session {
    // X-Request-ID becomes the sid, as in the reference, when it is a plain token and not in
    // use here; #claimRequestedSid also refuses one the session cache holds. Otherwise the
    // sid is generated and the request id kept for the logs.
    const requested = req.headers.get("x-request-id") ?? undefined;
    const usable = requested !== undefined && REQUEST_ID_SID.test(requested) &&
      !this.sessions.has(requested);
    const sid = usable ? requested : nanoid();
    const session = new Session({
      sid,
      requestId: usable ? undefined : requested,
      ext: req.protocol === PROTOCOL_EXT_JSON,
      conn,
      env: { url: req.url, headers: this.#forwardedHeaders(req) },
      transport: req.transport,
      logger: this.deps.logger,
      maxPending: this.opts.maxPending,
      stats: this.stats,
      closed: this.#closedHook,
      writes: req.transport === "ws" ? this.#writes : undefined,
      maxHeld: this.opts.holdBufferSize,
      // Gaps can only be filled from a broker that keeps history.
      fillGap: this.deps.broker.persistent ? this.#fillGap : undefined,
    });
    this.sessions.set(sid, session);
    this.#startAuthentication(session, req);
    return session;
  }

  // Its own method so the closure does not share (and keep alive) open()'s scope.
  #startAuthentication(session: Session, req: ConnectionRequest): void {
    session.enqueue(() => this.#authenticate(session, req));
  }

  /** An inbound text frame; processed in order after authentication. */
  receive(session: Session, frame: string): void {
    session.lastSeen = Date.now();
    this.stats.clientMessages++;
    this.stats.bytesReceived += utf8Length(frame);
    let cmd: ClientCommand;
    try {
      cmd = decodeCommand(frame);
    } catch (err) {
      this.stats.failedClientMessages++;
      const reason = err instanceof InvalidFrameError ? err.message : "invalid frame";
      session.logger.warn("invalid client message", { reason, frame: frame.slice(0, 200) });
      session.send({ type: "error", reason: "invalid_message", message: reason });
      return;
    }
    // Frames wait in order behind the one being processed (an RPC call may be slow): a client
    // that sends faster than that is cut off once MAX_INBOUND_BACKLOG characters wait.
    const size = frame.length;
    if (session.inboundBacklog > 0 && session.inboundBacklog + size > MAX_INBOUND_BACKLOG) {
      this.stats.failedClientMessages++;
      session.logger.warn("too many commands waiting, disconnecting", {
        waiting: session.inboundBacklog,
      });
      session.disconnect("too_many_requests", true);
      return;
    }
    session.inboundBacklog += size;
    session.enqueue(() => this.#dispatch(session, cmd, size));
  }

  /** The transport saw the client go away. */
  closed(session: Session): void {
    session.close(CLOSE_NORMAL, "");
  }

  // PubSubHandler
  deliver(msg: StreamMessage): void {
    this.deps.hub.broadcast(msg);
  }

  execute(cmd: RemoteCommand): void {
    if (cmd.command !== "disconnect") return;
    const { identifier, reconnect } = cmd.payload;
    let count = 0;
    for (const session of [...this.sessions.values()]) {
      if (session.identifiers === identifier && session.state === "connected") {
        session.disconnect("remote", reconnect ?? true, CLOSE_NORMAL);
        count++;
      }
    }
    this.deps.logger.info("remote disconnect", { identifier, sessions: count });
  }

  /** Graceful shutdown: every client gets server_restart; pending Disconnects are flushed. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#shuttingDown = true;
    clearInterval(this.#keepalive);
    this.#pinger.close();
    this.#writes?.close();
    for (const session of [...this.sessions.values()]) {
      session.disconnect("server_restart", true, CLOSE_GOING_AWAY);
    }
    await this.deps.disconnects.shutdown(timeoutMs);
  }

  async #authenticate(session: Session, req: ConnectionRequest): Promise<void> {
    if (session.requestId === undefined && req.headers.has("x-request-id")) {
      await this.#claimRequestedSid(session);
      if (!session.open) return;
    }
    if (restorable(this, req) && await restoreSession(this, session, req)) return;
    for (const auth of this.deps.authenticators) {
      const outcome = await auth.identify(session.sid, req);
      if (!outcome) continue;
      if (outcome.ok) {
        session.identifiers = outcome.identifiers;
        session.expiresAt = outcome.expiresAt;
        this.#connected(session);
        session.send({ type: "welcome", sid: session.sid });
        if (cacheable(this, session)) await commitSession(this, session);
        return;
      }
      this.stats.failedAuths++;
      session.logger.info("authentication failed", { reason: outcome.reason });
      if (outcome.error) session.close(CLOSE_INTERNAL, "Auth Error");
      else session.disconnect(outcome.reason, outcome.reconnect);
      return;
    }
    let res;
    try {
      res = await this.deps.controller.authenticate({
        sid: session.sid,
        env: { url: session.env.url, headers: session.env.headers },
        signal: session.signal,
      });
    } catch (err) {
      if (discarded(session, "connect", err)) return;
      session.logger.error("Connect RPC failed", { error: err });
      session.disconnect("server_error", true, CLOSE_INTERNAL);
      return;
    }
    if (discarded(session, "connect")) return;
    if (res.status === Status.SUCCESS) {
      session.identifiers = res.identifiers ?? "";
      if (res.interest) session.interest = true;
      mergeState(session.cstate, res.env?.cstate);
      this.#connected(session);
      for (const t of res.transmissions ?? []) session.sendFrame(welcomeWithSid(this, session, t));
      if (cacheable(this, session)) await commitSession(this, session);
      return;
    }
    if (res.status === Status.FAILURE) {
      this.stats.failedAuths++;
      session.logger.info("connection rejected", { error_msg: res.error_msg });
      for (const t of res.transmissions ?? []) session.sendFrame(t);
      session.close(CLOSE_NORMAL, "Auth Error");
      return;
    }
    session.logger.error("Connect RPC returned an error", { error_msg: res.error_msg });
    session.disconnect("server_error", true, CLOSE_INTERNAL);
  }

  /**
   * A client-chosen sid must not be one the session cache holds: restoring or excluding by sid
   * would reach another user's session. Such a session gets a generated sid instead.
   */
  async #claimRequestedSid(session: Session): Promise<void> {
    const broker = this.deps.broker;
    if (!broker.persistent || this.opts.sessionsTtl <= 0) return;
    let cached: string | null;
    try {
      cached = await broker.restoreSession(session.sid);
    } catch {
      cached = "unknown"; // cannot tell: do not take the risk
    }
    if (cached === null || !session.open) return;
    const requested = session.sid;
    this.sessions.delete(requested);
    session.rekey(nanoid(), requested);
    this.sessions.set(session.sid, session);
    session.logger.warn("X-Request-ID names a cached session: using a generated sid");
  }

  /** Marks a session authenticated and starts its pings. */
  #connected(session: Session): void {
    session.state = "connected";
    this.startPings(session);
  }

  startPings(session: Session): void {
    const params = urlQuery(session.env.url);
    const interval = pingIntervalParam(params.get("pi"), this.opts.pingInterval);
    if (interval <= 0 || session.transport === "poll") return;
    const ptp = params.get("ptp");
    const precision = ptp === "ms" || ptp === "ns" || ptp === "s" ? ptp : this.opts.pingPrecision;
    this.#pinger.add(session, interval, precision);
  }

  async #dispatch(session: Session, cmd: ClientCommand, size: number): Promise<void> {
    try {
      await this.#run(session, cmd);
    } finally {
      session.inboundBacklog -= size;
    }
  }

  // Not async itself: each command's own promise is returned as it is (one async frame less
  // per command, on the path every connection's subscribe takes).
  #run(session: Session, cmd: ClientCommand): Promise<void> | void {
    if (session.state !== "connected") return;
    switch (cmd.command) {
      case "subscribe":
        return subscribe(this, session, cmd);
      case "unsubscribe":
        return unsubscribe(this, session, cmd);
      case "message":
        return perform(this, session, cmd);
      case "history": {
        const sub = findSubscription(session, cmd);
        if (!sub || !cmd.identifier) return;
        if (!cmd.history || typeof cmd.history !== "object") {
          session.logger.warn("history command without a history request");
          return;
        }
        return replayHistory(this, session, cmd.identifier, sub, cmd.history);
      }
      case "ping":
        session.send({ type: "pong" });
        return;
      case "pong":
        return;
      default:
        return this.#extra(session, cmd);
    }
  }

  /** presence, whisper and the other extended commands; anything else is unknown. */
  async #extra(session: Session, cmd: ClientCommand): Promise<void> {
    if (await handleExtraCommand(this, session, cmd)) return;
    this.stats.failedClientMessages++;
    session.logger.warn("unknown command", { command: cmd.command });
    session.send({
      type: "error",
      reason: "unknown_command",
      message: `unknown command: ${cmd.command}`,
    });
  }

  #forwardedHeaders(req: ConnectionRequest): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.opts.forwardHeaders) {
      let value = req.headers.get(name);
      if (!value) continue;
      if (name === "cookie" && this.opts.proxyCookies.length) {
        value = value.split(";").map((c) => c.trim()).filter((c) =>
          this.opts.proxyCookies.includes(c.split("=")[0])
        ).join("; ");
        if (!value) continue;
      }
      out[name] = value;
    }
    if (req.remoteAddr) out["REMOTE_ADDR"] = req.remoteAddr;
    return out;
  }

  #cleanup(session: Session): void {
    this.sessions.delete(session.sid);
    this.#pinger.remove(session);
    for (const [identifier, sub] of session.subscriptions) {
      for (const stream of sub.streams) this.deps.hub.unsubscribe(session, stream, identifier);
    }
    if (session.identifiers === undefined) return;
    if (session.ext && this.deps.broker.persistent && this.opts.sessionsTtl > 0) {
      this.deps.broker.touchSession(session.sid).catch((err) =>
        session.logger.warn("failed to touch the session cache", { error: err })
      );
    }
    const mode = this.opts.disconnectMode;
    if (mode === "never" || (mode === "auto" && !session.interest)) return;
    const subscriptions = [...session.subscriptions.keys()];
    const ctx = {
      sid: session.sid,
      env: session.callEnv(),
      identifiers: session.identifiers,
    };
    const states: Record<string, string> = {};
    for (const [identifier, sub] of session.subscriptions) {
      if (Object.keys(sub.istate).length) states[identifier] = JSON.stringify(sub.istate);
    }
    if (Object.keys(states).length) ctx.env.istate = states;
    this.deps.disconnects.enqueue(() => this.deps.controller.disconnect(ctx, subscriptions));
  }

  #tick(): void {
    const broker = this.deps.broker;
    for (const session of this.sessions.values()) {
      if (session.state !== "connected" || !session.ext) continue;
      if (this.opts.sessionsTtl > 0) {
        broker.touchSession(session.sid).catch(() => {});
      }
      broker.presenceTouch(session.sid).catch(() => {});
    }
    broker.presenceExpire().then((expired) => {
      for (const { stream, event } of expired) {
        this.deps.publish({
          stream,
          data: JSON.stringify(event),
          meta: { transient: true, broadcast_type: "presence" },
        })
          .catch(() => {});
      }
    }).catch((err) => this.deps.logger.warn("presence expiry failed", { error: err }));
  }
}
