/**
 * Reads a request body as UTF-8 text, refusing more than `maxBytes` (the rest is not read).
 * Returns null when the body is too large. An absent body reads as "".
 */
export async function readBodyLimited(req: Request, maxBytes: number): Promise<string | null> {
  const length = req.headers.get("content-length");
  const declared = Number(length ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await req.body?.cancel().catch(() => {});
    return null;
  }
  // A declared length is all HTTP framing delivers: the runtime then takes the whole body at
  // once, without a ReadableStream (the broadcast endpoint's hot path).
  if (length !== null && /^\d+$/.test(length)) return await req.text();
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** The non-empty lines of a JSONL body (each line trimmed). */
export function jsonLines(body: string): string[] {
  return body.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
}
