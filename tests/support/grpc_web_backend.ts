/**
 * Starts grpc_web_backend_main.ts (a Connect gRPC-web server for `anycable.RPC`) as its own
 * Deno process and collects the calls it prints.
 */
import { Inbox } from "./wait.ts";
import { lines } from "./lines.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("./grpc_web_backend_main.ts", import.meta.url).pathname;

export interface GrpcWebCall {
  method: "connect" | "command" | "disconnect" | "aborted";
  request: Record<string, unknown>;
  headers: Record<string, string | null>;
  reason?: string;
}

export interface GrpcWebBackendOptions {
  /** Fixed ports (to restart on the same address); 0 = any. */
  port?: number;
  textPort?: number;
  /** Serve https with this certificate and key (PEM files) issued by `caFile`. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export class GrpcWebBackend {
  readonly #child: Deno.ChildProcess;
  readonly #inbox = new Inbox<GrpcWebCall>();
  readonly calls = this.#inbox.items;
  readonly #exited: Promise<Deno.CommandStatus>;
  port = 0;
  textPort = 0;
  readonly #scheme: string;

  private constructor(child: Deno.ChildProcess, scheme: string) {
    this.#child = child;
    this.#scheme = scheme;
    this.#exited = child.status;
  }

  static async start(opts: GrpcWebBackendOptions = {}): Promise<GrpcWebBackend> {
    const args = [
      "run",
      "--config",
      "deno.dev.json",
      "-A",
      MAIN,
      String(opts.port ?? 0),
      String(opts.textPort ?? 0),
    ];
    if (opts.tls) args.push(opts.tls.certFile, opts.tls.keyFile, opts.tls.caFile);
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const backend = new GrpcWebBackend(child, opts.tls ? "https" : "http");
    const ready = Promise.withResolvers<void>();
    (async () => {
      for await (const line of lines(child.stdout)) {
        let value: Record<string, unknown>;
        try {
          value = JSON.parse(line);
        } catch {
          continue;
        }
        if (value.ready) {
          backend.port = value.port as number;
          backend.textPort = value.textPort as number;
          ready.resolve();
        } else backend.#inbox.push(value as unknown as GrpcWebCall);
      }
      ready.reject(new Error("gRPC-web backend exited before it was ready"));
    })();
    const timer = setTimeout(
      () => ready.reject(new Error("gRPC-web backend not ready in 60 s")),
      60_000,
    );
    try {
      await ready.promise;
    } catch (err) {
      await backend.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return backend;
  }

  /** Base URL of the binary gRPC-web port. */
  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.port}`;
  }

  /** Base URL of the grpc-web-text port. */
  get textUrl(): string {
    return `${this.#scheme}://127.0.0.1:${this.textPort}`;
  }

  of(method: GrpcWebCall["method"]): GrpcWebCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  waitFor(pred: (calls: GrpcWebCall[]) => boolean, timeoutMs = 10_000): Promise<void> {
    return this.#inbox.waitFor(
      pred,
      timeoutMs,
      () => `gRPC-web calls ${JSON.stringify(this.calls)}`,
    );
  }

  /** SIGKILL (a dead backend); resolves once the process is gone. */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#exited;
  }
}
