import assert from "node:assert/strict";
import { Http1Client, Http1ResponseError, Http1TooLargeError } from "./http1_client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One parsed request as the scripted server saw it. */
interface Seen {
  conn: number;
  head: string;
  body: string;
}

/**
 * A TCP server that reads HTTP/1.1 requests (Content-Length bodies) and answers each with what
 * `answer` returns: raw bytes to write, and whether to close the connection afterwards
 * ("close"), keep it ("keep"), or read no further ("stall": the answer stays unfinished).
 */
function scripted(
  answer: (req: Seen, index: number) => { raw: string; then?: "keep" | "close" | "stall" },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen[] = [];
  const conns: Deno.Conn[] = [];
  let connNo = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const no = ++connNo;
      (async () => {
        let buf = new Uint8Array(0);
        const chunk = new Uint8Array(65536);
        try {
          for (;;) {
            const text = new TextDecoder("latin1").decode(buf);
            const at = text.indexOf("\r\n\r\n");
            if (at >= 0) {
              const head = text.slice(0, at);
              const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
              if (buf.length - at - 4 >= len) {
                const body = dec.decode(buf.subarray(at + 4, at + 4 + len));
                buf = buf.slice(at + 4 + len);
                const req = { conn: no, head, body };
                seen.push(req);
                const { raw, then = "keep" } = answer(req, seen.length - 1);
                if (raw) await conn.write(enc.encode(raw));
                if (then === "close") return conn.close();
                if (then === "stall") return;
                continue;
              }
            }
            const n = await conn.read(chunk);
            if (n === null) return conn.close();
            const next = new Uint8Array(buf.length + n);
            next.set(buf);
            next.set(chunk.subarray(0, n), buf.length);
            buf = next;
          }
        } catch {
          // the client went away
        }
      })();
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    get connections() {
      return connNo;
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await serving.catch(() => {});
    },
  };
}

const ok = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${
    enc.encode(body).length
  }\r\n${extra}\r\n${body}`;

Deno.test("http1 client: posts JSON, reads Content-Length answers, reuses the connection", async () => {
  const srv = scripted((req) => ({ raw: ok(`{"echo":${req.body},"n":"é"}`) }));
  const client = new Http1Client({ origin: srv.origin });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await client.post(
        "/_anycable/connect",
        { "x-k": "v" },
        `{"i":${i},"s":"ü"}`,
        undefined,
      );
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), { echo: { i, s: "ü" }, n: "é" });
    }
    assert.equal(srv.connections, 1);
    assert.match(srv.seen[0].head, /^POST \/_anycable\/connect HTTP\/1\.1\r\n/);
    assert.match(srv.seen[0].head, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(srv.seen[0].head, /\r\nx-k: v\r\n/);
    assert.ok(
      srv.seen[0].head.endsWith(`\r\ncontent-length: ${enc.encode('{"i":0,"s":"ü"}').length}`),
    );
    assert.equal(enc.encode('{"i":0,"s":"ü"}').length, 16); // ü is 2 bytes
    assert.equal(client.idleConnections, 1);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: chunked answers (extensions, trailers), 100 Continue, answers ended by close", async () => {
  const srv = scripted((_req, i) => {
    if (i === 0) {
      return {
        raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
          '4;ext=1\r\n{"a"\r\n5\r\n:"bc"\r\n1\r\n}\r\n0\r\nx-trailer: t\r\n\r\n',
      };
    }
    if (i === 1) return { raw: ok('{"second":true}', "connection: close\r\n"), then: "close" };
    return {
      raw: 'HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{"eof":1}',
      then: "close",
    };
  });
  const client = new Http1Client({ origin: srv.origin });
  try {
    assert.deepEqual(JSON.parse((await client.post("/a", {}, "{}", undefined)).text), { a: "bc" });
    // chunked and kept alive: same connection
    assert.deepEqual(JSON.parse((await client.post("/b", {}, "{}", undefined)).text), {
      second: true,
    });
    assert.equal(srv.connections, 1);
    assert.equal(client.idleConnections, 0); // "connection: close" is not pooled
    assert.deepEqual(JSON.parse((await client.post("/c", {}, "{}", undefined)).text), { eof: 1 });
    assert.equal(srv.connections, 2);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: a pooled connection the server closed is replaced once, and the request is made once", async () => {
  // The server closes every connection right after its first answer, without saying so.
  const srv = scripted((req) => ({ raw: ok(req.body), then: "close" }));
  const client = new Http1Client({ origin: srv.origin });
  try {
    assert.equal((await client.post("/x", {}, '{"n":1}', undefined)).text, '{"n":1}');
    await new Promise((r) => setTimeout(r, 50)); // the FIN arrives while the connection idles
    assert.equal((await client.post("/x", {}, '{"n":2}', undefined)).text, '{"n":2}');
    assert.deepEqual(srv.seen.map((s) => s.body), ['{"n":1}', '{"n":2}']);
    assert.equal(srv.connections, 2);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: a fresh connection dropped without an answer is an error, not a resend", async () => {
  const srv = scripted(() => ({ raw: "", then: "close" }));
  const client = new Http1Client({ origin: srv.origin });
  try {
    await assert.rejects(client.post("/x", {}, "{}", undefined));
    assert.equal(srv.seen.length, 1);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: an abort while the answer is pending rejects with the signal's reason", async () => {
  const srv = scripted(() => ({
    raw: "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{",
    then: "stall",
  }));
  const client = new Http1Client({ origin: srv.origin });
  try {
    const ctl = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ctl.abort(new DOMException("gone", "TimeoutError")), 100);
    await assert.rejects(
      client.post("/x", {}, "{}", ctl.signal),
      (e) => e instanceof DOMException && e.name === "TimeoutError",
    );
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(client.idleConnections, 0);
    await assert.rejects(client.post("/x", {}, "{}", ctl.signal)); // already aborted
    assert.equal(srv.seen.length, 1);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: size limit, broken answers", async () => {
  const answers = [
    ok('{"big":"' + "x".repeat(100) + '"}'),
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n" + "y".repeat(64) + "\r\n40\r\n" +
    "y".repeat(64) + "\r\n0\r\n\r\n",
    "SMTP ready\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{}",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
  ];
  const srv = scripted((_req, i) => ({ raw: answers[i], then: i === 3 ? "close" : "keep" }));
  const client = new Http1Client({ origin: srv.origin });
  try {
    await assert.rejects(
      client.post("/x", {}, "{}", undefined, 64),
      (e) => e instanceof Http1TooLargeError && e.size === 110 && /110 bytes/.test(e.message),
    );
    await assert.rejects(
      client.post("/x", {}, "{}", undefined, 100),
      (e) => e instanceof Http1TooLargeError && /128\+ bytes/.test(e.message),
    );
    await assert.rejects(client.post("/x", {}, "{}", undefined), Http1ResponseError);
    await assert.rejects(client.post("/x", {}, "{}", undefined), Http1ResponseError);
    await assert.rejects(client.post("/x", {}, "{}", undefined), Http1ResponseError);
    assert.equal(srv.seen.length, 5);
  } finally {
    client.close();
    await srv.close();
  }
});

Deno.test("http1 client: an unreachable backend is the runtime's connection error", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const client = new Http1Client({ origin: `http://127.0.0.1:${port}` });
  await assert.rejects(client.post("/x", {}, "{}", undefined), Deno.errors.ConnectionRefused);
  client.close();
});
