import { ERR, errorFrame, PING_FRAME } from "./protocol.ts";

/** What the activity check reads and does on a socket (a PusherSession). */
export interface ActivityTracked {
  readonly open: boolean;
  /** When the last frame arrived from the client (ms). */
  lastSeen: number;
  /** When the server pinged a silent client (ms), until it answers. */
  pingSentAt?: number;
  sendFrame(frame: string): void;
  close(code: number, reason: string): void;
}

/**
 * Pusher's server side of keepalive: a client silent for the activity timeout gets a
 * `pusher:ping`; one that still sends nothing within the pong timeout is closed with 4201
 * ("pong reply not received", reconnect at once). pusher-js answers pings by itself.
 */
export class ActivityCheck {
  readonly #activityMs: number;
  readonly #pongMs: number;

  constructor(activityMs: number, pongMs: number) {
    this.#activityMs = activityMs;
    this.#pongMs = pongMs;
  }

  /** How often sweep() should run to keep both timeouts within a third of their length. */
  get every(): number {
    return Math.max(100, Math.min(this.#activityMs, this.#pongMs) / 3);
  }

  sweep(sockets: Iterable<ActivityTracked>, now: number): void {
    for (const s of sockets) {
      if (!s.open) continue;
      if (s.pingSentAt !== undefined) {
        if (s.lastSeen >= s.pingSentAt) s.pingSentAt = undefined;
        else if (now - s.pingSentAt >= this.#pongMs) {
          s.sendFrame(errorFrame(ERR.noPong, "Pong reply not received"));
          s.close(ERR.noPong, "pong reply not received");
          continue;
        } else continue;
      }
      if (now - s.lastSeen >= this.#activityMs) {
        s.pingSentAt = now;
        s.sendFrame(PING_FRAME);
      }
    }
  }
}
