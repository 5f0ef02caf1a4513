import type { Controller } from "../node/controller.ts";
import type { Node } from "../node/node.ts";
import { Status } from "../rpc/rpc_client.ts";
import type { Connection } from "../transport/connection.ts";
import { timingSafeEqual } from "../util/secrets.ts";
import { nanoid } from "../util/nanoid.ts";

/** Who may read and write Durable Streams. */
export interface DsAccess {
  /** The client is authenticated (unless skipped) and may read `stream`. */
  canRead(req: Request, stream: string, remoteAddr: string): Promise<boolean>;
  /** The request carries the write key (or writes are open). */
  canWrite(req: Request): boolean;
}

export interface NodeDsAccessOptions {
  /** --ds_skip_auth: only the stream is authorized, not the client. */
  skipAuth: boolean;
  /** Bearer key for PUT/POST/DELETE; "" = unauthenticated writes; null = no writes. */
  writeKey: string | null;
}

/** A connection that drops what it is sent: authentication-only sessions. */
class NullConnection implements Connection {
  send(): void {}
  close(): void {}
}

/**
 * Reads go through the same checks as a WebSocket client subscribing to `$pubsub`: the client
 * authenticates like a connection (JWT, Connect RPC, --noauth) unless --ds_skip_auth, then the
 * stream is authorized as a signed stream (`?signed=` or `X-Signed`) or a public one
 * (--public_streams). Writes need `Authorization: Bearer <write key>`.
 */
export class NodeDsAccess implements DsAccess {
  readonly #node: Node;
  readonly #controller: Controller;
  readonly #opts: NodeDsAccessOptions;

  constructor(node: Node, controller: Controller, opts: NodeDsAccessOptions) {
    this.#node = node;
    this.#controller = controller;
    this.#opts = opts;
  }

  canWrite(req: Request): boolean {
    if (this.#opts.writeKey === null) return false;
    if (this.#opts.writeKey === "") return true;
    const auth = req.headers.get("authorization") ?? "";
    return timingSafeEqual(auth, `Bearer ${this.#opts.writeKey}`);
  }

  async canRead(req: Request, stream: string, remoteAddr: string): Promise<boolean> {
    let sid = `ds-${nanoid()}`;
    let identifiers: string | undefined;
    if (!this.#opts.skipAuth) {
      const session = this.#node.open(new NullConnection(), {
        url: req.url,
        headers: this.#node.copyHeaders(req.headers),
        remoteAddr,
        protocol: "",
        transport: "sse",
      });
      await session.enqueue(() => {});
      const ok = session.state === "connected";
      sid = session.sid;
      identifiers = session.identifiers;
      this.#node.closed(session);
      if (!ok) return false;
    }
    const url = new URL(req.url);
    const signed = url.searchParams.get("signed") ?? req.headers.get("x-signed");
    const identifier = JSON.stringify(
      signed
        ? { channel: "$pubsub", signed_stream_name: signed }
        : { channel: "$pubsub", stream_name: stream },
    );
    const res = await this.#controller.subscribe(
      { sid, env: { url: req.url, headers: {} }, identifiers },
      identifier,
    );
    return res.status === Status.SUCCESS && (res.streams ?? []).includes(stream);
  }
}
