import type { Session } from "./session.ts";

export type PingPrecision = "s" | "ms" | "ns";

/**
 * The ping clock's resolution: intervals are whole seconds, due times whole ticks. Fine enough
 * that the sessions of a connection storm, each pinged at the tick it connected at, are spread
 * thinly: 10k sessions connected within 2 s make ~50 pings per tick instead of ~500 in one
 * burst every 100 ms, which delayed the deliveries queued behind them.
 */
const TICK_MS = 10;
const TICKS_PER_SECOND = 1000 / TICK_MS;

/** The longest ping interval a client may ask for with `?pi=` (seconds); longer is clamped. */
export const MAX_PING_INTERVAL = 3600;

/**
 * The ping interval for a connection: `?pi=` when it is a whole number of seconds (0 turns
 * pings off, more than MAX_PING_INTERVAL is clamped to it), else the server's default.
 */
export function pingIntervalParam(pi: string | null, fallback: number): number {
  if (pi === null || !/^\d{1,12}$/.test(pi)) return fallback;
  return Math.min(Number(pi), MAX_PING_INTERVAL);
}

/**
 * One clock for every session, whatever its interval: a single 10 ms ticker and a map from due
 * tick to the sessions due then. Each tick pings only the sessions due at it (each ping encoded
 * once per tick and precision) and files them again one interval later, so sessions spread over
 * the interval by the time they connected and no distinct `?pi=` creates a timer of its own.
 * With `pongTimeout`, ext-protocol members that sent nothing within that time after their ping
 * are disconnected with `no_pong`.
 */
export class Pinger {
  readonly #due = new Map<number, Map<Session, PingPrecision>>();
  readonly #pongTimeoutMs: number;
  #tickNo = 0;
  #members = 0;
  #timer?: ReturnType<typeof setInterval>;

  constructor(opts: { pongTimeoutSeconds: number }) {
    this.#pongTimeoutMs = opts.pongTimeoutSeconds * 1000;
  }

  /** Pings `session` every `intervalSeconds` (a whole number > 0), the first one interval from now. */
  add(session: Session, intervalSeconds: number, precision: PingPrecision): void {
    session.pingInterval = intervalSeconds;
    this.#file(session, precision, this.#tickNo + intervalSeconds * TICKS_PER_SECOND);
    if (this.#members++ === 0) {
      this.#timer = setInterval(() => this.#tick(), TICK_MS);
    }
  }

  /** Forgets a closed session. */
  remove(session: Session): void {
    if (session.pingInterval <= 0) return;
    const slot = this.#due.get(session.pingDue);
    if (!slot?.delete(session)) return;
    if (slot.size === 0) this.#due.delete(session.pingDue);
    if (--this.#members === 0) this.#stop();
  }

  close(): void {
    this.#stop();
    this.#due.clear();
    this.#members = 0;
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #file(session: Session, precision: PingPrecision, due: number): void {
    let slot = this.#due.get(due);
    if (!slot) this.#due.set(due, slot = new Map());
    slot.set(session, precision);
    session.pingDue = due;
  }

  #tick(): void {
    const now = ++this.#tickNo;
    const members = this.#due.get(now);
    if (!members) return;
    const time = Date.now();
    const frames: Record<PingPrecision, string> = {
      s: `{"type":"ping","message":${Math.floor(time / 1000)}}`,
      ms: `{"type":"ping","message":${time}}`,
      ns: `{"type":"ping","message":${time * 1_000_000}}`,
    };
    let pinged: Session[] | undefined;
    for (const [session, precision] of members) {
      this.#file(session, precision, now + session.pingInterval * TICKS_PER_SECOND);
      session.sendFrame(frames[precision]);
      if (session.ext && this.#pongTimeoutMs > 0) (pinged ??= []).push(session);
    }
    // Dropped only now: a session closing during the loop is still found (and counted) by remove.
    this.#due.delete(now);
    if (pinged) {
      setTimeout(() => {
        for (const session of pinged) {
          if (session.lastSeen < time) session.disconnect("no_pong", true);
        }
      }, this.#pongTimeoutMs);
    }
  }
}
