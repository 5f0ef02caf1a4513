const ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/**
 * Random bytes fetched in bulk (one getRandomValues per ~190 default ids, not one per id) and
 * turned into one string of alphabet characters at once; an id is a slice of it (appending 21
 * characters one by one made 20 intermediate strings per id).
 */
const POOL = new Uint8Array(4096);
let chars = "";
let used = POOL.length;
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
const LATIN1 = new TextDecoder("latin1");

function refill(): void {
  crypto.getRandomValues(POOL);
  for (let i = 0; i < POOL.length; i++) POOL[i] = CODES[POOL[i] & 63];
  chars = LATIN1.decode(POOL);
  used = 0;
}

/** A random URL-safe id (21 chars by default), like the reference's session ids. */
export function nanoid(size = 21): string {
  if (size > POOL.length) {
    const bytes = crypto.getRandomValues(new Uint8Array(size));
    let id = "";
    for (let i = 0; i < size; i++) id += ALPHABET[bytes[i] & 63];
    return id;
  }
  if (used + size > POOL.length) refill();
  const id = chars.slice(used, used + size);
  used += size;
  return id;
}
