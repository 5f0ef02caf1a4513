/**
 * The stream of `<base>/presence/<segment>/users`: the raw (still percent-encoded) segment is
 * decoded, so names with `/` or other reserved characters work (`chat%2F1` -> `chat/1`).
 * Returns undefined when the path is not a presence path, null when the segment is not valid
 * percent-encoding.
 */
export function parsePresencePath(base: string, path: string): string | null | undefined {
  const prefix = `${base}/presence/`;
  const suffix = "/users";
  if (!path.startsWith(prefix) || !path.endsWith(suffix)) return undefined;
  const segment = path.slice(prefix.length, path.length - suffix.length);
  if (segment === "" || segment.includes("/")) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
