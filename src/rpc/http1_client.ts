/**
 * A small HTTP/1.1 client for HTTP RPC: POST a JSON body to one backend over keep-alive
 * connections (`Deno.connect`, or `Deno.connectTls` for https). A connection storm makes two or
 * three RPC calls per connection, and `fetch` builds a Request, a Response, header lists, body
 * streams and a dependent abort signal for each; here a call is one write and usually one read
 * on a pooled connection, and the response head is parsed in place.
 *
 * What it does: Content-Length and chunked responses (trailers skipped), responses ending with
 * the connection, `1xx` interim responses skipped, `Connection: close`, a response size limit
 * checked while reading, aborts (the connection is closed). Idle connections are reused for at
 * most IDLE_MS (servers close idle keep-alive connections after a few seconds: Node after 5 s),
 * and a request that finds a reused connection closed before any answer byte is sent again once
 * on a new connection, as HTTP clients do for connections the server dropped while idle. No
 * proxies, redirects or compression: the backend is called directly.
 */

import { concatBytes } from "../util/concat_bytes.ts";
import { utf8Length } from "../util/utf8_length.ts";

/** The answer of one call. */
export interface Http1Response {
  status: number;
  text: string;
}

/** The response was cut off or malformed after the request was sent (not retried). */
export class Http1ResponseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Http1ResponseError";
  }
}

/** The response body passed the caller's limit. */
export class Http1TooLargeError extends Error {
  constructor(readonly size: number, readonly declared: boolean) {
    super(`response of ${size}${declared ? "" : "+"} bytes`);
    this.name = "Http1TooLargeError";
  }
}

export interface Http1ClientOptions {
  /** `http://host:port` or `https://host:port` (a path is ignored). */
  origin: string;
  /** Extra root certificates (PEM) for https. */
  caCerts?: string[];
}

/** Idle connections older than this are closed, not reused. */
const IDLE_MS = 2_000;
/** The longest response head accepted. */
const MAX_HEAD = 64 * 1024;
/** Idle connections kept at most (calls in flight bound the rest). */
const MAX_IDLE = 64;

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();
const CRLFCRLF = [13, 10, 13, 10];

export class Http1Client {
  readonly #hostname: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #tls: boolean;
  readonly #caCerts?: string[];
  readonly #idle: Http1Connection[] = [];
  #closed = false;

  constructor(opts: Http1ClientOptions) {
    const url = new URL(opts.origin);
    this.#tls = url.protocol === "https:";
    this.#hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.#port = url.port ? Number(url.port) : this.#tls ? 443 : 80;
    this.#hostHeader = url.host;
    this.#caCerts = opts.caCerts;
  }

  /** Idle pooled connections (for tests). */
  get idleConnections(): number {
    return this.#idle.length;
  }

  /**
   * POSTs `body` to `path`. `headers` are written as given (lower-case names, no CR/LF). Rejects
   * with `signal.reason` when the signal aborts, an Http1TooLargeError past `maxBody` bytes,
   * an Http1ResponseError when the answer breaks off, and the runtime's error when the backend
   * cannot be reached or drops the connection before answering.
   */
  async post(
    path: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal | undefined,
    maxBody = Infinity,
  ): Promise<Http1Response> {
    if (signal?.aborted) throw signal.reason;
    let head = `POST ${path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    const payload = encoder.encode(`${head}content-length: ${utf8Length(body)}\r\n\r\n${body}`);
    for (let attempt = 0;; attempt++) {
      const reused = this.#takeIdle();
      const conn = reused ?? await this.#dial(signal);
      try {
        const res = await conn.exchange(payload, signal, maxBody);
        if (conn.reusable && !this.#closed && this.#idle.length < MAX_IDLE) {
          conn.idleSince = performance.now();
          this.#idle.push(conn);
        } else {
          conn.close();
        }
        return res;
      } catch (err) {
        conn.close();
        if (signal?.aborted) throw signal.reason;
        // A kept-alive connection the server closed while it was idle: nothing was answered,
        // and the server had stopped reading; once more on a new connection.
        if (reused && attempt === 0 && err instanceof ConnectionDropped && !err.answered) continue;
        throw err instanceof ConnectionDropped ? err.cause ?? err : err;
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.close();
  }

  #takeIdle(): Http1Connection | undefined {
    const now = performance.now();
    for (;;) {
      const c = this.#idle.pop();
      if (!c) return undefined;
      if (now - c.idleSince < IDLE_MS && !c.dead) return c;
      c.close();
    }
  }

  async #dial(signal: AbortSignal | undefined): Promise<Http1Connection> {
    const opts = { hostname: this.#hostname, port: this.#port };
    const connecting = this.#tls
      ? Deno.connectTls({ ...opts, caCerts: this.#caCerts })
      : Deno.connect(opts);
    if (!signal) return new Http1Connection(await connecting);
    // An abort while dialing: the connection, if it comes, is closed at once.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return new Http1Connection(await Promise.race([connecting, aborted]));
    } catch (err) {
      connecting.then((c) => c.close(), () => {});
      throw err;
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
  }
}

/** The connection ended (or failed) while a request was on it. */
class ConnectionDropped extends Error {
  constructor(readonly answered: boolean, cause?: unknown) {
    super("the backend closed the connection before answering", { cause });
  }
}

/** One keep-alive connection: one request at a time. */
class Http1Connection {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(8192);
  /** Unparsed bytes are #buf[#start, #end). */
  #start = 0;
  #end = 0;
  #onAbort?: () => void;
  idleSince = 0;
  reusable = false;
  dead = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    // A request is one write; nothing to gain from Nagle's algorithm.
    (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
  }

  close(): void {
    if (this.dead) return;
    this.dead = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** This listener object closes the connection when the call's signal aborts. */
  handleEvent(): void {
    this.close();
  }

  async exchange(
    payload: Uint8Array,
    signal: AbortSignal | undefined,
    maxBody: number,
  ): Promise<Http1Response> {
    this.reusable = false;
    signal?.addEventListener("abort", this);
    let answered = false;
    try {
      try {
        await this.#writeAll(payload);
      } catch (err) {
        throw new ConnectionDropped(false, err);
      }
      for (;;) {
        const head = await this.#readHead(answered);
        answered = true;
        if (head.status >= 100 && head.status < 200 && head.status !== 101) continue;
        return await this.#readBody(head, maxBody);
      }
    } finally {
      signal?.removeEventListener("abort", this);
    }
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.#conn.write(data.subarray(off));
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      const live = this.#end - this.#start;
      const next = live * 2 > this.#buf.length ? new Uint8Array(this.#buf.length * 2) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  async #readHead(answered: boolean): Promise<ResponseHead> {
    for (;;) {
      const at = indexOf(this.#buf, CRLFCRLF, this.#start, this.#end);
      if (at >= 0) {
        const text = latin1.decode(this.#buf.subarray(this.#start, at));
        this.#start = at + 4;
        return parseHead(text);
      }
      if (this.#end - this.#start > MAX_HEAD) {
        throw new Http1ResponseError(`response head longer than ${MAX_HEAD} bytes`);
      }
      let more: boolean;
      try {
        more = await this.#fill();
      } catch (err) {
        throw new ConnectionDropped(answered || this.#end > this.#start, err);
      }
      if (!more) {
        if (!answered && this.#end === this.#start) throw new ConnectionDropped(false);
        throw new Http1ResponseError("the connection ended inside the response head");
      }
    }
  }

  async #readBody(head: ResponseHead, maxBody: number): Promise<Http1Response> {
    let body: Uint8Array;
    if (head.chunked) {
      body = await this.#readChunked(maxBody);
    } else if (head.length >= 0) {
      if (head.length > maxBody) throw new Http1TooLargeError(head.length, true);
      body = await this.#readExactly(head.length);
    } else {
      body = await this.#readToEnd(maxBody);
      head.keepAlive = false;
    }
    this.reusable = head.keepAlive && this.#start === this.#end;
    return { status: head.status, text: utf8.decode(body) };
  }

  async #more(): Promise<void> {
    if (!(await this.#fillBody())) {
      throw new Http1ResponseError("the connection ended inside the response body");
    }
  }

  /** #fill while reading a body: false at the end of the stream, a read error says where. */
  async #fillBody(): Promise<boolean> {
    try {
      return await this.#fill();
    } catch (err) {
      throw new Http1ResponseError("the connection failed inside the response body", {
        cause: err,
      });
    }
  }

  async #readExactly(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) await this.#more();
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  async #readLine(): Promise<string> {
    for (;;) {
      const at = indexOf(this.#buf, CRLF, this.#start, this.#end);
      if (at >= 0) {
        const line = latin1.decode(this.#buf.subarray(this.#start, at));
        this.#start = at + 2;
        return line;
      }
      if (this.#end - this.#start > MAX_HEAD) {
        throw new Http1ResponseError("chunk line too long");
      }
      await this.#more();
    }
  }

  async #readChunked(maxBody: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const line = await this.#readLine();
      const len = parseInt(line.split(";", 1)[0].trim(), 16);
      if (!Number.isFinite(len) || len < 0) {
        throw new Http1ResponseError(`malformed chunk size ${JSON.stringify(line.slice(0, 40))}`);
      }
      if (len === 0) {
        // trailers, up to the empty line
        while ((await this.#readLine()) !== "");
        break;
      }
      size += len;
      if (size > maxBody) throw new Http1TooLargeError(size, false);
      parts.push(await this.#readExactly(len));
      if ((await this.#readLine()) !== "") throw new Http1ResponseError("malformed chunk end");
    }
    return concatBytes(parts, size);
  }

  async #readToEnd(maxBody: number): Promise<Uint8Array> {
    for (;;) {
      if (this.#end - this.#start > maxBody) {
        throw new Http1TooLargeError(this.#end - this.#start, false);
      }
      if (!(await this.#fillBody())) break;
    }
    const out = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end;
    return out;
  }
}

interface ResponseHead {
  status: number;
  /** Content-Length, or -1. */
  length: number;
  chunked: boolean;
  keepAlive: boolean;
}

const CRLF = [13, 10];

function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
  if (!m) {
    throw new Http1ResponseError(
      `not an HTTP/1 response: ${JSON.stringify(lines[0].slice(0, 60))}`,
    );
  }
  const head: ResponseHead = {
    status: Number(m[2]),
    length: -1,
    chunked: false,
    keepAlive: m[1] === "1",
  };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value)) throw new Http1ResponseError(`bad content-length ${value}`);
      head.length = Number(value);
    } else if (name === "transfer-encoding") {
      head.chunked = value.toLowerCase().split(",").map((s) => s.trim()).includes("chunked");
    } else if (name === "connection") {
      const tokens = value.toLowerCase().split(",").map((s) => s.trim());
      if (tokens.includes("close")) head.keepAlive = false;
      else if (tokens.includes("keep-alive")) head.keepAlive = true;
    }
  }
  // No body, whatever the headers say.
  if (head.status === 204 || head.status === 304) {
    head.length = 0;
    head.chunked = false;
  }
  return head;
}

function indexOf(buf: Uint8Array, needle: number[], from: number, to: number): number {
  const first = needle[0];
  for (
    let i = buf.indexOf(first, from);
    i >= 0 && i + needle.length <= to;
    i = buf.indexOf(first, i + 1)
  ) {
    let ok = true;
    for (let j = 1; j < needle.length; j++) {
      if (buf[i + j] !== needle[j]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
  }
  return -1;
}
