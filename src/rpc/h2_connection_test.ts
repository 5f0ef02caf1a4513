import assert from "node:assert/strict";
import { H2Connection, H2ConnectionError, H2StreamError } from "./h2_connection.ts";
import {
  encodeFrame,
  encodeGoaway,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  ErrorCode,
  Flag,
  FRAME_HEADER,
  FrameType,
  PREFACE,
  readFrameHeader,
  Setting,
} from "./h2_frames.ts";
import { encodeHeaders, type HeaderField, HpackDecoder } from "./hpack.ts";

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** The server side of one connection, scripted frame by frame (a background reader queues them). */
class Peer {
  readonly conn: Deno.Conn;
  readonly decoder = new HpackDecoder();
  readonly #frames: Frame[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Checks the client preface, then queues frames until EOF. */
  async preface(): Promise<void> {
    let buf = new Uint8Array(0);
    const fill = async (n: number) => {
      while (buf.length < n) {
        const chunk = new Uint8Array(65536);
        const got = await this.conn.read(chunk).catch(() => null);
        if (got === null) return false;
        const joined = new Uint8Array(buf.length + got);
        joined.set(buf);
        joined.set(chunk.subarray(0, got), buf.length);
        buf = joined;
      }
      return true;
    };
    assert.ok(await fill(PREFACE.length));
    assert.deepEqual(buf.subarray(0, PREFACE.length), PREFACE);
    buf = buf.slice(PREFACE.length);
    (async () => {
      while (await fill(FRAME_HEADER)) {
        const h = readFrameHeader(buf, 0);
        if (!await fill(FRAME_HEADER + h.length)) break;
        const payload = buf.slice(FRAME_HEADER, FRAME_HEADER + h.length);
        buf = buf.slice(FRAME_HEADER + h.length);
        this.#frames.push({ type: h.type, flags: h.flags, streamId: h.streamId, payload });
        this.#wake?.();
      }
      this.#ended = true;
      this.#wake?.();
    })();
  }

  /** The next frame, or undefined at EOF / after `timeoutMs`. */
  async frame(timeoutMs = 5000): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0 && !this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.#frames.shift();
  }

  /** Frames until one matches (settings ACKs, window updates etc. in between are skipped). */
  async until(pred: (f: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const f = await this.frame();
      assert.ok(f, "connection ended before the expected frame");
      if (pred(f)) return f;
    }
  }

  async write(...frames: Uint8Array[]): Promise<void> {
    for (const f of frames) {
      let off = 0;
      while (off < f.length) off += await this.conn.write(f.subarray(off));
    }
  }
}

async function withPeer(
  script: (peer: Peer) => Promise<void>,
  client: (conn: H2Connection) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = (async () => {
    const conn = await listener.accept();
    const peer = new Peer(conn);
    try {
      await peer.preface();
      await script(peer);
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
  const h2 = new H2Connection({ host: "127.0.0.1", port, connectTimeout: 5000 });
  try {
    await Promise.all([server, client(h2)]);
  } finally {
    await h2.close();
    listener.close();
  }
}

const REQ: HeaderField[] = [[":method", "POST"], [":scheme", "http"], [":path", "/x"], [
  ":authority",
  "t",
]];
const signal = () => AbortSignal.timeout(10_000);

Deno.test("H2Connection: flow control holds the body for WINDOW_UPDATE; CONTINUATION, padding, trailers", async () => {
  const body = new Uint8Array(50_000).map((_, i) => i % 251);
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([[Setting.INITIAL_WINDOW_SIZE, 1000]]));
    const headers = await peer.until((f) => f.type === FrameType.HEADERS);
    assert.deepEqual(peer.decoder.decode(headers.payload), REQ);
    let received = 0;
    const chunks: Uint8Array[] = [];
    while (received < 1000) {
      const f = await peer.until((f) => f.type === FrameType.DATA);
      received += f.payload.length;
      chunks.push(f.payload);
    }
    assert.equal(received, 1000, "exactly the stream window");
    // Nothing more until the window opens.
    const early = await peer.frame(150);
    assert.ok(!early || early.type !== FrameType.DATA, "DATA beyond the window");
    await peer.write(encodeWindowUpdate(1, 100_000), encodeWindowUpdate(0, 100_000));
    for (;;) {
      const f = await peer.until((f) => f.type === FrameType.DATA);
      chunks.push(f.payload);
      received += f.payload.length;
      assert.ok(f.payload.length <= 16_384);
      if (f.flags & Flag.END_STREAM) break;
    }
    const all = new Uint8Array(received);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    assert.deepEqual(all, body);
    // Response: padded HEADERS without END_HEADERS + CONTINUATION, padded DATA, trailers.
    const block = encodeHeaders([[":status", "200"], ["content-type", "application/grpc"]]);
    const first = block.subarray(0, 5);
    const padded = new Uint8Array(1 + first.length + 3);
    padded[0] = 3;
    padded.set(first, 1);
    await peer.write(
      encodeFrame(FrameType.HEADERS, Flag.PADDED, 1, padded),
      encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(5)),
      encodeFrame(FrameType.DATA, Flag.PADDED, 1, Uint8Array.from([2, 7, 8, 9, 0, 0])),
      encodeFrame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        encodeHeaders([["grpc-status", "0"]]),
      ),
    );
    await peer.frame(200); // let the client read before the socket closes
  }, async (conn) => {
    const res = await conn.request(REQ, body, signal());
    assert.deepEqual(res.headers, [[":status", "200"], ["content-type", "application/grpc"]]);
    assert.deepEqual(res.body, Uint8Array.from([7, 8, 9]));
    assert.deepEqual(res.trailers, [["grpc-status", "0"]]);
  });
});

Deno.test("H2Connection: GOAWAY refuses the streams above its last id, the rest finish; PING is answered", async () => {
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([]));
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 1);
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 3);
    const ping = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    await peer.write(encodeFrame(FrameType.PING, 0, 0, ping));
    const ack = await peer.until((f) => f.type === FrameType.PING);
    assert.equal(ack.flags & Flag.ACK, Flag.ACK);
    assert.deepEqual(ack.payload, ping);
    await peer.write(encodeGoaway(1, ErrorCode.NO_ERROR, "deploy"));
    await peer.write(
      encodeFrame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        encodeHeaders([[":status", "200"], ["grpc-status", "0"]]),
      ),
    );
    // Once its last stream is done, the client closes (with a GOAWAY of its own).
    const bye = await peer.until((f) => f.type === FrameType.GOAWAY);
    assert.equal(new DataView(bye.payload.buffer).getUint32(4), ErrorCode.NO_ERROR);
  }, async (conn) => {
    const one = conn.request(REQ, new Uint8Array(0), signal());
    const three = conn.request(REQ, new Uint8Array(0), signal());
    await assert.rejects(three, (err: Error) => {
      assert.ok(err instanceof H2StreamError && err.refused, String(err));
      assert.match(err.message, /GOAWAY/);
      return true;
    });
    assert.equal(conn.usable, false);
    assert.deepEqual((await one).headers, [[":status", "200"], ["grpc-status", "0"]]);
  });
});

Deno.test("H2Connection: RST_STREAM fails one stream; late frames are ignored; a huge frame fails the connection", async () => {
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([[Setting.MAX_CONCURRENT_STREAMS, 100]]));
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 1);
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 3);
    const ok = encodeHeaders([[":status", "200"], ["grpc-status", "0"]]);
    await peer.write(
      encodeRstStream(1, ErrorCode.CANCEL),
      encodeRstStream(1, ErrorCode.CANCEL), // a storm on a closed stream
      encodeFrame(FrameType.DATA, 0, 1, new Uint8Array(10)),
      encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, ok),
    );
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 5);
    // A frame header announcing 1 MiB (above the 16 KiB we allow).
    await peer.write(Uint8Array.from([0x10, 0, 0, FrameType.DATA, 0, 0, 0, 0, 5]));
    const bye = await peer.until((f) => f.type === FrameType.GOAWAY);
    assert.equal(new DataView(bye.payload.buffer).getUint32(4), ErrorCode.FRAME_SIZE_ERROR);
  }, async (conn) => {
    const one = conn.request(REQ, new Uint8Array(0), signal());
    const three = conn.request(REQ, new Uint8Array(0), signal());
    await assert.rejects(one, (err: Error) => {
      assert.ok(err instanceof H2StreamError, String(err));
      assert.equal(err.code, ErrorCode.CANCEL);
      assert.equal(err.refused, false);
      return true;
    });
    await three;
    assert.equal(conn.usable, true);
    await assert.rejects(conn.request(REQ, new Uint8Array(0), signal()), (err: Error) => {
      assert.ok(err instanceof H2ConnectionError, String(err));
      assert.match(err.message, /FRAME_SIZE_ERROR/);
      return true;
    });
    assert.equal(conn.closed, true);
  });
});

Deno.test("H2Connection: a peer that never sends SETTINGS fails within the connect budget", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) accepted.push(c);
  })().catch(() => {});
  const conn = new H2Connection({
    host: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    connectTimeout: 200,
  });
  const started = Date.now();
  try {
    await assert.rejects(
      conn.request(REQ, new Uint8Array(0), signal()),
      /no HTTP\/2 SETTINGS from http:\/\/127\.0\.0\.1:\d+ within 200 ms/,
    );
    assert.ok(Date.now() - started < 2000);
  } finally {
    await conn.close();
    listener.close();
    for (const c of accepted) c.close();
  }
});

Deno.test("H2Connection: a large header block goes out as HEADERS + CONTINUATION", async () => {
  const big: HeaderField[] = [...REQ, ["x-big", "v".repeat(40_000)]];
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([]));
    const first = await peer.until((f) => f.type === FrameType.HEADERS);
    assert.equal(first.flags & Flag.END_HEADERS, 0);
    const parts = [first.payload];
    for (;;) {
      const f = await peer.until(() => true);
      assert.equal(f.type, FrameType.CONTINUATION, "nothing may interleave a header block");
      parts.push(f.payload);
      if (f.flags & Flag.END_HEADERS) break;
    }
    assert.ok(parts.length >= 3 && parts.every((p) => p.length <= 16_384));
    const block = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      block.set(p, off);
      off += p.length;
    }
    assert.deepEqual(peer.decoder.decode(block), big);
    await peer.write(
      encodeFrame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        encodeHeaders([[":status", "200"]]),
      ),
    );
    await peer.frame(200);
  }, async (conn) => {
    const res = await conn.request(big, new Uint8Array(0), signal());
    assert.deepEqual(res.headers, [[":status", "200"]]);
  });
});

Deno.test("H2Connection: a peer that stops answering fails its PING check", async () => {
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([]));
    // Reads on, answers nothing (not even PING) until the client gives up.
    while (await peer.frame(3000)) { /* ignore */ }
  }, async (conn) => {
    const timeout = AbortSignal.timeout(150);
    await assert.rejects(conn.request(REQ, new Uint8Array(0), timeout));
    assert.equal(conn.closed, false, "a timed-out call alone does not drop the connection");
    const started = Date.now();
    conn.ping(200);
    await assert.rejects(
      conn.request(REQ, new Uint8Array(0), signal()),
      /did not answer a PING within 200 ms/,
    );
    assert.ok(Date.now() - started < 2000);
    assert.equal(conn.closed, true);
  });
});

Deno.test("H2Connection: calls beyond the peer's MAX_CONCURRENT_STREAMS wait for a free stream", async () => {
  const ok = encodeHeaders([[":status", "200"]]);
  await withPeer(async (peer) => {
    await peer.write(encodeSettings([[Setting.MAX_CONCURRENT_STREAMS, 2]]));
    let open = 0;
    let answered = 0;
    while (answered < 5) {
      const f = await peer.frame(300);
      if (f?.type === FrameType.HEADERS) {
        open++;
        assert.ok(open <= 2, `${open} streams open at once`);
        continue;
      }
      if (f && f.type !== FrameType.HEADERS) continue;
      // Quiet: the client waits for a slot; answer the oldest open stream.
      assert.equal(open, Math.min(2, 5 - answered), "the client fills the free slots");
      const id = answered * 2 + 1;
      await peer.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, ok));
      open--;
      answered++;
    }
    await peer.frame(200);
  }, async (conn) => {
    const results = await Promise.all(
      Array.from({ length: 5 }, () => conn.request(REQ, new Uint8Array(0), signal())),
    );
    assert.equal(results.length, 5);
  });
});
