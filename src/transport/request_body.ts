import { concatBytes } from "../util/concat_bytes.ts";

/**
 * What a request's Content-Length says before any body byte is read: "too large" past
 * `maxBytes` (the caller cancels the body, see discardBody), "exact" for a plain decimal length
 * (HTTP framing then delivers exactly that: the runtime can take the body whole, without a
 * ReadableStream), else "unknown" (chunked: read up to the limit and no further).
 */
export function declaredSize(req: Request, maxBytes: number): "too large" | "exact" | "unknown" {
  const length = req.headers.get("content-length");
  const declared = Number(length ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) return "too large";
  return length !== null && DIGITS.test(length) ? "exact" : "unknown";
}

/** Cancels a body that will not be read. */
export async function discardBody(req: Request): Promise<void> {
  await req.body?.cancel().catch(() => {});
}

const DIGITS = /^\d+$/;

/**
 * Reads a request body as UTF-8 text, refusing more than `maxBytes` (the rest is not read).
 * Returns null when the body is too large. An absent body reads as "".
 */
export async function readBodyLimited(req: Request, maxBytes: number): Promise<string | null> {
  const size = declaredSize(req, maxBytes);
  if (size === "too large") {
    await discardBody(req);
    return null;
  }
  // the broadcast endpoint's hot path
  if (size === "exact") return await req.text();
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks, total));
}

/** The non-empty lines of a JSONL body (each line trimmed). */
export function jsonLines(body: string): string[] {
  return body.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
}
