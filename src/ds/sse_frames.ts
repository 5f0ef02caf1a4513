/**
 * Durable Streams SSE framing: `event: data` / `event: control`, every payload line behind its
 * own `data:` (no space, so leading spaces survive), so CR, LF or CRLF inside a payload can
 * never end an event early.
 */

const encoder = new TextEncoder();

export function sseEvent(event: "data" | "control", payload: string): Uint8Array {
  const lines = payload.split(/\r\n|\r|\n/).map((l) => `data:${l}`).join("\n");
  return encoder.encode(`event: ${event}\n${lines}\n\n`);
}

export interface ControlFields {
  streamNextOffset: string;
  streamCursor?: string;
  upToDate?: boolean;
  streamClosed?: boolean;
}

export function controlEvent(fields: ControlFields): Uint8Array {
  return sseEvent("control", JSON.stringify(fields));
}
