/**
 * gRPC-web bodies: the request is one length-prefixed message; the response is zero or more
 * messages followed by a trailer frame (flag 0x80) whose payload is `name: value` lines. The
 * `grpc-web-text` variant carries the same bytes base64-encoded, possibly as several padded
 * base64 chunks one after the other.
 */
import { MAX_MESSAGE_BYTES } from "./grpc_framing.ts";
import { concatBytes } from "../util/concat_bytes.ts";

const PREFIX = 5;
const TRAILER_FLAG = 0x80;
const COMPRESSED_FLAG = 0x01;

/** A response body that is not a valid gRPC-web body. */
export class GrpcWebFramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrpcWebFramingError";
  }
}

export interface GrpcWebBody {
  messages: Uint8Array[];
  /** Lower-cased trailer names; undefined when the body had no trailer frame. */
  trailers?: Map<string, string>;
}

/** Splits a complete (decoded) response body into messages and the trailer frame. */
export function parseGrpcWebBody(bytes: Uint8Array): GrpcWebBody {
  const out: GrpcWebBody = { messages: [] };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    if (out.trailers) throw new GrpcWebFramingError("data after the trailer frame");
    if (bytes.length - at < PREFIX) {
      throw new GrpcWebFramingError(`truncated frame header (${bytes.length - at} bytes)`);
    }
    const flag = view.getUint8(at);
    const length = view.getUint32(at + 1);
    if (length > MAX_MESSAGE_BYTES) {
      throw new GrpcWebFramingError(`frame of ${length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    }
    const end = at + PREFIX + length;
    if (end > bytes.length) {
      throw new GrpcWebFramingError(
        `truncated frame: ${length} bytes announced, ${bytes.length - at - PREFIX} present`,
      );
    }
    if (flag & COMPRESSED_FLAG) {
      throw new GrpcWebFramingError(`unsupported compressed frame (flag ${flag})`);
    }
    const payload = bytes.subarray(at + PREFIX, end);
    if (flag & TRAILER_FLAG) out.trailers = parseTrailerBlock(payload);
    else if (flag === 0) out.messages.push(payload.slice());
    else throw new GrpcWebFramingError(`unknown frame flag ${flag}`);
    at = end;
  }
  return out;
}

/** `grpc-status: 0\r\ngrpc-message: ...\r\n` → a map with lower-cased names. */
export function parseTrailerBlock(payload: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = new TextDecoder().decode(payload);
  for (const line of text.split(/\r?\n/)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new GrpcWebFramingError(`malformed trailer line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return out;
}

/** Base64 of `bytes` (the request body in `grpc-web-text` mode). */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Decodes a `grpc-web-text` body: whitespace is ignored and padded chunks may follow each
 * other (servers may encode each frame on its own).
 */
export function decodeBase64Chunks(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/=]*$/.test(clean)) {
    throw new GrpcWebFramingError("grpc-web-text body is not base64");
  }
  const chunks = clean.match(/[A-Za-z0-9+/]+={0,2}/g) ?? [];
  if (chunks.join("") !== clean) {
    throw new GrpcWebFramingError("grpc-web-text body has stray base64 padding");
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const chunk of chunks) {
    let binary: string;
    try {
      binary = atob(chunk);
    } catch {
      throw new GrpcWebFramingError("grpc-web-text body has a malformed base64 chunk");
    }
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    parts.push(bytes);
    total += bytes.length;
  }
  return concatBytes(parts, total);
}
