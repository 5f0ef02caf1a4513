/**
 * Origin check (docs/protocol.md#origin-check): an empty list allows everything; otherwise the
 * Origin's host (with port) must equal an entry or end with the text after a leading `*`.
 */
export function originAllowed(origin: string | null, allowed: string[]): boolean {
  if (allowed.length === 0) return true;
  if (!origin) return false;
  let host: string;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    return false;
  }
  return allowed.some((entry) => {
    const e = entry.toLowerCase().replace(/^https?:\/\//, "");
    return e.startsWith("*") ? host.endsWith(e.slice(1)) : host === e;
  });
}
