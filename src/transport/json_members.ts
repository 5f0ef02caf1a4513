/**
 * Raw top-level members of a JSON object text, without re-serializing their values: a
 * transport that forwards one member (e.g. a data message's `message`) sends exactly the bytes
 * the publisher produced (big integers, number formatting and key order survive).
 */

const WS = new Set([" ", "\t", "\n", "\r"]);

/**
 * Maps each top-level key of the JSON object `json` to the raw JSON text of its value (the
 * last one wins for duplicate keys). Returns null when `json` is not an object text.
 * The input is expected to be valid JSON (server messages always are); malformed text may
 * yield null or partial members, never an exception.
 */
export function jsonMembers(json: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = skipWs(json, 0);
  if (json[i] !== "{") return null;
  i = skipWs(json, i + 1);
  if (json[i] === "}") return out;
  for (;;) {
    if (json[i] !== '"') return null;
    const keyEnd = skipString(json, i);
    let key: string;
    try {
      key = JSON.parse(json.slice(i, keyEnd));
    } catch {
      return null;
    }
    i = skipWs(json, keyEnd);
    if (json[i] !== ":") return null;
    i = skipWs(json, i + 1);
    const start = i;
    i = skipValue(json, i);
    if (i === start) return null;
    out.set(key, json.slice(start, i));
    i = skipWs(json, i);
    if (json[i] === "}") return out;
    if (json[i] !== ",") return null;
    i = skipWs(json, i + 1);
  }
}

/** Parses one raw member value; undefined when absent or not JSON. */
export function parseMember(members: Map<string, string>, key: string): unknown {
  const raw = members.get(key);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function skipWs(s: string, i: number): number {
  while (i < s.length && WS.has(s[i])) i++;
  return i;
}

/** `s[i]` is the opening quote; returns the index after the closing one. */
function skipString(s: string, i: number): number {
  i++;
  while (i < s.length) {
    const c = s[i];
    if (c === "\\") i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return s.length;
}

function skipValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return skipString(s, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    while (i < s.length) {
      const ch = s[i];
      if (ch === '"') {
        i = skipString(s, i);
        continue;
      }
      if (ch === "{" || ch === "[") depth++;
      else if (ch === "}" || ch === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return s.length;
  }
  // number, true, false, null
  while (i < s.length && !WS.has(s[i]) && s[i] !== "," && s[i] !== "}" && s[i] !== "]") i++;
  return i;
}
