import type { StreamMessage } from "../broker/broker.ts";
import type { PubSub, PubSubHandler, RemoteCommand } from "./pubsub.ts";

/** Single-node pub/sub: everything is delivered in this process. */
export class LocalPubSub implements PubSub {
  readonly name = "local";
  readonly ready = true;
  #handler?: PubSubHandler;

  start(handler: PubSubHandler): Promise<void> {
    this.#handler = handler;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(): void {}
  unsubscribe(): void {}
  broadcast(msg: StreamMessage): Promise<void> {
    this.#handler?.deliver(msg);
    return Promise.resolve();
  }
  broadcastCommand(cmd: RemoteCommand): Promise<void> {
    this.#handler?.execute(cmd);
    return Promise.resolve();
  }
}
