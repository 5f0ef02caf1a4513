/**
 * The bytes of `parts` in one array (`parts[0]` itself when there is only one). `size`, when the
 * caller already counted it, saves a pass.
 */
export function concatBytes(parts: readonly Uint8Array[], size?: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  if (size === undefined) {
    size = 0;
    for (const p of parts) size += p.length;
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
