/**
 * Real redis-server / nats-server processes for adapter tests: each on a free local port with
 * its own temp dir, ready when it accepts TCP connections; `restart()` comes back on the same
 * port (fault tests).
 */

export interface ServiceHandle {
  /** redis://127.0.0.1:PORT or nats://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Graceful stop (SIGTERM) and temp dir removal. Idempotent. */
  stop(): Promise<void>;
  /** Hard kill (SIGKILL), keeps the temp dir for `restart()`. */
  kill(): Promise<void>;
  /** Kills the process if it runs and launches it again on the same port. */
  restart(): Promise<void>;
}

export class ServiceStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServiceStartError";
  }
}

const READY_TIMEOUT_MS = 10_000;
const EXTRA_BIN_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];

/** Absolute path of `name` on PATH (or a usual sbin dir), or null. */
export function findBinary(name: string): string | null {
  const path = Deno.env.get("PATH") ?? "";
  const dirs = [...path.split(":").filter((d) => d !== ""), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function available(bin: string): boolean {
  if (findBinary(bin) !== null) return true;
  console.warn(`${bin} not installed: skipping`);
  return false;
}

/** True when redis-server exists; otherwise prints "redis-server not installed: skipping". */
export function hasRedis(): boolean {
  return available("redis-server");
}

/** True when nats-server exists; otherwise prints "nats-server not installed: skipping". */
export function hasNats(): boolean {
  return available("nats-server");
}

export function startRedis(): Promise<ServiceHandle> {
  return startService({
    bin: "redis-server",
    scheme: "redis",
    args: (port, dir) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--logfile",
      `${dir}/server.log`,
    ],
  });
}

export function startNats(opts: { jetstream?: boolean } = {}): Promise<ServiceHandle> {
  return startService({
    bin: "nats-server",
    scheme: "nats",
    args: (port, dir) => [
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "-l",
      `${dir}/server.log`,
      ...(opts.jetstream ? ["-js", "-sd", `${dir}/jetstream`] : []),
    ],
  });
}

interface ServiceSpec {
  bin: string;
  scheme: string;
  args(port: number, dir: string): string[];
}

async function startService(spec: ServiceSpec): Promise<ServiceHandle> {
  const bin = findBinary(spec.bin);
  if (bin === null) throw new ServiceStartError(`${spec.bin} not installed`);
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: `cableway_${spec.bin}_` });
  const service = new ManagedProcess(bin, spec.args(port, dir), port, dir);
  try {
    await service.launch();
  } catch (err) {
    await service.stop();
    throw err;
  }
  return {
    url: `${spec.scheme}://127.0.0.1:${port}`,
    port,
    stop: () => service.stop(),
    kill: () => service.kill(),
    restart: () => service.restart(),
  };
}

class ManagedProcess {
  #child?: Deno.ChildProcess;
  #stopped = false;

  constructor(
    readonly bin: string,
    readonly args: string[],
    readonly port: number,
    readonly dir: string,
  ) {}

  async launch(): Promise<void> {
    const child = new Deno.Command(this.bin, {
      args: this.args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    let exited = false;
    const exit = child.status.then((s) => {
      exited = true;
      return s;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) break;
      if (await canConnect(this.port)) return;
      await Promise.race([delay(25), exit]);
    }
    const log = await Deno.readTextFile(`${this.dir}/server.log`).catch(() => "");
    const reason = exited ? `exited with ${(await exit).code}` : "did not accept connections";
    throw new ServiceStartError(
      `${this.bin} on port ${this.port} ${reason} within ${READY_TIMEOUT_MS} ms\n${log}`,
    );
  }

  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  async restart(): Promise<void> {
    if (this.#stopped) throw new ServiceStartError(`${this.bin} was stopped for good`);
    await this.#terminate("SIGKILL");
    await this.launch();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#terminate("SIGTERM");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async #terminate(signal: Deno.Signal): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    const hard = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, 5_000);
    try {
      await child.status;
    } finally {
      clearTimeout(hard);
    }
  }
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A `redis-server` or `redis-sentinel` with the caller's arguments (TLS, replication, a
 * sentinel configuration written into `dir`), on a free port, ready when it accepts TCP.
 */
export function startRedisCustom(
  bin: "redis-server" | "redis-sentinel",
  args: (port: number, dir: string) => string[],
): Promise<ServiceHandle> {
  return startService({ bin, scheme: "redis", args });
}

export function hasRedisSentinel(): boolean {
  return findBinary("redis-sentinel") !== null;
}
