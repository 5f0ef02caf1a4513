import type { Connection } from "./connection.ts";

/**
 * A Connection over a Deno WebSocket (methods on the prototype: nothing per socket). Shared by
 * the Action Cable and Pusher endpoints.
 */
export class WsConnection implements Connection {
  readonly #socket: WebSocket;

  constructor(socket: WebSocket) {
    this.#socket = socket;
  }

  /**
   * Sessions exist only once the socket is open, and a closing or closed WebSocket discards
   * what it is sent: no readyState read per frame. Only a CONNECTING socket throws.
   */
  send(frame: string): void {
    try {
      this.#socket.send(frame);
    } catch {
      // not open yet: nothing to send to
    }
  }

  close(code: number, reason: string): void {
    const state = this.#socket.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) {
      // A close reason may carry at most 123 bytes; the runtime throws on a longer one.
      this.#socket.close(code, reason.length > 100 ? reason.slice(0, 100) : reason);
    }
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }
}
