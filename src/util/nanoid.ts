const ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/** Random bytes fetched in bulk (one getRandomValues per ~190 default ids, not one per id). */
const POOL = new Uint8Array(4096);
let used = POOL.length;

/** A random URL-safe id (21 chars by default), like the reference's session ids. */
export function nanoid(size = 21): string {
  if (size > POOL.length) {
    const bytes = crypto.getRandomValues(new Uint8Array(size));
    let id = "";
    for (let i = 0; i < size; i++) id += ALPHABET[bytes[i] & 63];
    return id;
  }
  if (used + size > POOL.length) {
    crypto.getRandomValues(POOL);
    used = 0;
  }
  let id = "";
  for (let i = used; i < used + size; i++) id += ALPHABET[POOL[i] & 63];
  used += size;
  return id;
}
