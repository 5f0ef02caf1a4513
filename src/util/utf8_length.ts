let lastText = "";
let lastBytes = 0;

/**
 * UTF-8 length of `s` as `WebSocket.send` counts it (lone surrogates become U+FFFD, 3 bytes).
 * A broadcast hands one string to every subscriber: the last answer is kept.
 */
export function utf8Length(s: string): number {
  if (s === lastText) return lastBytes;
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 2 units, 4 bytes
        i++;
      } else {
        n += 2;
      }
    } else {
      n += 2;
    }
  }
  lastText = s;
  lastBytes = n;
  return n;
}
