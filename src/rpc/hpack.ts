/**
 * HPACK (RFC 7541) header compression for the HTTP/2 client: a decoder with the static table,
 * the dynamic table (size updates and eviction) and Huffman-coded strings, and an encoder that
 * writes every field as a literal without indexing (no Huffman), which every peer accepts and
 * which keeps the encoder stateless. Malformed input throws `HpackError` (a connection error
 * for the caller); sizes are bounded so a hostile peer cannot make us allocate without limit.
 */

/** A header block that cannot be decoded (COMPRESSION_ERROR for the connection). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

export type HeaderField = [name: string, value: string];

/** RFC 7541 Appendix A. */
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * Bit lengths of the Huffman codes for symbols 0..255 and EOS (256), RFC 7541 Appendix B. The
 * code is canonical (shorter codes first, equal lengths in symbol order), so the codes
 * themselves follow from the lengths.
 */
// deno-fmt-ignore
const HUFFMAN_LENGTHS = [
  13,23,28,28,28,28,28,28,28,24,30,28,28,30,28,28,28,28,28,28,28,28,30,28,28,28,28,28,28,28,28,28,
  6,10,10,12,13,6,8,11,10,10,8,11,8,6,6,6,5,5,5,6,6,6,6,6,6,6,7,8,15,6,12,10,13,6,7,7,7,7,7,7,7,7,
  7,7,7,7,7,7,7,7,7,7,7,7,7,7,8,7,8,13,19,13,14,6,15,5,6,5,6,5,6,6,6,5,7,7,6,6,6,5,6,7,6,5,5,6,7,7,
  7,7,7,15,11,14,13,28,20,22,20,20,22,22,22,23,22,23,23,23,23,23,24,23,24,24,22,23,24,23,23,23,23,
  21,22,23,22,23,23,24,22,21,20,22,22,23,23,21,23,22,22,24,21,22,23,23,21,21,22,21,23,22,23,23,20,
  22,22,22,23,22,22,23,26,26,20,19,22,23,22,25,26,26,26,27,27,26,24,25,19,21,26,27,27,26,27,24,21,
  21,26,26,28,27,27,27,20,24,20,21,22,21,21,23,22,22,25,25,24,24,26,23,26,27,26,26,27,27,27,27,27,
  28,27,27,27,27,27,26,30,
];

const EOS = 256;

/** A binary decoding tree: node i has children at [2i] (bit 0) and [2i+1] (bit 1). */
interface HuffmanTree {
  /** Child index, or -(symbol + 1) for a leaf, or 0 for none. */
  next: Int32Array;
}

function buildHuffmanTree(): HuffmanTree {
  const symbols = HUFFMAN_LENGTHS.map((_, s) => s).sort((a, b) =>
    HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b
  );
  const next = new Int32Array(2 * 600);
  let nodes = 1; // node 0 is the root
  let code = 0;
  let prevLen = HUFFMAN_LENGTHS[symbols[0]];
  symbols.forEach((sym, i) => {
    const len = HUFFMAN_LENGTHS[sym];
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const slot = 2 * node + b;
      if (bit === 0) {
        next[slot] = -(sym + 1);
      } else {
        if (next[slot] === 0) next[slot] = nodes++;
        node = next[slot];
      }
    }
  });
  return { next };
}

let tree: HuffmanTree | undefined;

/** Decodes a Huffman-coded string (RFC 7541 §5.2), rejecting EOS and bad padding. */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  tree ??= buildHuffmanTree();
  const next = tree.next;
  const out = new Uint8Array(Math.ceil((bytes.length * 8) / 5));
  let n = 0;
  let node = 0;
  let depth = 0; // bits consumed since the last symbol
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const child = next[2 * node + b];
      depth++;
      if (b === 0) allOnes = false;
      if (child < 0) {
        const sym = -child - 1;
        if (sym === EOS) throw new HpackError("Huffman string contains EOS");
        out[n++] = sym;
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (child === 0) {
        throw new HpackError("invalid Huffman code");
      } else {
        node = child;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError("invalid Huffman padding");
  return out.subarray(0, n);
}

const encoder = new TextEncoder();

/** Bytes to a string, one char per byte (header values are octets; gRPC's are ASCII). */
function octets(bytes: Uint8Array): string {
  // apply takes the typed array as an array-like (a spread would run its iterator: ~7× slower
  // for the short values of a gRPC answer); 4096 at a time keeps the argument list short.
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}

/** Default SETTINGS_HEADER_TABLE_SIZE. */
export const DEFAULT_TABLE_SIZE = 4096;

export interface HpackDecoderOptions {
  /** The dynamic table size we allow the peer (our SETTINGS_HEADER_TABLE_SIZE). */
  maxTableSize?: number;
  /** Largest decoded header list (sum of name + value + 32 per field). */
  maxHeaderListSize?: number;
}

/** Decoding state for one connection (the peer's dynamic table). */
export class HpackDecoder {
  readonly #maxTableSize: number;
  readonly #maxListSize: number;
  #tableSize: number;
  #size = 0;
  /** Newest first. */
  #dynamic: HeaderField[] = [];

  constructor(opts: HpackDecoderOptions = {}) {
    this.#maxTableSize = opts.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.#tableSize = this.#maxTableSize;
    this.#maxListSize = opts.maxHeaderListSize ?? 256 * 1024;
  }

  /** The dynamic table, newest first (for tests). */
  get dynamicTable(): readonly HeaderField[] {
    return this.#dynamic;
  }

  /** The dynamic table's current size in HPACK units (for tests). */
  get dynamicSize(): number {
    return this.#size;
  }

  /** Decodes one complete header block. */
  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    let listSize = 0;
    let pos = 0;
    let fieldSeen = false;
    const int = (prefix: number): number => {
      const mask = (1 << prefix) - 1;
      if (pos >= block.length) throw new HpackError("truncated integer");
      let value = block[pos++] & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError("truncated integer");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (value > 0x7fffffff) throw new HpackError("integer overflow");
        if ((b & 0x80) === 0) return value;
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError("truncated string");
      const huffman = (block[pos] & 0x80) !== 0;
      const length = int(7);
      if (pos + length > block.length) throw new HpackError("truncated string");
      if (length > this.#maxListSize) throw new HpackError("header string too long");
      const raw = block.subarray(pos, pos + length);
      pos += length;
      return octets(huffman ? huffmanDecode(raw) : raw);
    };
    const emit = (name: string, value: string) => {
      listSize += name.length + value.length + 32;
      if (listSize > this.#maxListSize) {
        throw new HpackError(`header list larger than ${this.#maxListSize} bytes`);
      }
      fields.push([name, value]);
      fieldSeen = true;
    };
    while (pos < block.length) {
      const first = block[pos];
      if (first & 0x80) {
        // Indexed field.
        emit(...this.#lookup(int(7)));
      } else if (first & 0x40) {
        // Literal with incremental indexing.
        const index = int(6);
        const name = index === 0 ? str() : this.#lookup(index)[0];
        const value = str();
        emit(name, value);
        this.#add(name, value);
      } else if (first & 0x20) {
        // Dynamic table size update: only at the start of a block.
        if (fieldSeen) throw new HpackError("table size update after a header field");
        const size = int(5);
        if (size > this.#maxTableSize) {
          throw new HpackError(`table size ${size} above the allowed ${this.#maxTableSize}`);
        }
        this.#tableSize = size;
        this.#evict();
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = int(4);
        const name = index === 0 ? str() : this.#lookup(index)[0];
        emit(name, str());
      }
    }
    return fields;
  }

  #lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const field = this.#dynamic[index - STATIC_TABLE.length - 1];
    if (!field) throw new HpackError(`index ${index} beyond the tables`);
    return field;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.#tableSize) {
      this.#dynamic = [];
      this.#size = 0;
      return;
    }
    this.#dynamic.unshift([name, value]);
    this.#size += size;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#tableSize) {
      const [name, value] = this.#dynamic.pop()!;
      this.#size -= name.length + value.length + 32;
    }
  }
}

/**
 * Encodes a header list as literals without indexing (RFC 7541 §6.2.2), using a static-table
 * name index where one exists. Names must be lowercase. With `prefix` (a block encoded the same
 * way, such as the fields every request repeats), the result is that block followed by these
 * fields, in one buffer.
 */
export function encodeHeaders(
  fields: readonly HeaderField[],
  prefix?: Uint8Array,
): Uint8Array {
  // Written into one buffer of the largest size the block can take: per field an index and
  // two lengths (at most 5 bytes each below 2^28) and at most 3 bytes per UTF-16 unit.
  let max = prefix?.length ?? 0;
  for (const [name, value] of fields) max += 16 + 3 * (name.length + value.length);
  const out = new Uint8Array(max);
  let at = 0;
  if (prefix) {
    out.set(prefix);
    at = prefix.length;
  }
  const int = (value: number, prefix: number, flags: number) => {
    const mask = (1 << prefix) - 1;
    if (value < mask) {
      out[at++] = flags | value;
      return;
    }
    out[at++] = flags | mask;
    value -= mask;
    while (value >= 0x80) {
      out[at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[at++] = value;
  };
  const str = (text: string) => {
    // ASCII (every header of a gRPC call, as a rule) is copied as is, without a TextEncoder.
    let ascii = true;
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      const bytes = encoder.encode(text);
      int(bytes.length, 7, 0);
      out.set(bytes, at);
      at += bytes.length;
      return;
    }
    int(text.length, 7, 0);
    for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  };
  for (const [name, value] of fields) {
    const index = staticNameIndex(name);
    int(index, 4, 0x00);
    if (index === 0) str(name);
    str(value);
  }
  return out.subarray(0, at);
}

let nameIndex: Map<string, number> | undefined;

function staticNameIndex(name: string): number {
  if (!nameIndex) {
    nameIndex = new Map();
    STATIC_TABLE.forEach(([n], i) => {
      if (!nameIndex!.has(n)) nameIndex!.set(n, i + 1);
    });
  }
  return nameIndex.get(name) ?? 0;
}
