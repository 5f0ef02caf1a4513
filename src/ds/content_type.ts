/** Content types of Durable Streams: matching, JSON mode, SSE encoding. */

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** The media type alone, lower-cased (`Application/JSON; charset=utf-8` -> `application/json`). */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0].trim().toLowerCase();
}

export function isJson(contentType: string): boolean {
  return mediaType(contentType) === "application/json";
}

/** Text-compatible types go over SSE as they are; everything else as base64. */
export function isTextual(contentType: string): boolean {
  const t = mediaType(contentType);
  return t.startsWith("text/") || t === "application/json";
}

/** A usable `type/subtype`, or null. */
export function validContentType(value: string | null): string | null {
  if (value === null) return null;
  const v = value.trim();
  return /^[\w.+-]+\/[\w.+-]+/.test(v) ? v : null;
}
