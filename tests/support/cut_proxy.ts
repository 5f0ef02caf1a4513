/**
 * A TCP proxy on 127.0.0.1 between clients and a server, for fault tests: it can cut every
 * connection or one (both sockets closed at once, no WebSocket close frame: a lost network),
 * stall what clients send (so a test can act between two steps of a protocol exchange), and
 * switch its target (a load balancer moving clients to another node).
 */

const HEAD_END = /\r\n\r\n/;

interface Link {
  id: number;
  client: Deno.TcpConn;
  server?: Deno.TcpConn;
  /** Client bytes held while upstream is stalled. */
  stalled: Uint8Array[];
  closed: boolean;
  /** The HTTP request head went through (stalling applies only after it). */
  handshaken: boolean;
  /** Writes per direction, one after another (chunks never interleave). */
  up: Promise<void>;
  down: Promise<void>;
}

export class CutProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #target: number;
  readonly #links = new Map<number, Link>();
  #nextId = 1;
  #stall = false;
  #cuts = 0;
  #accepted = 0;
  #closed = false;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept();
  }

  /** ws://127.0.0.1:<port><path> */
  wsUrl(path = "/cable"): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** New connections go to `port` (open ones stay where they are). */
  retarget(port: number): void {
    this.#target = port;
  }

  /** Open connections right now. */
  get connections(): number {
    return this.#links.size;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  /** Connections cut so far. */
  get cuts(): number {
    return this.#cuts;
  }

  /**
   * While on, what clients send after their HTTP request head (e.g. WebSocket frames after
   * the upgrade) is held in the proxy; server bytes still flow. Turning it off forwards what
   * was held, in order.
   */
  stallUpstream(on: boolean): void {
    this.#stall = on;
    if (on) return;
    for (const link of this.#links.values()) {
      for (const chunk of link.stalled.splice(0)) this.#write(link, link.server!, chunk);
    }
  }

  /** Cuts every open connection; returns how many. */
  cutAll(): number {
    const links = [...this.#links.values()];
    for (const link of links) this.#cut(link);
    return links.length;
  }

  /** Cuts one open connection chosen by `pick` (default: a random one); false if none. */
  cutOne(pick: (n: number) => number = (n) => Math.floor(Math.random() * n)): boolean {
    const links = [...this.#links.values()];
    if (!links.length) return false;
    this.#cut(links[pick(links.length) % links.length]);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const link of [...this.#links.values()]) this.#drop(link);
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      this.#accepted++;
      const link: Link = {
        id: this.#nextId++,
        client,
        stalled: [],
        closed: false,
        handshaken: false,
        up: Promise.resolve(),
        down: Promise.resolve(),
      };
      this.#links.set(link.id, link);
      this.#open(link);
    }
  }

  async #open(link: Link): Promise<void> {
    try {
      link.server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      this.#drop(link);
      return;
    }
    if (link.closed) {
      link.server.close();
      return;
    }
    this.#pump(link, link.client, () => link.server, true);
    this.#pump(link, link.server, () => link.client, false);
  }

  async #pump(
    link: Link,
    from: Deno.TcpConn,
    to: () => Deno.TcpConn | undefined,
    upstream: boolean,
  ): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    while (!link.closed) {
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        break;
      }
      if (n === null) break;
      const chunk = buf.slice(0, n);
      const dest = to();
      const head = upstream && !link.handshaken;
      if (head && HEAD_END.test(new TextDecoder().decode(chunk))) link.handshaken = true;
      if (upstream && this.#stall && !head) {
        link.stalled.push(chunk);
        continue;
      }
      if (dest) await this.#write(link, dest, chunk);
    }
    this.#drop(link);
  }

  #write(link: Link, dest: Deno.TcpConn, chunk: Uint8Array): Promise<void> {
    const up = dest === link.server;
    const next = (up ? link.up : link.down).then(async () => {
      try {
        let off = 0;
        while (off < chunk.length && !link.closed) off += await dest.write(chunk.subarray(off));
      } catch {
        this.#drop(link);
      }
    });
    if (up) link.up = next;
    else link.down = next;
    return next;
  }

  #cut(link: Link): void {
    if (link.closed) return;
    this.#cuts++;
    this.#drop(link);
  }

  #drop(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link.id);
    link.stalled = [];
    for (const conn of [link.client, link.server]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
  }
}
