/**
 * Long texts in Deno KV. A value is limited to 64 KiB, so a text longer than CHUNK_CHARS is
 * split into chunk values under `[...chunkKey, 0..n-1]`, written in the same atomic operation
 * as the value that references them. An atomic operation is itself limited (~800 KB), which
 * bounds one text to roughly 25 chunks.
 */

import type { RetryingKv } from "./kv_retry.ts";

/** Characters per chunk: at most ~60 KB even when V8 stores the string as two-byte. */
export const CHUNK_CHARS = 30_000;

/** How a text is kept inside a KV value: inline, or as a number of chunks. */
export type PackedText = { text: string } | { chunks: number };

/** Adds the chunk writes (if any) to `op` and returns what the referencing value must hold. */
export function packText(
  op: Deno.AtomicOperation,
  chunkKey: Deno.KvKey,
  text: string,
  options?: { expireIn?: number },
): PackedText {
  if (text.length <= CHUNK_CHARS) return { text };
  let chunks = 0;
  for (let i = 0; i < text.length; i += CHUNK_CHARS) {
    op.set([...chunkKey, chunks++], text.slice(i, i + CHUNK_CHARS), options);
  }
  return { chunks };
}

/** The full text, or null when a chunk is missing (expired or overwritten meanwhile). */
export async function unpackText(
  kv: RetryingKv,
  chunkKey: Deno.KvKey,
  packed: PackedText,
): Promise<string | null> {
  if ("text" in packed) return packed.text;
  const parts: string[] = [];
  for (const entry of await kv.list<string>({ prefix: chunkKey })) {
    const index = entry.key[entry.key.length - 1];
    if (entry.key.length !== chunkKey.length + 1 || typeof index !== "number") continue;
    if (index >= packed.chunks) break;
    if (index !== parts.length) return null;
    parts.push(entry.value);
  }
  return parts.length === packed.chunks ? parts.join("") : null;
}

/** Adds the deletion of `packed`'s chunks (if any) to `op`. */
export function deleteChunks(
  op: Deno.AtomicOperation,
  chunkKey: Deno.KvKey,
  packed: PackedText,
): void {
  if ("text" in packed) return;
  for (let i = 0; i < packed.chunks; i++) op.delete([...chunkKey, i]);
}
