import {
  type Broker,
  type ExpiredPresence,
  HistoryError,
  type PresenceEvent,
  type PresenceInfo,
  type StreamMessage,
} from "./broker.ts";

/** No broker: publications pass through unregistered; history is refused; nothing is kept. */
export class PassthroughBroker implements Broker {
  readonly name = "none";
  readonly persistent = false;

  start(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  epoch(): Promise<string> {
    return Promise.resolve("");
  }
  store(msg: StreamMessage): Promise<StreamMessage> {
    return Promise.resolve(msg);
  }
  historyFrom(): Promise<StreamMessage[]> {
    return Promise.reject(new HistoryError("history is not supported without a broker"));
  }
  historySince(): Promise<StreamMessage[]> {
    return Promise.reject(new HistoryError("history is not supported without a broker"));
  }
  commitSession(): Promise<void> {
    return Promise.resolve();
  }
  restoreSession(): Promise<string | null> {
    return Promise.resolve(null);
  }
  touchSession(): Promise<void> {
    return Promise.resolve();
  }
  presenceAdd(): Promise<PresenceEvent | null> {
    return Promise.reject(new Error("presence is not supported without a broker"));
  }
  presenceRemove(): Promise<PresenceEvent | null> {
    return Promise.resolve(null);
  }
  presenceInfo(): Promise<PresenceInfo> {
    return Promise.reject(new Error("presence is not supported without a broker"));
  }
  presenceTouch(): Promise<void> {
    return Promise.resolve();
  }
  presenceExpire(): Promise<ExpiredPresence[]> {
    return Promise.resolve([]);
  }
}
