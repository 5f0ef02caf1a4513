/**
 * Wire format of node-to-node messages (docs/protocol.md#pubsub-between-nodes): a registered StreamMessage as
 * `{"stream","data","meta","offset","epoch"}` JSON, and RemoteCommand JSON on the internal
 * channel.
 */
import type { StreamMessage, StreamMessageMeta } from "../broker/broker.ts";
import type { RemoteCommand } from "./pubsub.ts";

export class PubSubDecodeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PubSubDecodeError";
  }
}

/** Default channel / subject for remote commands. */
export const INTERNAL_CHANNEL = "__anycable_internal__";

export function encodeStreamMessage(msg: StreamMessage): string {
  // Explicit key order, absent fields omitted.
  return JSON.stringify({
    stream: msg.stream,
    data: msg.data,
    meta: msg.meta,
    offset: msg.offset,
    epoch: msg.epoch,
  });
}

export function decodeStreamMessage(raw: string): StreamMessage {
  const obj = parseObject(raw);
  if (typeof obj.stream !== "string" || obj.stream === "") {
    throw new PubSubDecodeError("stream message without a stream");
  }
  if (typeof obj.data !== "string") throw new PubSubDecodeError("stream message without data");
  const msg: StreamMessage = { stream: obj.stream, data: obj.data };
  if (isObject(obj.meta)) msg.meta = obj.meta as StreamMessageMeta;
  if (typeof obj.offset === "number") msg.offset = obj.offset;
  if (typeof obj.epoch === "string") msg.epoch = obj.epoch;
  return msg;
}

export function encodeCommand(cmd: RemoteCommand): string {
  return JSON.stringify({ command: cmd.command, payload: cmd.payload });
}

export function decodeCommand(raw: string): RemoteCommand {
  const obj = parseObject(raw);
  if (obj.command !== "disconnect") {
    throw new PubSubDecodeError(`unknown remote command: ${String(obj.command)}`);
  }
  const payload = obj.payload;
  if (!isObject(payload) || typeof payload.identifier !== "string") {
    throw new PubSubDecodeError("disconnect command without an identifier");
  }
  const cmd: RemoteCommand = { command: "disconnect", payload: { identifier: payload.identifier } };
  if (typeof payload.reconnect === "boolean") cmd.payload.reconnect = payload.reconnect;
  return cmd;
}

function parseObject(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new PubSubDecodeError("malformed JSON", { cause: err });
  }
  if (!isObject(value)) throw new PubSubDecodeError("not a JSON object");
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
