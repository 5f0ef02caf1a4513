import type { Session } from "./session.ts";

export type PingPrecision = "s" | "ms" | "ns";

/** Pings of one interval are spread over this many slices, so no tick pings everyone at once. */
const SLICES = 10;

interface Group {
  timer: ReturnType<typeof setInterval>;
  slices: Array<Map<Session, PingPrecision>>;
  next: number;
  size: number;
}

/**
 * One ticker per ping interval for all sessions (not a timer per session). Members are spread
 * over SLICES slices ticking in turn, each ping encoded once per tick and precision. With
 * `pongTimeout`, ext-protocol members that sent nothing within that time after their ping are
 * disconnected with `no_pong`.
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
      const g: Group = {
        slices: Array.from({ length: SLICES }, () => new Map()),
        next: 0,
        size: 0,
        timer: setInterval(() => {
          this.#tick(g.slices[g.next]);
          g.next = (g.next + 1) % SLICES;
        }, ms / SLICES),
      };
      group = g;
      this.#groups.set(ms, g);
    }
    // The slice ticking last: this session's first ping comes one full interval from now.
    const slice = (group.next + SLICES - 1) % SLICES;
    group.slices[slice].set(session, precision);
    group.size++;
    session.pingInterval = intervalSeconds;
    session.pingSlice = slice;
  }

  /** Forgets a closed session. */
  remove(session: Session): void {
    if (session.pingInterval <= 0) return;
    const ms = session.pingInterval * 1000;
    const group = this.#groups.get(ms);
    if (!group || !group.slices[session.pingSlice].delete(session)) return;
    if (--group.size === 0) {
      clearInterval(group.timer);
      this.#groups.delete(ms);
    }
  }

  close(): void {
    for (const group of this.#groups.values()) clearInterval(group.timer);
    this.#groups.clear();
  }

  #tick(members: Map<Session, PingPrecision>): void {
    if (members.size === 0) return;
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
      const pinged = [...members.keys()].filter((s) => s.ext);
      setTimeout(() => {
        for (const session of pinged) {
          if (session.lastSeen < now) session.disconnect("no_pong", true);
        }
      }, this.#pongTimeoutMs);
    }
  }
}
