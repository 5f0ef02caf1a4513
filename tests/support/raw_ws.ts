import { upgradeRequest } from "./ws_client.ts";

/**
 * A WebSocket client on a bare TCP socket, for what a WebSocket object cannot do: stop reading
 * (a stalled reader), then read again. Masked text frames out; unmasked frames in.
 */
export class RawWs {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  /** Ping frames received so far. */
  pings = 0;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** `caCerts`: speak TLS (wss://) and trust these CA certificates. */
  static async connect(
    port: number,
    path = "/cable",
    protocol = "actioncable-v1-json",
    opts: { caCerts?: string[] } = {},
  ) {
    const conn = opts.caCerts
      ? await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: opts.caCerts })
      : await Deno.connect({ hostname: "127.0.0.1", port });
    const ws = new RawWs(conn);
    await ws.#write(upgradeRequest(port, path, { "Sec-WebSocket-Protocol": protocol }));
    for (;;) {
      const end = indexOf(ws.#buf, "\r\n\r\n");
      if (end >= 0) {
        const head = new TextDecoder().decode(ws.#buf.subarray(0, end));
        ws.#buf = ws.#buf.slice(end + 4);
        if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade failed: ${head}`);
        return ws;
      }
      if (!(await ws.#fill())) throw new Error("closed during the handshake");
    }
  }

  /** Sends one masked text frame. */
  sendText(text: string): Promise<void> {
    return this.sendFrame(0x1, new TextEncoder().encode(text));
  }

  /**
   * Sends one frame as given: any opcode and payload, masked unless `masked: false` (which a
   * server must refuse), FIN set unless `fin: false`.
   */
  async sendFrame(
    opcode: number,
    payload: Uint8Array,
    opts: { masked?: boolean; fin?: boolean } = {},
  ): Promise<void> {
    const masked = opts.masked ?? true;
    const first = ((opts.fin ?? true) ? 0x80 : 0) | opcode;
    const m = masked ? 0x80 : 0;
    const len = payload.length;
    const head = len < 126
      ? [first, m | len]
      : len < 65536
      ? [first, m | 126, len >> 8, len & 255]
      : [
        first,
        m | 127,
        0,
        0,
        0,
        0,
        (len >>> 24) & 255,
        (len >> 16) & 255,
        (len >> 8) & 255,
        len & 255,
      ];
    const mask = masked ? crypto.getRandomValues(new Uint8Array(4)) : new Uint8Array(0);
    const frame = new Uint8Array(head.length + mask.length + len);
    frame.set(head);
    frame.set(mask, head.length);
    const at = head.length + mask.length;
    if (masked) { for (let i = 0; i < len; i++) frame[at + i] = payload[i] ^ mask[i & 3]; }
    else frame.set(payload, at);
    await this.#write(frame);
  }

  /**
   * The next frame from the server: text as a string, a close frame as `{ close: code }`, and
   * null at the end of the stream.
   */
  async next(): Promise<string | { close: number } | null> {
    for (;;) {
      const f = parseFrame(this.#buf);
      if (f) {
        this.#buf = this.#buf.slice(f.end);
        if (f.opcode === 8) {
          return { close: f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1005 };
        }
        if (f.opcode === 1) return new TextDecoder().decode(f.payload);
        if (f.opcode === 9) this.pings++;
        continue; // ping, pong, binary: not used by these tests
      }
      if (!(await this.#fill())) return null;
    }
  }

  /** Reads text frames until one satisfies `match`; null if the stream ends first. */
  async until(match: (text: string) => boolean): Promise<string | null> {
    for (;;) {
      const f = await this.next();
      if (f === null) return null;
      if (typeof f === "string" && match(f)) return f;
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(256 * 1024);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch {
      return false; // reset by the server
    }
    if (n === null) return false;
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
    return true;
  }
}

function parseFrame(b: Uint8Array): { opcode: number; payload: Uint8Array; end: number } | null {
  if (b.length < 2) return null;
  let len = b[1] & 127, off = 2;
  if (len === 126) {
    if (b.length < 4) return null;
    len = (b[2] << 8) | b[3];
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return null;
    len = 0;
    for (let i = 2; i < 10; i++) len = len * 256 + b[i];
    off = 10;
  }
  if (b.length < off + len) return null;
  return { opcode: b[0] & 15, payload: b.subarray(off, off + len), end: off + len };
}

function indexOf(b: Uint8Array, s: string): number {
  const needle = new TextEncoder().encode(s);
  outer: for (let i = 0; i + needle.length <= b.length; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
