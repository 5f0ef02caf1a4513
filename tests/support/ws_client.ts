import { Inbox } from "./wait.ts";

/**
 * A raw WebSocket test client: collects every frame and waits for matching ones, with a
 * bounded timeout (no sleeps).
 */
export class WsClient {
  readonly ws: WebSocket;
  readonly #inbox = new Inbox<Record<string, unknown>>();
  readonly frames: Array<Record<string, unknown>> = this.#inbox.items;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;

  constructor(
    url: string,
    protocols: string | string[] = "actioncable-v1-json",
    init?: { headers?: Record<string, string> },
  ) {
    // Deno's WebSocket accepts a `headers` option as a non-standard extension.
    this.ws = init?.headers
      // deno-lint-ignore no-explicit-any
      ? new (WebSocket as any)(url, {
        protocols: typeof protocols === "string" ? [protocols] : protocols,
        headers: init.headers,
      })
      : new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error("websocket error")), { once: true });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.ws.addEventListener("close", resolve, { once: true })
    );
    this.ws.addEventListener("message", (ev) => this.#inbox.push(JSON.parse(ev.data)));
    this.ws.addEventListener("close", () => this.#inbox.wake());
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** Frames other than pings. */
  get messages(): Array<Record<string, unknown>> {
    return this.frames.filter((f) => f.type !== "ping");
  }

  /** Waits until some frame matches and returns it. */
  async waitFor(
    pred: (f: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await this.#inbox.waitFor(
      (frames) => (found = frames.find(pred)) !== undefined,
      timeoutMs,
      () => `a matching frame; frames: ${JSON.stringify(this.frames)}`,
    );
    return found!;
  }

  /** Waits until `n` non-ping frames arrived. */
  async waitForCount(n: number, timeoutMs = 5000): Promise<Array<Record<string, unknown>>> {
    await this.#inbox.waitFor(
      () => this.messages.length >= n,
      timeoutMs,
      () => `${n} messages; got: ${JSON.stringify(this.messages)}`,
    );
    return this.messages;
  }

  close(): Promise<CloseEvent> {
    if (this.ws.readyState < WebSocket.CLOSING) this.ws.close();
    return this.closed;
  }
}

/** A WebSocket upgrade request (fixed key) for clients on bare TCP sockets. */
export function upgradeRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Uint8Array {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  return new TextEncoder().encode(lines.join("\r\n"));
}

/** Sends a raw HTTP/1.1 upgrade request and returns the status and response headers. */
export async function rawHandshake(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(upgradeRequest(port, path, headers));
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [head] = text.split("\r\n\r\n");
    const [statusLine, ...rest] = head.split("\r\n");
    const out = new Headers();
    for (const line of rest) {
      const i = line.indexOf(":");
      if (i > 0) out.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    return { status: Number(statusLine.split(" ")[1]), headers: out };
  } finally {
    conn.close();
  }
}
