import type { Session } from "./session.ts";

export type PingPrecision = "s" | "ms" | "ns";

interface Group {
  timer: ReturnType<typeof setInterval>;
  members: Map<Session, PingPrecision>;
}

/**
 * One ticker per ping interval for all sessions (not a timer per session): each tick encodes
 * the ping once per precision and sends it to every member. With `pongTimeout`, ext-protocol
 * members that sent nothing within that time after a ping are disconnected with `no_pong`.
 */
export class Pinger {
  readonly #groups = new Map<number, Group>();
  readonly #pongTimeoutMs: number;

  constructor(opts: { pongTimeoutSeconds: number }) {
    this.#pongTimeoutMs = opts.pongTimeoutSeconds * 1000;
  }

  add(session: Session, intervalSeconds: number, precision: PingPrecision): void {
    const ms = intervalSeconds * 1000;
    let group = this.#groups.get(ms);
    if (!group) {
      const members = new Map<Session, PingPrecision>();
      group = { members, timer: setInterval(() => this.#tick(members), ms) };
      this.#groups.set(ms, group);
    }
    group.members.set(session, precision);
    session.pingInterval = intervalSeconds;
  }

  /** Forgets a closed session. */
  remove(session: Session): void {
    if (session.pingInterval > 0) this.#remove(session.pingInterval * 1000, session);
  }

  close(): void {
    for (const group of this.#groups.values()) clearInterval(group.timer);
    this.#groups.clear();
  }

  #remove(ms: number, session: Session): void {
    const group = this.#groups.get(ms);
    if (!group) return;
    group.members.delete(session);
    if (group.members.size === 0) {
      clearInterval(group.timer);
      this.#groups.delete(ms);
    }
  }

  #tick(members: Map<Session, PingPrecision>): void {
    const now = Date.now();
    const frames: Record<PingPrecision, string> = {
      s: `{"type":"ping","message":${Math.floor(now / 1000)}}`,
      ms: `{"type":"ping","message":${now}}`,
      ns: `{"type":"ping","message":${now * 1_000_000}}`,
    };
    let enforce = false;
    for (const [session, precision] of members) {
      session.sendFrame(frames[precision]);
      if (session.ext) enforce = true;
    }
    if (enforce && this.#pongTimeoutMs > 0) {
      setTimeout(() => {
        for (const session of members.keys()) {
          if (session.ext && session.lastSeen < now) session.disconnect("no_pong", true);
        }
      }, this.#pongTimeoutMs);
    }
  }
}
