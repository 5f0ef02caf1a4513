/**
 * gRPC over HTTP/2 message framing (length-prefixed messages) and the header values that go
 * with it: `grpc-timeout` encoding and `grpc-message` percent-decoding.
 */

const PREFIX = 5;
/** Refuse to buffer more than this for one response message. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A response body that is not a valid sequence of gRPC messages. */
export class GrpcFramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrpcFramingError";
  }
}

/** Prefixes `message` with the uncompressed flag and its big-endian length. */
export function encodeGrpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(PREFIX + message.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, 0);
  view.setUint32(1, message.length);
  frame.set(message, PREFIX);
  return frame;
}

const EMPTY = new Uint8Array(0);

/** Accumulates DATA chunks and splits them into messages. */
export class GrpcFrameReader {
  readonly messages: Uint8Array[] = [];
  #buf = EMPTY;
  readonly #max: number;

  /** `max`: the largest message accepted (bytes). */
  constructor(max = MAX_MESSAGE_BYTES) {
    this.#max = max;
  }

  /**
   * Takes the next bytes of the body. Messages are views into `chunk` (or into a copy that
   * joins it to an incomplete message before it): the caller hands over a chunk it no longer
   * writes to.
   */
  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.#buf.length) {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    let at = 0;
    while (buf.length - at >= PREFIX) {
      const flag = buf[at];
      const length = (buf[at + 1] * 2 ** 24) + (buf[at + 2] << 16 | buf[at + 3] << 8 | buf[at + 4]);
      if (flag !== 0) throw new GrpcFramingError(`unsupported compressed message (flag ${flag})`);
      if (length > this.#max) {
        throw new GrpcFramingError(`message of ${length} bytes exceeds ${this.#max}`);
      }
      if (buf.length - at < PREFIX + length) break;
      this.messages.push(buf.subarray(at + PREFIX, at + PREFIX + length));
      at += PREFIX + length;
    }
    this.#buf = at === buf.length ? EMPTY : buf.slice(at);
  }

  /** Bytes of an incomplete trailing message. */
  get leftover(): number {
    return this.#buf.length;
  }
}

/** `grpc-timeout` value for a deadline `ms` from now (at most 8 digits per the spec). */
export function formatGrpcTimeout(ms: number): string {
  const value = Math.max(1, Math.ceil(ms));
  if (value < 1e8) return `${value}m`;
  return `${Math.min(99_999_999, Math.ceil(value / 1000))}S`;
}

/** Decodes a percent-encoded `grpc-message`; returns the raw text when malformed. */
export function decodeGrpcMessage(value: string | undefined): string {
  if (!value) return "";
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
