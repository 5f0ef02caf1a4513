import type { CallContext, CommandResult, ConnectResult, Controller } from "../node/controller.ts";
import { Status } from "../rpc/rpc_client.ts";
import { verifyStream } from "./signed_stream.ts";

export interface StreamsControllerOptions {
  /** Key for `$pubsub` signed streams; "" refuses them (never verified with an empty key). */
  streamsSecret: string;
  publicStreams: boolean;
  whisper: boolean;
  presence: boolean;
  /** Key for Turbo::StreamsChannel; "" = Turbo handling off. */
  turboSecret: string;
  turbo: boolean;
  /** Key for CableReady::Stream; "" = off. */
  cableReadySecret: string;
  cableReady: boolean;
}

/**
 * Handles `$pubsub`, Turbo Streams and CableReady subscriptions in the server
 * (docs/protocol.md#signed-streams) and delegates everything else.
 */
export class StreamsController implements Controller {
  readonly #next: Controller;
  readonly #opts: StreamsControllerOptions;

  constructor(next: Controller, opts: StreamsControllerOptions) {
    this.#next = next;
    this.#opts = opts;
  }

  authenticate(ctx: CallContext): Promise<ConnectResult> {
    return this.#next.authenticate(ctx);
  }

  async subscribe(ctx: CallContext, identifier: string): Promise<CommandResult> {
    const channel = parseIdentifier(identifier);
    if (!channel) return this.#next.subscribe(ctx, identifier);
    const name = channel.channel;
    if (name === "$pubsub") return this.#pubsub(identifier, channel);
    if (name === "Turbo::StreamsChannel" && this.#opts.turbo) {
      const stream = await this.#verify(channel.signed_stream_name, this.#opts.turboSecret);
      return stream === null ? reject(identifier) : confirm(identifier, stream, {});
    }
    if (name === "CableReady::Stream" && this.#opts.cableReady) {
      const stream = await this.#verify(channel.identifier, this.#opts.cableReadySecret);
      return stream === null ? reject(identifier) : confirm(identifier, stream, {});
    }
    return this.#next.subscribe(ctx, identifier);
  }

  unsubscribe(ctx: CallContext, identifier: string): Promise<CommandResult> {
    if (this.#handles(identifier)) {
      return Promise.resolve({ status: Status.SUCCESS, stop_streams: true });
    }
    return this.#next.unsubscribe(ctx, identifier);
  }

  perform(ctx: CallContext, identifier: string, data: string): Promise<CommandResult> {
    return this.#next.perform(ctx, identifier, data);
  }

  disconnect(ctx: CallContext, subscriptions: string[]) {
    return this.#next.disconnect(ctx, subscriptions);
  }

  #handles(identifier: string): boolean {
    const name = parseIdentifier(identifier)?.channel;
    return name === "$pubsub" || (name === "Turbo::StreamsChannel" && this.#opts.turbo) ||
      (name === "CableReady::Stream" && this.#opts.cableReady);
  }

  async #pubsub(identifier: string, channel: Record<string, unknown>): Promise<CommandResult> {
    if (typeof channel.stream_name === "string" && channel.stream_name !== "") {
      if (!this.#opts.publicStreams) return reject(identifier);
      const stream = channel.stream_name;
      return confirm(identifier, stream, { $w: stream, $p: stream });
    }
    const stream = await this.#verify(channel.signed_stream_name, this.#opts.streamsSecret);
    if (stream === null) return reject(identifier);
    const istate: Record<string, string> = {};
    if (this.#opts.whisper) istate.$w = stream;
    if (this.#opts.presence) istate.$p = stream;
    return confirm(identifier, stream, istate);
  }

  #verify(signed: unknown, secret: string): Promise<string | null> {
    if (typeof signed !== "string" || signed === "" || secret === "") {
      return Promise.resolve(null);
    }
    return verifyStream(signed, secret);
  }
}

function parseIdentifier(identifier: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(identifier);
    return typeof value === "object" && value !== null && typeof value.channel === "string"
      ? value
      : null;
  } catch {
    return null;
  }
}

function confirm(
  identifier: string,
  stream: string,
  istate: Record<string, string>,
): CommandResult {
  return {
    status: Status.SUCCESS,
    streams: [stream],
    env: { istate },
    transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
  };
}

function reject(identifier: string): CommandResult {
  return {
    status: Status.FAILURE,
    transmissions: [JSON.stringify({ identifier, type: "reject_subscription" })],
  };
}
