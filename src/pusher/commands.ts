import type { Broker, StreamMessage } from "../broker/broker.ts";
import type { Hub } from "../hub/hub.ts";
import { utf8Length } from "../util/utf8_length.ts";
import { publicationData } from "./encoder.ts";
import {
  channelKind,
  type ClientFrame,
  dataObject,
  decodeFrame,
  ERR,
  errorFrame,
  EV,
  InvalidFrameError,
  MAX_EVENT_DATA_BYTES,
  PONG_FRAME,
  subscriptionErrorFrame,
  validChannelName,
} from "./protocol.ts";
import { type PusherSession, userIdentifiers } from "./pusher_session.ts";
import type { PusherSigner } from "./signatures.ts";

/** Channels only the signed-in user may join (pusher-js joins it after `pusher:signin`). */
export const USER_CHANNEL_PREFIX = "#server-to-user-";

export interface PusherCommandsDeps {
  hub: Hub;
  broker: Broker;
  signer: PusherSigner;
  /** Publishes through the cluster (the node's publisher). */
  publish(msg: StreamMessage): Promise<void>;
  /** The node's traffic counters. */
  stats: { clientMessages: number; failedClientMessages: number; bytesReceived: number };
}

/**
 * What a Pusher socket can ask for: subscribe/unsubscribe (public, private-, presence-),
 * client events, ping, sign-in. Frames of one socket are handled in order.
 */
export class PusherCommands {
  readonly #deps: PusherCommandsDeps;
  /** Pusher subscriptions on this node, per channel (the HTTP API's channel list). */
  readonly occupancy = new Map<string, number>();

  constructor(deps: PusherCommandsDeps) {
    this.#deps = deps;
  }

  /** An inbound text frame. */
  receive(session: PusherSession, raw: string): void {
    session.lastSeen = Date.now();
    this.#deps.stats.clientMessages++;
    this.#deps.stats.bytesReceived += raw.length;
    let frame: ClientFrame;
    try {
      frame = decodeFrame(raw);
    } catch (err) {
      const reason = err instanceof InvalidFrameError ? err.message : "Invalid message";
      this.#refuse(session, reason, { frame: raw.slice(0, 200) });
      return;
    }
    session.enqueue(() => this.#dispatch(session, frame));
  }

  /** The socket is gone: leave every channel (presence leaves are published). */
  async closed(session: PusherSession): Promise<void> {
    const channels = [...session.channels.keys()];
    await Promise.all(channels.map((c) => this.#leave(session, c)));
  }

  async #dispatch(session: PusherSession, frame: ClientFrame): Promise<void> {
    switch (frame.event) {
      case EV.ping:
        session.sendFrame(PONG_FRAME);
        return;
      case EV.pong:
        return;
      case EV.subscribe:
        return await this.#subscribe(session, dataObject(frame.data));
      case EV.unsubscribe: {
        const channel = dataObject(frame.data)?.channel;
        if (typeof channel === "string") await this.#leave(session, channel);
        return;
      }
      case EV.signin:
        return this.#signin(session, dataObject(frame.data));
    }
    if (frame.event.startsWith("client-")) return await this.#clientEvent(session, frame);
    this.#refuse(session, `Unsupported event: ${frame.event.slice(0, 100)}`);
  }

  async #subscribe(
    session: PusherSession,
    data: Record<string, unknown> | undefined,
  ): Promise<void> {
    const channel = data?.channel;
    if (typeof channel !== "string") {
      this.#refuse(session, "pusher:subscribe needs data.channel");
      return;
    }
    const userChannel = channel.startsWith(USER_CHANNEL_PREFIX);
    if (!userChannel && !validChannelName(channel)) {
      this.#subscriptionError(session, channel, "InvalidChannel", "Invalid channel name", 400);
      return;
    }
    const kind = channelKind(channel);
    if (userChannel) {
      if (session.userId === undefined || channel !== USER_CHANNEL_PREFIX + session.userId) {
        this.#subscriptionError(session, channel, "AuthError", "Not signed in as this user", 401);
        return;
      }
    } else if (kind === "private") {
      if (!this.#deps.signer.verifyChannel(session.sid, channel, data!.auth)) {
        this.#subscriptionError(session, channel, "AuthError", "Invalid signature", 401);
        return;
      }
    } else if (kind === "presence") {
      return await this.#subscribePresence(session, channel, data!);
    }
    this.#join(session, channel, { kind });
    session.sendFrame(JSON.stringify({ event: EV.subscriptionSucceeded, channel, data: "{}" }));
  }

  async #subscribePresence(
    session: PusherSession,
    channel: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    const channelData = data.channel_data;
    if (typeof channelData !== "string") {
      this.#subscriptionError(session, channel, "AuthError", "channel_data is required", 401);
      return;
    }
    if (!this.#deps.signer.verifyChannel(session.sid, channel, data.auth, channelData)) {
      this.#subscriptionError(session, channel, "AuthError", "Invalid signature", 401);
      return;
    }
    const member = dataObject(channelData);
    const rawId = member?.user_id;
    if (typeof rawId !== "string" && typeof rawId !== "number" || rawId === "") {
      this.#subscriptionError(session, channel, "AuthError", "channel_data needs a user_id", 400);
      return;
    }
    const userId = String(rawId);
    const userInfo = member!.user_info;
    const previous = session.channels.get(channel);
    if (previous?.userId !== undefined && previous.userId !== userId) {
      await this.#leave(session, channel);
    }
    // Subscribe first: members who join while the list is read still reach this socket.
    this.#join(session, channel, { kind: "presence", userId });
    if (!session.open) return;
    let ids: string[];
    let hash: Record<string, unknown>;
    try {
      const joined = await this.#deps.broker.presenceAdd(channel, session.sid, userId, userInfo);
      const info = await this.#deps.broker.presenceInfo(channel);
      ids = info.records.map((r) => r.id);
      hash = Object.fromEntries(info.records.map((r) => [r.id, r.info ?? null]));
      if (!(userId in hash)) {
        ids.push(userId);
        hash[userId] = userInfo ?? null;
      }
      // A socket that closed meanwhile has left already (see closed()): announce nothing.
      if (joined && session.open) {
        // Other sockets learn of the member; this one has it in its list already.
        await this.#deps.publish({
          stream: channel,
          data: JSON.stringify(joined),
          meta: { transient: true, broadcast_type: "presence", exclude_socket: session.sid },
        });
      }
    } catch (err) {
      session.logger.warn("pusher presence failed", { channel, error: err });
      this.#unjoin(session, channel);
      // The entry may have been added before the failure: best effort, it expires anyway.
      if (this.#deps.broker.persistent) {
        this.#deps.broker.presenceRemove(channel, session.sid).catch(() => {});
      }
      const why = this.#deps.broker.persistent
        ? "Presence is unavailable"
        : "Presence channels need a broker (--broker)";
      this.#subscriptionError(session, channel, "PresenceError", why, 500);
      return;
    }
    if (!session.open) return;
    const presence = { ids, hash, count: ids.length };
    session.sendFrame(
      JSON.stringify({
        event: EV.subscriptionSucceeded,
        channel,
        data: JSON.stringify({ presence }),
      }),
    );
  }

  #join(
    session: PusherSession,
    channel: string,
    state: { kind: "public" | "private" | "presence"; userId?: string },
  ): void {
    // A closed socket has been cleaned up already: subscribing it now would leak it in the hub.
    if (!session.open) return;
    if (!session.channels.has(channel)) {
      this.#deps.hub.subscribe(session, channel, channel);
      this.occupancy.set(channel, (this.occupancy.get(channel) ?? 0) + 1);
    }
    session.channels.set(channel, state);
  }

  #unjoin(session: PusherSession, channel: string): boolean {
    if (!session.channels.delete(channel)) return false;
    this.#deps.hub.unsubscribe(session, channel, channel);
    const left = (this.occupancy.get(channel) ?? 1) - 1;
    if (left > 0) this.occupancy.set(channel, left);
    else this.occupancy.delete(channel);
    return true;
  }

  async #leave(session: PusherSession, channel: string): Promise<void> {
    const state = session.channels.get(channel);
    if (!state || !this.#unjoin(session, channel)) return;
    if (state.kind !== "presence" || state.userId === undefined) return;
    try {
      const left = await this.#deps.broker.presenceRemove(channel, session.sid);
      if (left) {
        await this.#deps.publish({
          stream: channel,
          data: JSON.stringify(left),
          meta: { transient: true, broadcast_type: "presence" },
        });
      }
    } catch (err) {
      session.logger.warn("pusher presence leave failed", { channel, error: err });
    }
  }

  async #clientEvent(session: PusherSession, frame: ClientFrame): Promise<void> {
    const channel = frame.channel;
    const state = channel === undefined ? undefined : session.channels.get(channel);
    if (channel === undefined || !state) {
      this.#refuse(session, "Client event rejected - not subscribed to the channel", {
        event: frame.event,
        channel,
      });
      return;
    }
    if (state.kind === "public" || channel.startsWith(USER_CHANNEL_PREFIX)) {
      this.#refuse(
        session,
        "Client event rejected - only supported on private and presence channels",
        { event: frame.event, channel },
      );
      return;
    }
    const payload = JSON.stringify(frame.data ?? {});
    if (utf8Length(payload) > MAX_EVENT_DATA_BYTES) {
      this.#refuse(
        session,
        `Client event rejected - payload larger than ${MAX_EVENT_DATA_BYTES} bytes`,
        { event: frame.event, channel },
      );
      return;
    }
    await this.#deps.publish({
      stream: channel,
      data: publicationData(frame.event, frame.data ?? {}, state.userId),
      meta: { transient: true, exclude_socket: session.sid },
    });
  }

  #signin(session: PusherSession, data: Record<string, unknown> | undefined): void {
    const userData = data?.user_data;
    const user = typeof userData === "string" ? dataObject(userData) : undefined;
    const id = user?.id;
    if (
      typeof userData !== "string" || typeof id !== "string" || id === "" ||
      !this.#deps.signer.verifyUser(session.sid, userData, data!.auth)
    ) {
      this.#deps.stats.failedClientMessages++;
      session.logger.info("pusher sign-in refused");
      session.sendFrame(errorFrame(ERR.unauthorized, "Invalid signature: sign-in refused"));
      session.close(ERR.unauthorized, "sign-in refused");
      return;
    }
    session.userId = id;
    session.identifiers = userIdentifiers(id);
    session.sendFrame(JSON.stringify({ event: EV.signinSuccess, data: { user_data: userData } }));
  }

  #subscriptionError(
    session: PusherSession,
    channel: string,
    type: string,
    error: string,
    status: number,
  ): void {
    this.#deps.stats.failedClientMessages++;
    session.logger.info("pusher subscription refused", { channel: channel.slice(0, 200), error });
    session.sendFrame(subscriptionErrorFrame(channel, type, error, status));
  }

  /** A request Pusher answers with a non-fatal `pusher:error` (code null). */
  #refuse(session: PusherSession, message: string, fields: Record<string, unknown> = {}): void {
    this.#deps.stats.failedClientMessages++;
    session.logger.warn("pusher message refused", { reason: message, ...fields });
    session.sendFrame(errorFrame(null, message));
  }
}
