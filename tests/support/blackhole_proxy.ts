/**
 * A TCP forwarder on 127.0.0.1 whose `blackhole()` makes every connection open so far go
 * silently dead: bytes in both directions are read and dropped, no FIN, no RST (a middlebox
 * that lost its state, a partition). Connections opened afterwards are forwarded normally.
 */
export class BlackholeProxy {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #target: number;
  readonly #links = new Set<{ dead: boolean; close(): void }>();
  #closed = false;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept();
  }

  /** Connections currently forwarded (not blackholed). */
  get live(): number {
    return [...this.#links].filter((l) => !l.dead).length;
  }

  /** Every current connection goes silently dead; returns how many. */
  blackhole(): number {
    let n = 0;
    for (const link of this.#links) {
      if (!link.dead) n++;
      link.dead = true;
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const link of this.#links) link.close();
    this.#links.clear();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept() as Deno.TcpConn;
      } catch {
        return; // listener closed
      }
      this.#pipe(client).catch(() => {});
    }
  }

  async #pipe(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      client.close();
      return;
    }
    const link = {
      dead: false,
      close() {
        for (const c of [client, upstream]) {
          try {
            c.close();
          } catch {
            // already closed
          }
        }
      },
    };
    this.#links.add(link);
    const pump = async (from: Deno.TcpConn, to: Deno.TcpConn) => {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await from.read(buf).catch(() => null);
        if (n === null) break;
        if (link.dead) continue; // swallowed
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    };
    const pumps = [pump(client, upstream), pump(upstream, client)].map((p) => p.catch(() => {}));
    // One side closed: close both, unless the link is blackholed (the other side must not
    // learn anything; proxy.close() ends it).
    await Promise.race(pumps);
    if (!link.dead) {
      link.close();
      this.#links.delete(link);
    }
  }
}
