/** What the watchdog reads of a session: bytes handed to its socket, and whether it is open. */
export interface WriteWatched {
  readonly open: boolean;
  /** UTF-8 bytes handed to the socket so far. */
  readonly sentBytes: number;
  /** Of those, bytes the socket has not written yet (`WebSocket.bufferedAmount`). */
  readonly pendingBytes: number;
  /** Set while the watchdog holds this session (so it is added once). */
  writeWatched: boolean;
}

/** Checks per timeout: a stalled write is caught between `timeout` and `timeout × 1.25`. */
const TICKS = 4;

/**
 * The write timeout: a session whose socket has not written bytes handed to it more than
 * `timeoutMs` ago is stalled, and `onTimeout` gets it. Deno's WebSocket shows no per-write
 * completion, only `bufferedAmount`; so each watched session carries a mark (its sentBytes when
 * last checked) and the bytes written so far (sent − pending) must pass it within the timeout.
 *
 * One ticker for all sessions, running only while some session has bytes pending. Sessions
 * join through `watch` when their socket holds more than the frame just sent. A tick that fires
 * late (the event loop was busy, so the server was slow, not the client) does not count.
 */
export class WriteWatchdog<S extends WriteWatched> {
  readonly #intervalMs: number;
  readonly #onTimeout: (session: S) => void;
  #sessions: S[] = [];
  #marks: number[] = [];
  #ticks: number[] = [];
  #timer?: ReturnType<typeof setInterval>;
  #lastTick = 0;

  constructor(timeoutMs: number, onTimeout: (session: S) => void) {
    this.#intervalMs = Math.max(1, timeoutMs / TICKS);
    this.#onTimeout = onTimeout;
  }

  /** Sessions currently watched (for tests and stats). */
  get size(): number {
    return this.#sessions.length;
  }

  watch(session: S): void {
    if (session.writeWatched) return;
    session.writeWatched = true;
    this.#sessions.push(session);
    this.#marks.push(session.sentBytes);
    this.#ticks.push(0);
    if (this.#timer === undefined) {
      this.#lastTick = performance.now();
      this.#timer = setInterval(() => this.tick(performance.now()), this.#intervalMs);
      Deno.unrefTimer(this.#timer);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const s of this.#sessions) s.writeWatched = false;
    this.#sessions = [];
    this.#marks = [];
    this.#ticks = [];
  }

  /** One check; the ticker calls it every timeout / 4 (tests call it with their own clock). */
  tick(now: number): void {
    const onTime = now - this.#lastTick < this.#intervalMs * 2;
    this.#lastTick = now;
    const sessions = this.#sessions, marks = this.#marks, ticks = this.#ticks;
    const timedOut: S[] = [];
    let kept = 0;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i];
      const pending = s.open ? s.pendingBytes : 0;
      if (pending <= 0) {
        s.writeWatched = false;
        continue;
      }
      let mark = marks[i], count = ticks[i];
      if (s.sentBytes - pending >= mark) {
        // Everything handed over by the last mark is written: a new mark, a new count.
        mark = s.sentBytes;
        count = 0;
      } else if (onTime && ++count > TICKS) {
        s.writeWatched = false;
        timedOut.push(s);
        continue;
      }
      sessions[kept] = s;
      marks[kept] = mark;
      ticks[kept] = count;
      kept++;
    }
    sessions.length = marks.length = ticks.length = kept;
    if (kept === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    for (const s of timedOut) this.#onTimeout(s);
  }
}
