/**
 * Runs tests/support/grpc_fault_backend.mjs under the system `node` as a separate process and
 * drives it: switch fault modes (each acknowledged), count the streams it saw, kill it with
 * SIGKILL, shut it down gracefully, restart it on the same port.
 */
import { Inbox } from "./wait.ts";
import { lines } from "./lines.ts";

const SCRIPT = new URL("./grpc_fault_backend.mjs", import.meta.url).pathname;

export type FaultMode =
  | "ok"
  | "goaway"
  | "goawaystall"
  | "goaway2"
  | "rst"
  | "stall"
  | "half"
  | "slow"
  | "silent"
  | "garbage"
  | "halfframe"
  | "hugeframe"
  | "badhpack";

/** Whether a `node` binary is on PATH (the fault backend needs one). */
export function hasNode(): boolean {
  try {
    return new Deno.Command("node", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

export class FaultBackend {
  #child!: Deno.ChildProcess;
  #events = new Inbox<Record<string, unknown>>();
  #writer!: WritableStreamDefaultWriter<Uint8Array>;
  port = 0;
  /** Incarnations started so far. */
  starts = 0;

  /** TLS (ALPN h2) with these PEM files instead of h2c; raw modes do not apply then. */
  #tls: string[] = [];

  static async start(port = 0, tls?: { keyPath: string; certPath: string }): Promise<FaultBackend> {
    const backend = new FaultBackend();
    if (tls) backend.#tls = [tls.keyPath, tls.certPath];
    await backend.#spawn(port);
    return backend;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Streams the current incarnation has seen. */
  get streams(): number {
    return this.#events.items.filter((e) => e.event === "stream").length;
  }

  async #spawn(port: number): Promise<void> {
    this.#events = new Inbox();
    this.#child = new Deno.Command("node", {
      args: [SCRIPT, String(port), ...this.#tls],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const events = this.#events;
    (async () => {
      for await (const line of lines(this.#child.stdout)) events.push(JSON.parse(line));
      events.wake();
    })().catch(() => events.wake());
    await events.waitFor((es) => es.some((e) => e.event === "listening"), 15000, "fault backend");
    this.port = events.items.find((e) => e.event === "listening")!.port as number;
    this.starts++;
  }

  async #send(cmd: Record<string, unknown>): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  }

  async setMode(mode: FaultMode): Promise<void> {
    const acks = this.#events.items.filter((e) => e.event === "mode").length;
    await this.#send({ mode });
    await this.#events.waitFor(
      (es) => es.filter((e) => e.event === "mode").length > acks,
      10000,
      `mode ${mode} ack`,
    );
  }

  /** Resolves once the current incarnation has seen `n` streams. */
  waitForStreams(n: number, timeoutMs = 10000): Promise<void> {
    return this.#events.waitFor(
      (es) => es.filter((e) => e.event === "stream").length >= n,
      timeoutMs,
      "fault backend streams",
    );
  }

  /** Resolves once the current incarnation has accepted `n` TCP connections. */
  waitForConnections(n: number, timeoutMs = 10000): Promise<void> {
    return this.#events.waitFor(
      (es) => es.filter((e) => e.event === "conn").length >= n,
      timeoutMs,
      "fault backend connections",
    );
  }

  /** SIGKILL, then wait for the exit. */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child.status;
    await this.#writer.close().catch(() => {});
  }

  /** Graceful shutdown (GOAWAY to every session), then wait for the exit. */
  async shutdown(): Promise<void> {
    await this.#send({ shutdown: true }).catch(() => {});
    await this.#child.status;
    await this.#writer.close().catch(() => {});
  }

  /** A new incarnation on the same port (retried while the port is still held). */
  async restart(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        await this.#spawn(this.port);
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}
