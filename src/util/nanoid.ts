/**
 * Random bytes fetched in bulk (one getRandomValues per ~195 default ids, not one per id) and
 * turned into one string of URL-safe characters at once by the runtime's base64url encoder
 * (each character is 6 random bits: the same 64 symbols and entropy as nanoid's alphabet); an
 * id is a slice of it. A fresh process used to run a JavaScript loop over every byte of the
 * pool, slow until optimized, during its first connections.
 */
const POOL = new Uint8Array(3072);
/** Characters per pool: 4 per 3 bytes. */
const POOL_CHARS = (POOL.length / 3) * 4;
let chars = "";
let used = POOL_CHARS;

function refill(): void {
  crypto.getRandomValues(POOL);
  chars = toBase64Url(POOL);
  used = 0;
}

function toBase64Url(bytes: Uint8Array): string {
  // Uint8Array.prototype.toBase64 (V8 has it; TypeScript's lib does not know it yet)
  return (bytes as unknown as {
    toBase64(opts: { alphabet: "base64url"; omitPadding: boolean }): string;
  }).toBase64({ alphabet: "base64url", omitPadding: true });
}

/** A random URL-safe id (21 chars by default), like the reference's session ids. */
export function nanoid(size = 21): string {
  if (size > POOL_CHARS) {
    const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(size / 4) * 3));
    return toBase64Url(bytes).slice(0, size);
  }
  if (used + size > POOL_CHARS) refill();
  const id = chars.slice(used, used + size);
  used += size;
  return id;
}

// Filled once at startup, so that the first connection does not load the crypto code.
refill();
