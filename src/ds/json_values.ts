/** JSON mode: an append is one value, or an array whose elements are stored one by one. */

export class InvalidJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidJsonError";
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The values of a JSON append, each re-serialized compactly. An empty array is refused unless
 * `allowEmpty` (stream creation).
 */
export function jsonValues(body: Uint8Array, allowEmpty: boolean): Uint8Array[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(body));
  } catch {
    throw new InvalidJsonError("invalid JSON");
  }
  const values = Array.isArray(parsed) ? parsed : [parsed];
  if (values.length === 0 && !allowEmpty) {
    throw new InvalidJsonError("empty arrays are not allowed");
  }
  return values.map((v) => encoder.encode(JSON.stringify(v)));
}

/** A JSON array of stored values (each already valid JSON text). */
export function jsonArray(values: Uint8Array[]): Uint8Array {
  return encoder.encode(`[${values.map((v) => decoder.decode(v)).join(",")}]`);
}
