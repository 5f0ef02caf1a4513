/** What a broadcaster hands its accepted publications to. */
export interface BroadcastHandler {
  /**
   * A raw publication body (docs/protocol.md#publication-format). Resolves once the publication is
   * accepted (registered by the broker when `fanout` is false); rejects with
   * InvalidBroadcastError for an unparsable body, or another error when the broker failed.
   */
  handleBroadcast(body: string, opts: { fanout: boolean }): Promise<void>;
  /**
   * The same for a body the intake already parsed as JSON (`value` is what JSON.parse returned):
   * the HTTP intake reads bodies with `Request.json()`, which takes them as text straight from
   * the runtime instead of as bytes to decode. NOT_JSON stands for a body JSON.parse refused.
   */
  handleBroadcastValue(value: unknown, opts: { fanout: boolean }): Promise<void>;
}

/** The value an intake hands to handleBroadcastValue for a body that is not JSON at all. */
export const NOT_JSON: unique symbol = Symbol("not JSON");

export class InvalidBroadcastError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidBroadcastError";
  }
}

/**
 * Accepts publications from the application. `fanout` broadcasters (legacy redis, nats) are
 * received by every node and bypass the broker; the others are received once per cluster
 * and go through the broker.
 */
export interface Broadcaster {
  readonly name: string;
  readonly fanout: boolean;
  start(handler: BroadcastHandler): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}
