/**
 * A client-side HTTP/2 connection (RFC 9113) over `Deno.connect` (h2c with prior knowledge) or
 * `Deno.connectTls` (ALPN "h2"), written for unary gRPC calls: each `request()` sends HEADERS
 * (+ CONTINUATION) and a body under flow control, and resolves with the response headers, body
 * and trailers once the peer ends the stream.
 *
 * Everything the peer does is handled in JavaScript and bounded: a malformed frame, a huge
 * frame, an HPACK error, garbage bytes, a missing SETTINGS preface or a closed socket fail the
 * connection (`H2ConnectionError`) and with it every open stream; RST_STREAM fails one stream
 * (`H2StreamError`); GOAWAY lets streams the peer accepted finish and fails the others as
 * refused. Nothing here can take the process down.
 */
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  encodeFrame,
  encodeGoaway,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  ErrorCode,
  errorCodeName,
  Flag,
  FRAME_HEADER,
  frameHeader,
  FrameType,
  MAX_WINDOW,
  PREFACE,
  readFrameHeader,
  Setting,
} from "./h2_frames.ts";
import { concatBytes } from "../util/concat_bytes.ts";
import { encodeHeaders, type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";

/** The connection failed or was closed; every stream on it failed with this. */
export class H2ConnectionError extends Error {
  /** The HTTP/2 error code when the failure was a protocol error (ours or the peer's). */
  readonly code?: number;
  constructor(message: string, opts: { code?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = "H2ConnectionError";
    this.code = opts.code;
  }
}

/** One stream failed: reset by the peer, or refused by a GOAWAY before it was processed. */
export class H2StreamError extends Error {
  readonly code: number;
  /** The peer did not process the request (REFUSED_STREAM, or above a GOAWAY's last id). */
  readonly refused: boolean;
  /** We reset the stream because the peer broke the protocol on it (not the peer's RST). */
  readonly local: boolean;
  constructor(message: string, code: number, refused: boolean, local = false) {
    super(message);
    this.name = "H2StreamError";
    this.code = code;
    this.refused = refused;
    this.local = local;
  }
}

export interface H2Response {
  /** The response header block (informational 1xx blocks are skipped). */
  headers: HeaderField[];
  /** The trailer block, when the peer sent one. */
  trailers: HeaderField[] | undefined;
  body: Uint8Array;
}

export interface H2TlsOptions {
  /** PEM certificates to trust instead of the system roots. */
  caCerts?: string[];
}

export interface H2ConnectionOptions {
  host: string;
  port: number;
  /** TLS with ALPN "h2"; plain h2c with prior knowledge when absent. */
  tls?: H2TlsOptions;
  /** Budget for TCP/TLS connect plus the peer's SETTINGS, ms. */
  connectTimeout: number;
  /** Largest response body per stream, bytes. */
  maxBodyBytes?: number;
  /** Called once when the connection ends, with the reason; `graceful` for our own close
   * and for a drained GOAWAY. */
  onClose?: (reason: H2ConnectionError, graceful: boolean) => void;
  /** Called once the peer's first SETTINGS arrived (the connection works). */
  onReady?: () => void;
  /** Called for each GOAWAY received. */
  onGoaway?: (info: { lastStreamId: number; code: number; debug: string }) => void;
}

/** Our receive windows: generous so unary responses never wait on WINDOW_UPDATE. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;
/** Largest header block we accept (HEADERS + CONTINUATION), bytes. */
const MAX_HEADER_BLOCK = 256 * 1024;
const MAX_STREAM_ID = 2 ** 31 - 1;
const READ_CHUNK = 64 * 1024;

interface Stream {
  id: number;
  headers?: HeaderField[];
  trailers?: HeaderField[];
  body: Uint8Array[];
  bodyBytes: number;
  recvWindow: number;
  sendWindow: number;
  /** Request body bytes not yet sent. */
  pending: Uint8Array;
  resolve(res: H2Response): void;
  reject(err: Error): void;
  signal: AbortSignal;
  onAbort(): void;
}

interface PendingBlock {
  streamId: number;
  endStream: boolean;
  fragments: Uint8Array[];
  size: number;
}

export class H2Connection {
  readonly #opts: H2ConnectionOptions;
  #conn: Deno.Conn | undefined;
  readonly #decoder = new HpackDecoder({ maxHeaderListSize: MAX_HEADER_BLOCK });
  readonly #streams = new Map<number, Stream>();
  #nextStreamId = 1;
  #closedError: H2ConnectionError | undefined;
  #goaway: { lastStreamId: number; code: number } | undefined;
  #settingsReceived = false;
  /** Calls waiting for the peer's first SETTINGS (woken on it, or on failure). */
  readonly #readyWaiters: Array<() => void> = [];
  #settingsTimer: ReturnType<typeof setTimeout> | undefined;
  // Peer settings.
  #peerMaxConcurrent = Infinity;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #connSendWindow = DEFAULT_WINDOW;
  #connRecvWindow = CONNECTION_WINDOW;
  /** Calls waiting for a free stream slot (peer's MAX_CONCURRENT_STREAMS). */
  readonly #slotWaiters: Array<() => void> = [];
  // Output.
  #out: Uint8Array[] = [];
  #writing = false;
  #pingTimer: ReturnType<typeof setTimeout> | undefined;
  #pendingBlock: PendingBlock | undefined;
  readonly #done: Promise<void>;

  constructor(opts: H2ConnectionOptions) {
    this.#opts = opts;
    // Our preface, SETTINGS and a larger connection window go out as soon as the socket is up.
    const preface = new Uint8Array(PREFACE.length);
    preface.set(PREFACE);
    this.#out.push(
      preface,
      encodeSettings([
        [Setting.ENABLE_PUSH, 0],
        [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
        [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK],
      ]),
      encodeWindowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW),
    );
    this.#settingsTimer = setTimeout(() => {
      this.#fail(
        new H2ConnectionError(
          this.#conn
            ? `no HTTP/2 SETTINGS from ${this.#label()} within ${opts.connectTimeout} ms`
            : `connecting to ${this.#label()} took longer than ${opts.connectTimeout} ms`,
        ),
      );
    }, opts.connectTimeout);
    // #run handles its own failures; the catch only keeps a bug from becoming an unhandled
    // rejection (which would end the process).
    this.#done = this.#run().catch(() => {});
  }

  /** Whether new streams may be opened here. */
  get usable(): boolean {
    return !this.#closedError && !this.#goaway && this.#nextStreamId < MAX_STREAM_ID;
  }

  get closed(): boolean {
    return this.#closedError !== undefined;
  }

  /** Whether the peer's SETTINGS arrived (the peer speaks HTTP/2). */
  get ready(): boolean {
    return this.#settingsReceived;
  }

  /** Gives the connection up as failed (open streams fail with `reason`; the owner logs it). */
  abandon(reason: string): void {
    this.#fail(new H2ConnectionError(`${this.#label()}: ${reason}`));
  }

  /** Streams open now. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /**
   * Sends one request and resolves with the complete response. `headers` is a header list, or
   * an HPACK block already encoded without indexing (see encodeHeaders): such a block does not
   * depend on the connection's state, so a caller may encode the fields every request repeats
   * once and reuse them. The block and `body` are written from as they are, without a copy:
   * neither may change once passed.
   */
  async request(
    headers: HeaderField[] | Uint8Array,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<H2Response> {
    // Streams open once the peer's SETTINGS are known (its MAX_CONCURRENT_STREAMS and windows).
    if (!this.#settingsReceived && !this.#closedError) {
      await this.#wait(this.#readyWaiters, signal);
    }
    while (this.#streams.size >= this.#peerMaxConcurrent && this.usable) {
      await this.#waitForSlot(signal);
    }
    signal.throwIfAborted();
    if (this.#closedError) throw this.#closedError;
    if (!this.usable) {
      throw new H2StreamError(`${this.#label()} is going away`, ErrorCode.REFUSED_STREAM, true);
    }
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    return new Promise<H2Response>((resolve, reject) => {
      const stream: Stream = {
        id,
        body: [],
        bodyBytes: 0,
        recvWindow: STREAM_WINDOW,
        sendWindow: this.#peerInitialWindow,
        pending: body,
        resolve,
        reject,
        signal,
        onAbort: () => {
          if (!this.#streams.has(id)) return;
          this.#endStream(stream);
          this.#send(encodeRstStream(id, ErrorCode.CANCEL));
          reject(signal.reason);
        },
      };
      this.#streams.set(id, stream);
      signal.addEventListener("abort", stream.onAbort, { once: true });
      const block = headers instanceof Uint8Array ? headers : encodeHeaders(headers);
      this.#sendHeaders(id, block, body.length === 0);
      this.#pumpStream(stream);
    });
  }

  /**
   * Checks the peer is alive: sends a PING (unless one is out) and fails the connection when
   * no ACK comes within `timeoutMs`.
   */
  ping(timeoutMs: number): void {
    if (this.#closedError || this.#pingTimer !== undefined) return;
    this.#send(encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8)));
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      this.#fail(
        new H2ConnectionError(`${this.#label()} did not answer a PING within ${timeoutMs} ms`),
      );
    }, timeoutMs);
  }

  /** Closes the connection: open streams fail, a GOAWAY is sent when possible. */
  async close(reason = "connection closed"): Promise<void> {
    this.#fail(new H2ConnectionError(reason), ErrorCode.NO_ERROR);
    await this.#done;
  }

  #label(): string {
    const host = this.#opts.host.includes(":") ? `[${this.#opts.host}]` : this.#opts.host;
    return `${this.#opts.tls ? "https" : "http"}://${host}:${this.#opts.port}`;
  }

  #waitForSlot(signal: AbortSignal): Promise<void> {
    return this.#wait(this.#slotWaiters, signal);
  }

  /** Waits in `queue` until woken, or rejects when `signal` aborts. */
  #wait(queue: Array<() => void>, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = queue.indexOf(wake);
        if (i >= 0) queue.splice(i, 1);
        reject(signal.reason);
      };
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      queue.push(wake);
    });
  }

  // ---- connection lifecycle -------------------------------------------------------------

  async #run(): Promise<void> {
    try {
      const conn = await this.#dial();
      if (this.#closedError) {
        closeQuietly(conn);
        return;
      }
      this.#conn = conn;
      this.#flush();
      await this.#readLoop(conn);
    } catch (err) {
      this.#fail(
        err instanceof H2ConnectionError
          ? err
          : new H2ConnectionError(`${this.#label()}: ${errorText(err)}`, { cause: err }),
      );
    }
  }

  async #dial(): Promise<Deno.Conn> {
    const { host, port, tls } = this.#opts;
    if (!tls) {
      const conn = await Deno.connect({ hostname: host, port, transport: "tcp" });
      conn.setNoDelay(true);
      return conn;
    }
    const conn = await Deno.connectTls({
      hostname: host,
      port,
      caCerts: tls.caCerts,
      alpnProtocols: ["h2"],
    });
    try {
      const { alpnProtocol } = await conn.handshake();
      if (alpnProtocol !== "h2") {
        throw new H2ConnectionError(
          `${this.#label()} did not negotiate HTTP/2 over TLS (ALPN ${alpnProtocol ?? "none"})`,
        );
      }
    } catch (err) {
      closeQuietly(conn);
      throw err;
    }
    return conn;
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    let buf = new Uint8Array(READ_CHUNK * 2);
    let start = 0;
    let end = 0;
    const chunk = new Uint8Array(READ_CHUNK);
    while (!this.#closedError) {
      const n = await conn.read(chunk);
      if (n === null) {
        const partial = end - start;
        throw new H2ConnectionError(
          partial > 0
            ? `${this.#label()} closed the connection mid-frame (${partial} bytes pending)`
            : `${this.#label()} closed the connection`,
        );
      }
      if (this.#closedError) return;
      if (end + n > buf.length) {
        // Compact the unparsed bytes to the front, growing when a frame needs more room.
        const live = end - start;
        if (live + n > buf.length) {
          const bigger = new Uint8Array((live + n) * 2);
          bigger.set(buf.subarray(start, end));
          buf = bigger;
        } else {
          buf.copyWithin(0, start, end);
        }
        start = 0;
        end = live;
      }
      buf.set(chunk.subarray(0, n), end);
      end += n;
      while (end - start >= FRAME_HEADER && !this.#closedError) {
        const header = readFrameHeader(buf, start);
        if (header.length > DEFAULT_MAX_FRAME) {
          throw this.#protocolError(
            ErrorCode.FRAME_SIZE_ERROR,
            `frame of ${header.length} bytes (type ${header.type}) above the ${DEFAULT_MAX_FRAME} limit`,
          );
        }
        if (end - start < FRAME_HEADER + header.length) break;
        // A view into the read buffer, overwritten by later reads: the handlers decode it at
        // once and copy only what they keep (DATA, a header block waiting for CONTINUATION).
        const payload = buf.subarray(start + FRAME_HEADER, start + FRAME_HEADER + header.length);
        start += FRAME_HEADER + header.length;
        this.#onFrame(header.type, header.flags, header.streamId, payload);
      }
      if (start === end) start = end = 0;
    }
  }

  /** A connection error we detected: GOAWAY with `code` goes out, then the socket closes. */
  #protocolError(code: number, message: string): H2ConnectionError {
    const err = new H2ConnectionError(
      `HTTP/2 ${errorCodeName(code)} from ${this.#label()}: ${message}`,
      { code },
    );
    this.#fail(err, code);
    return err;
  }

  #fail(err: H2ConnectionError, goawayCode?: number): void {
    if (this.#closedError) return;
    this.#closedError = err;
    clearTimeout(this.#settingsTimer);
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    for (const stream of [...this.#streams.values()]) {
      this.#endStream(stream);
      stream.reject(err);
    }
    for (const wake of this.#slotWaiters.splice(0)) wake();
    for (const wake of this.#readyWaiters.splice(0)) wake();
    const conn = this.#conn;
    if (conn) {
      if (goawayCode !== undefined) {
        // Best effort: one GOAWAY (we accept no pushed streams: last id 0), then close.
        conn.write(encodeGoaway(0, goawayCode)).catch(() => {}).finally(() => closeQuietly(conn));
      } else {
        closeQuietly(conn);
      }
    }
    this.#out = [];
    notify(() => this.#opts.onClose?.(err, goawayCode === ErrorCode.NO_ERROR));
  }

  // ---- output ---------------------------------------------------------------------------

  /** Queues bytes for the next coalesced write. */
  #send(...bytes: Uint8Array[]): void {
    if (this.#closedError) return;
    this.#out.push(...bytes);
    if (!this.#writing && this.#conn) this.#flush();
  }

  /**
   * Queues a frame as its header and `payload` itself, copied only into the write that
   * coalesces the tick's frames: for payloads nobody changes until then (a request's header
   * block and body).
   */
  #sendParts(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    this.#send(frameHeader(type, flags, streamId, payload.length), payload);
  }

  /** Writes queued frames in order, coalescing everything queued in the same tick. */
  #flush(): void {
    if (this.#writing || !this.#conn) return;
    this.#writing = true;
    const conn = this.#conn;
    queueMicrotask(() => {
      this.#writeLoop(conn).catch(() => {});
    });
  }

  async #writeLoop(conn: Deno.Conn): Promise<void> {
    try {
      while (this.#out.length > 0 && !this.#closedError) {
        const frames = this.#out;
        this.#out = [];
        const data = concatBytes(frames);
        let off = 0;
        while (off < data.length) off += await conn.write(data.subarray(off));
      }
    } catch (err) {
      this.#fail(
        new H2ConnectionError(`writing to ${this.#label()} failed: ${errorText(err)}`, {
          cause: err,
        }),
      );
    } finally {
      this.#writing = false;
    }
  }

  #sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    const max = this.#peerMaxFrame;
    let flags = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      this.#sendParts(FrameType.HEADERS, flags | Flag.END_HEADERS, id, block);
      return;
    }
    let off = 0;
    let type: number = FrameType.HEADERS;
    while (off < block.length) {
      const part = block.subarray(off, off + max);
      off += part.length;
      const last = off >= block.length;
      this.#send(encodeFrame(type, flags | (last ? Flag.END_HEADERS : 0), id, part));
      type = FrameType.CONTINUATION;
      flags = 0;
    }
  }

  /** Sends request body bytes of every stream as far as the flow-control windows allow. */
  #pumpData(): void {
    for (const stream of this.#streams.values()) {
      if (this.#connSendWindow <= 0) return;
      this.#pumpStream(stream);
    }
  }

  #pumpStream(stream: Stream): void {
    if (!this.#settingsReceived) return; // streams open only after SETTINGS; kept as a guard
    while (stream.pending.length > 0) {
      const n = Math.min(
        stream.pending.length,
        stream.sendWindow,
        this.#connSendWindow,
        this.#peerMaxFrame,
      );
      if (n <= 0) return;
      const part = stream.pending.subarray(0, n);
      stream.pending = stream.pending.subarray(n);
      stream.sendWindow -= n;
      this.#connSendWindow -= n;
      const last = stream.pending.length === 0;
      this.#sendParts(FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id, part);
    }
  }

  // ---- input ----------------------------------------------------------------------------

  #onFrame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (!this.#settingsReceived && type !== FrameType.SETTINGS) {
      throw this.#protocolError(
        ErrorCode.PROTOCOL_ERROR,
        `expected SETTINGS first, got frame type ${type} (not an HTTP/2 server?)`,
      );
    }
    if (this.#pendingBlock && type !== FrameType.CONTINUATION) {
      throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "header block interrupted");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onData(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, streamId, payload);
      case FrameType.RST_STREAM:
        return this.#onRstStream(streamId, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, streamId, payload);
      case FrameType.PING:
        return this.#onPing(flags, streamId, payload);
      case FrameType.GOAWAY:
        return this.#onGoaway(streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
      default:
        return; // PRIORITY and unknown frame types are ignored
    }
  }

  /** Strips padding (and the priority fields of HEADERS). */
  #unpad(flags: number, payload: Uint8Array, priority: boolean): Uint8Array {
    let start = 0;
    let padding = 0;
    if (flags & Flag.PADDED) {
      if (payload.length < 1) {
        throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "no pad length");
      }
      padding = payload[0];
      start = 1;
    }
    if (priority && flags & Flag.PRIORITY) start += 5;
    if (start + padding > payload.length) {
      throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "padding exceeds the frame");
    }
    return payload.subarray(start, payload.length - padding);
  }

  #onData(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    // The whole frame (padding included) counts against the windows.
    if (payload.length > this.#connRecvWindow) {
      throw this.#protocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    this.#connRecvWindow -= payload.length;
    if (this.#connRecvWindow < CONNECTION_WINDOW / 2) {
      this.#send(encodeWindowUpdate(0, CONNECTION_WINDOW - this.#connRecvWindow));
      this.#connRecvWindow = CONNECTION_WINDOW;
    }
    const data = this.#unpad(flags, payload, false);
    const stream = this.#streams.get(streamId);
    if (!stream) return this.#checkKnown(streamId, "DATA");
    if (!stream.headers) {
      return this.#resetStream(stream, ErrorCode.PROTOCOL_ERROR, "DATA before HEADERS");
    }
    if (payload.length > stream.recvWindow) {
      return this.#resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded");
    }
    stream.recvWindow -= payload.length;
    stream.bodyBytes += data.length;
    const max = this.#opts.maxBodyBytes ?? 16 * 1024 * 1024 + 64 * 1024;
    if (stream.bodyBytes > max) {
      return this.#resetStream(stream, ErrorCode.CANCEL, `response body above ${max} bytes`);
    }
    if (data.length > 0) stream.body.push(data.slice());
    if (flags & Flag.END_STREAM) return this.#complete(stream);
    if (stream.recvWindow < STREAM_WINDOW / 2) {
      this.#send(encodeWindowUpdate(streamId, STREAM_WINDOW - stream.recvWindow));
      stream.recvWindow = STREAM_WINDOW;
    }
  }

  #onHeaders(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId === 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    const fragment = this.#unpad(flags, payload, true);
    const block: PendingBlock = {
      streamId,
      endStream: (flags & Flag.END_STREAM) !== 0,
      fragments: [fragment],
      size: fragment.length,
    };
    if (flags & Flag.END_HEADERS) return this.#onHeaderBlock(block);
    block.fragments[0] = fragment.slice();
    this.#pendingBlock = block;
  }

  #onContinuation(flags: number, streamId: number, payload: Uint8Array): void {
    const block = this.#pendingBlock;
    if (!block || block.streamId !== streamId) {
      throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
    }
    block.fragments.push(payload.slice());
    block.size += payload.length;
    if (block.size > MAX_HEADER_BLOCK) {
      throw this.#protocolError(
        ErrorCode.ENHANCE_YOUR_CALM,
        `header block above ${MAX_HEADER_BLOCK} bytes`,
      );
    }
    if (flags & Flag.END_HEADERS) {
      this.#pendingBlock = undefined;
      this.#onHeaderBlock(block);
    }
  }

  #onHeaderBlock(block: PendingBlock): void {
    let fields: HeaderField[];
    try {
      // Decoded even for streams we no longer track: the HPACK state is per connection.
      fields = this.#decoder.decode(
        concatBytes(block.fragments),
      );
    } catch (err) {
      if (err instanceof HpackError) {
        throw this.#protocolError(ErrorCode.COMPRESSION_ERROR, err.message);
      }
      throw err;
    }
    const stream = this.#streams.get(block.streamId);
    if (!stream) return this.#checkKnown(block.streamId, "HEADERS");
    if (!stream.headers) {
      const status = fields.find(([n]) => n === ":status")?.[1] ?? "";
      if (/^1\d\d$/.test(status) && !block.endStream) return; // informational
      stream.headers = fields;
    } else if (!block.endStream) {
      return this.#resetStream(stream, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM");
    } else {
      stream.trailers = fields;
    }
    if (block.endStream) this.#complete(stream);
  }

  #onRstStream(streamId: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM length");
    }
    if (streamId === 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM stream 0");
    const stream = this.#streams.get(streamId);
    if (!stream) return this.#checkKnown(streamId, "RST_STREAM");
    const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    this.#endStream(stream);
    stream.reject(
      new H2StreamError(
        `${this.#label()} reset the stream (${errorCodeName(code)})`,
        code,
        code === ErrorCode.REFUSED_STREAM,
      ),
    );
  }

  #onSettings(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.length !== 0) {
        throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
      }
      return;
    }
    if (payload.length % 6 !== 0) {
      throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length");
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let i = 0; i < payload.length; i += 6) {
      const id = view.getUint16(i);
      const value = view.getUint32(i + 2);
      switch (id) {
        case Setting.MAX_CONCURRENT_STREAMS:
          this.#peerMaxConcurrent = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw this.#protocolError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) s.sendWindow += delta;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 16_777_215) {
            throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value}`);
          }
          this.#peerMaxFrame = value;
          break;
        default:
          break; // our encoder does not index, so HEADER_TABLE_SIZE does not matter
      }
    }
    this.#send(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    if (!this.#settingsReceived) {
      this.#settingsReceived = true;
      clearTimeout(this.#settingsTimer);
      notify(() => this.#opts.onReady?.());
      for (const wake of this.#readyWaiters.splice(0)) wake();
    }
    this.#pumpData();
    this.#wakeSlotWaiters();
  }

  #onPing(flags: number, streamId: number, payload: Uint8Array): void {
    if (payload.length !== 8) throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "PING length");
    if (streamId !== 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (flags & Flag.ACK) {
      clearTimeout(this.#pingTimer);
      this.#pingTimer = undefined;
      return;
    }
    this.#send(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
  }

  #onGoaway(streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY length");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const lastStreamId = view.getUint32(0) & 0x7fffffff;
    const code = view.getUint32(4);
    const debug = new TextDecoder().decode(payload.subarray(8, 8 + 256));
    const last = Math.min(lastStreamId, this.#goaway?.lastStreamId ?? MAX_STREAM_ID);
    this.#goaway = { lastStreamId: last, code };
    notify(() => this.#opts.onGoaway?.({ lastStreamId, code, debug }));
    for (const stream of [...this.#streams.values()]) {
      if (stream.id <= last) continue;
      this.#endStream(stream);
      stream.reject(
        new H2StreamError(
          `${this.#label()} sent GOAWAY (${errorCodeName(code)}) before processing the stream`,
          code,
          true,
        ),
      );
    }
    this.#wakeSlotWaiters();
    this.#closeIfDrained();
  }

  #onWindowUpdate(streamId: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      throw this.#protocolError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
    }
    const increment = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) {
        throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      this.#connSendWindow += increment;
      if (this.#connSendWindow > MAX_WINDOW) {
        throw this.#protocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      }
    } else {
      const stream = this.#streams.get(streamId);
      if (!stream) return;
      if (increment === 0) {
        return this.#resetStream(stream, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      stream.sendWindow += increment;
      if (stream.sendWindow > MAX_WINDOW) {
        return this.#resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
      }
    }
    this.#pumpData();
  }

  /** A frame for a stream we do not track: fine for closed streams, an error for idle ones. */
  #checkKnown(streamId: number, what: string): void {
    if (streamId % 2 === 0 || streamId >= this.#nextStreamId) {
      throw this.#protocolError(ErrorCode.PROTOCOL_ERROR, `${what} on idle stream ${streamId}`);
    }
  }

  #resetStream(stream: Stream, code: number, message: string): void {
    this.#endStream(stream);
    this.#send(encodeRstStream(stream.id, code));
    stream.reject(
      new H2StreamError(`stream from ${this.#label()}: ${message}`, code, false, true),
    );
  }

  #complete(stream: Stream): void {
    // The peer answered before taking the whole request body: stop sending it.
    if (stream.pending.length > 0) this.#send(encodeRstStream(stream.id, ErrorCode.NO_ERROR));
    this.#endStream(stream);
    stream.resolve({
      headers: stream.headers ?? [],
      trailers: stream.trailers,
      body: concatBytes(stream.body),
    });
  }

  /** Forgets a stream (no more frames are delivered to it). */
  #endStream(stream: Stream): void {
    if (!this.#streams.delete(stream.id)) return;
    stream.signal.removeEventListener("abort", stream.onAbort);
    stream.pending = new Uint8Array(0);
    this.#wakeSlotWaiters();
    this.#closeIfDrained();
  }

  /** Wakes as many waiters as there are free stream slots (all when no more streams open). */
  #wakeSlotWaiters(): void {
    let free = this.usable ? this.#peerMaxConcurrent - this.#streams.size : Infinity;
    while (this.#slotWaiters.length > 0 && free-- > 0) this.#slotWaiters.shift()!();
  }

  /**
   * After a GOAWAY (or once stream ids run out), the connection closes when its last stream
   * is done.
   */
  #closeIfDrained(): void {
    const draining = this.#goaway || this.#nextStreamId >= MAX_STREAM_ID;
    if (draining && this.#streams.size === 0 && !this.#closedError) {
      queueMicrotask(() => {
        if (this.#streams.size === 0 && !this.#closedError) {
          this.#fail(
            new H2ConnectionError(
              this.#goaway
                ? `${this.#label()} went away (GOAWAY)`
                : `stream ids to ${this.#label()} ran out`,
            ),
            ErrorCode.NO_ERROR,
          );
        }
      });
    }
  }
}

/** Runs an owner's callback; its failure must not break the connection's bookkeeping. */
function notify(fn: () => void): void {
  try {
    fn();
  } catch {
    // the owner's problem (a logger that throws); the connection carries on
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
