/**
 * The path of an absolute request URL (`http://host:port/path?query`), as `new URL(url).pathname`
 * gives it, without building a URL object for the plain paths every route has. A path with
 * anything URL parsing could rewrite (percent escapes, dot segments, backslashes, characters it
 * would escape) goes through `new URL` as before.
 */
export function urlPath(url: string): string {
  const scheme = url.indexOf("://");
  if (scheme < 0) return new URL(url).pathname;
  const start = url.indexOf("/", scheme + 3);
  if (start < 0) return new URL(url).pathname;
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x3f || c === 0x23) { // ? or #
      end = i;
      break;
    }
  }
  const path = url.slice(start, end);
  return PLAIN.test(path) ? path : new URL(url).pathname;
}

/** Slash-separated segments of RFC 3986 unreserved and sub-delim characters, `:` and `@`;
 * dots only between other characters (no `.` or `..` segment). */
const PLAIN =
  /^(?:\/(?:[A-Za-z0-9\-_~:@!$&'()*+,;=]+(?:\.[A-Za-z0-9\-_~:@!$&'()*+,;=]+)*)?)+$|^\/$/;
