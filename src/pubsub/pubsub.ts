import type { StreamMessage } from "../broker/broker.ts";

/** A command for every node, e.g. a remote disconnect (docs/protocol.md#publication-format). */
export interface RemoteCommand {
  command: "disconnect";
  payload: { identifier: string; reconnect?: boolean };
}

/** What a pub/sub hands back to the node it serves. */
export interface PubSubHandler {
  /** A registered (or fan-out) stream message to deliver to local subscribers. */
  deliver(msg: StreamMessage): void;
  /** A remote command to execute on this node. */
  execute(cmd: RemoteCommand): void;
  /**
   * The link that brings other nodes' messages here dropped: what they publish from now on
   * may not arrive until `linkRestored`.
   */
  linkLost?(): void;
  /** Every subscription is back in place after a drop (acknowledged by the server). */
  linkRestored?(): void;
}

/** Refused because the pub/sub cannot currently reach every subscriber; the caller retries. */
export class PubSubUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PubSubUnavailableError";
  }
}

/** Carries stream messages and remote commands between nodes. */
export interface PubSub {
  readonly name: string;
  /**
   * False while this node's link is down or its subscriptions are being re-established
   * after a drop: a publication now might not reach this node's subscribers.
   */
  readonly ready: boolean;
  start(handler: PubSubHandler): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
  /** This node has local subscribers for `stream` (called on the first one). */
  subscribe(stream: string): void;
  /** This node has no more local subscribers for `stream`. */
  unsubscribe(stream: string): void;
  /** Sends a registered message to every node that has subscribers for its stream. */
  broadcast(msg: StreamMessage): Promise<void>;
  /** Sends a command to every node (this one included). */
  broadcastCommand(cmd: RemoteCommand): Promise<void>;
}
