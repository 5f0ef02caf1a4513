import type { StreamMessage } from "../broker/broker.ts";
import type { Reply } from "./messages.ts";

/** Serializes a server reply. Key order is irrelevant to clients. */
export function encodeReply(reply: Reply): string {
  return JSON.stringify(reply);
}

/**
 * The JSON text of a publication's `message`: the `data` string when it is JSON (not null),
 * else `data` itself as a JSON string (docs/protocol.md#broadcast-to-client-message). Computed once per publication.
 */
export function messageJson(data: string): string {
  try {
    const parsed = JSON.parse(data);
    if (parsed !== null) return data;
  } catch {
    // not JSON: delivered as a raw string
  }
  return JSON.stringify(data);
}

/**
 * Encodes one publication for one identifier. `ext` adds the stream position (only when the
 * broker registered the message); plain Action Cable clients get exactly the classic message.
 */
export function encodeStreamMessage(
  identifier: string,
  msg: StreamMessage,
  message: string,
  ext: boolean,
): string {
  let out = `{"identifier":${JSON.stringify(identifier)},"message":${message}`;
  if (msg.meta?.broadcast_type) out += `,"type":${JSON.stringify(msg.meta.broadcast_type)}`;
  if (ext && msg.epoch && msg.offset !== undefined) {
    out += `,"stream_id":${JSON.stringify(msg.stream)},"epoch":${
      JSON.stringify(msg.epoch)
    },"offset":${msg.offset}`;
  }
  return out + "}";
}
