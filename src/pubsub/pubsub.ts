import type { StreamMessage } from "../broker/broker.ts";

/** A command for every node, e.g. a remote disconnect (shared/PROTOCOL.md §9.1). */
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
}

/** Carries stream messages and remote commands between nodes. */
export interface PubSub {
  readonly name: string;
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
