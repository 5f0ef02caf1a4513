import type { RequestHeaders } from "./request_headers.ts";

/** The transport seam: a live link to one client (WebSocket, SSE, long polling). */
export interface Connection {
  /** Queues a text frame; never blocks. */
  send(frame: string): void;
  /** Closes the link; idempotent. */
  close(code: number, reason: string): void;
  /** Bytes queued but not yet written, when the transport can tell. */
  readonly bufferedAmount?: number;
}

/** What a transport learned from the opening request (copied before any upgrade). */
export interface ConnectionRequest {
  /** Full URL with an http(s) scheme. */
  url: string;
  headers: RequestHeaders;
  remoteAddr: string;
  /** Negotiated subprotocol ("" when none matched). */
  protocol: string;
  transport: "ws" | "sse" | "poll";
}

export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_INTERNAL = 1011;
