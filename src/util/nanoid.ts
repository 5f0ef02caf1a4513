const ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/**
 * Random bytes fetched in bulk (one getRandomValues per ~190 default ids, not one per id) and
 * mapped to the alphabet's character codes at once, so an id is one string built in one call
 * (appending 21 characters one by one made 20 intermediate strings per id).
 */
const POOL = new Uint8Array(4096);
let used = POOL.length;
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

function refill(): void {
  crypto.getRandomValues(POOL);
  for (let i = 0; i < POOL.length; i++) POOL[i] = CODES[POOL[i] & 63];
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
  const id = String.fromCharCode.apply(
    null,
    POOL.subarray(used, used + size) as unknown as number[],
  );
  used += size;
  return id;
}
