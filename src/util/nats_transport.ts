/**
 * nats.js' Node transport, hardened for Deno's node:net: when the server goes away, nats.js
 * ends the socket and later removes every socket listener on 'close'; a write that slipped in
 * between schedules an 'error' event that then has no listener and would crash the process
 * ("write after end"). This transport skips writes on a socket that is no longer writable and
 * drops 'error' events nobody listens to any more (the disconnect is already being handled).
 */
import type { ConnectionOptions, NatsConnection } from "nats";
import { NatsConnectionImpl, setTransportFactory } from "nats/lib/nats-base-client/internal_mod.js";
import { nodeResolveHost, NodeTransport } from "nats/lib/src/node_transport.js";

class GuardedNodeTransport extends NodeTransport {
  override setupHandlers(): void {
    super.setupHandlers();
    const socket = this.socket;
    const emit = socket.emit.bind(socket);
    socket.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
      if (event === "error" && socket.listenerCount("error") === 0) return false;
      return emit(event, ...args);
    }) as typeof socket.emit;
  }

  override _send(frame: Uint8Array): Promise<void> {
    if (this.socket !== undefined && !this.socket.writable) return Promise.resolve();
    return super._send(frame);
  }
}

/** Like nats' `connect`, with the guarded transport (used for the reconnects too). */
export function connectGuarded(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({
    factory: () => new GuardedNodeTransport(),
    dnsResolveFn: nodeResolveHost,
  });
  return NatsConnectionImpl.connect(opts);
}
