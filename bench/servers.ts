/** Starting and stopping the servers under test: a fresh, CPU-pinned process per measurement. */

import { fileURLToPath } from "node:url";

export type Impl = "raw" | "cableway";

export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
export const REPO_DIR = fileURLToPath(new URL("..", import.meta.url));
export const LOG_DIR = `${BENCH_DIR}build/logs`;

export interface ServerOptions {
  impl: Impl;
  /** Core the server is pinned to with taskset. */
  cpu: number;
  /** Extra flags, e.g. `--broker=memory` (Cableway) or `--rpc=<url>` (raw). */
  flags?: string[];
  /** Cableway: start with `--public` (default true; false for the RPC scenarios). */
  public?: boolean;
  /** Log file name under bench/build/logs. */
  logName: string;
}

export interface RunningServer {
  impl: Impl;
  port: number;
  pid: number;
  logPath: string;
  stop(): Promise<void>;
}

export interface Memory {
  rssKb: number;
  hwmKb: number;
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export function cablewayAvailable(): boolean {
  try {
    return Deno.statSync(`${REPO_DIR}main.ts`).isFile;
  } catch {
    return false;
  }
}

function command(impl: Impl, port: number, flags: string[], pub: boolean): string[] {
  if (impl === "raw") {
    return ["deno", "run", "--allow-net", `${BENCH_DIR}raw_server.ts`, `--port=${port}`, ...flags];
  }
  return [
    "deno",
    "run",
    "-A",
    `${REPO_DIR}main.ts`,
    `--port=${port}`,
    ...(pub ? ["--public"] : []),
    `--http_broadcast_port=${port}`,
    "--log_level=error",
    ...flags,
  ];
}

/** HTTP/1.0 `GET /health` answered 200: an HTTP server is up. */
const HTTP_HEALTH = {
  send: "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
  expect: /^HTTP\/1\.[01] 200/,
};
/** `PING` answered `+PONG`: Redis is up. */
const REDIS_HEALTH = { send: "PING\r\n", expect: /^\+PONG/ };

/** One request over a fresh socket; true when the answer matches. Leaves no connection behind. */
async function healthy(port: number, probe = HTTP_HEALTH): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(probe.send));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && probe.expect.test(new TextDecoder().decode(buf.subarray(0, n)));
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a fresh server pinned to `cpu`, with the open-files limit raised, and waits for
 * `GET /health` to answer 200 (at most 30 s).
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const port = freePort();
  const argv = command(opts.impl, port, opts.flags ?? [], opts.public ?? true);
  return {
    impl: opts.impl,
    ...await launch(`${opts.impl} server`, port, opts.cpu, opts.logName, argv),
  };
}

/** A helper process of a scenario (RPC backend, Redis): its pid, port and how to stop it. */
export interface Helper {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** The fake RPC backend (bench/rpc_backend.ts) in its own process, pinned to `cpu`. */
export async function startRpcBackend(cpu: number, logName: string): Promise<Helper> {
  const port = freePort();
  const argv = ["deno", "run", "--allow-net", `${BENCH_DIR}rpc_backend.ts`, `--port=${port}`];
  const s = await launch("rpc backend", port, cpu, logName, argv);
  return { port, pid: s.pid, stop: s.stop };
}

/** The fake gRPC backend: `port` serves /health and /stats. */
export interface GrpcHelper extends Helper {
  /** The gRPC port (`--rpc_host=127.0.0.1:<grpcPort>`). */
  grpcPort: number;
}

const GRPC_BACKEND_DIR = `${BENCH_DIR}grpc_backend/`;

/**
 * Which fake gRPC backend the RPC storm runs: `h2` (default), bench/grpc_backend_h2.ts under
 * Deno, as cheap per call as the HTTP variant's backend; or, with
 * `CABLEWAY_BENCH_GRPC_BACKEND=node-http2|grpc-js`, bench/grpc_backend/main.mjs under the system
 * `node` (node:http2 + protobufjs, or @grpc/grpc-js: a real application's gRPC server).
 */
export function grpcBackendKind(): "h2" | "node-http2" | "grpc-js" {
  const kind = Deno.env.get("CABLEWAY_BENCH_GRPC_BACKEND") ?? "h2";
  if (kind === "h2" || kind === "node-http2" || kind === "grpc-js") return kind;
  throw new Error(`CABLEWAY_BENCH_GRPC_BACKEND=${kind}: expected h2, node-http2 or grpc-js`);
}

function runs(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Makes the fake gRPC backend runnable. The default needs nothing; the node ones need `node`
 * and their pinned packages (bench/grpc_backend/package-lock.json), installed with
 * `npm install` unless they are there already. Returns why it could not (the gRPC variant is
 * then skipped), or null.
 */
export async function prepareGrpcBackend(): Promise<string | null> {
  if (grpcBackendKind() === "h2") return null;
  if (!runs("node") || !runs("npm")) return "node/npm not installed";
  const pkg = JSON.parse(Deno.readTextFileSync(`${GRPC_BACKEND_DIR}package.json`));
  const want = pkg.dependencies["@grpc/grpc-js"];
  try {
    const marker = `${GRPC_BACKEND_DIR}node_modules/@grpc/grpc-js/package.json`;
    if (JSON.parse(Deno.readTextFileSync(marker)).version === want) return null;
  } catch {
    // not installed yet
  }
  const out = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--silent"],
    cwd: GRPC_BACKEND_DIR,
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.success
    ? null
    : `npm install in bench/grpc_backend failed: ${
      new TextDecoder().decode(out.stderr).trim().slice(-300)
    }`;
}

/**
 * The fake gRPC backend (see grpcBackendKind) in its own process, pinned to `cpu`; healthy
 * once its gRPC port is bound.
 */
export async function startGrpcBackend(cpu: number, logName: string): Promise<GrpcHelper> {
  const port = freePort();
  let grpcPort = freePort();
  while (grpcPort === port) grpcPort = freePort();
  const kind = grpcBackendKind();
  const argv = kind === "h2"
    ? [
      "deno",
      "run",
      "--allow-net",
      `${BENCH_DIR}grpc_backend_h2.ts`,
      `--port=${port}`,
      `--grpc_port=${grpcPort}`,
    ]
    : [
      "node",
      `${GRPC_BACKEND_DIR}main.mjs`,
      `--port=${port}`,
      `--grpc_port=${grpcPort}`,
      `--server=${kind === "grpc-js" ? "grpc-js" : "http2"}`,
    ];
  const s = await launch("grpc backend", port, cpu, logName, argv);
  return { port, grpcPort, pid: s.pid, stop: s.stop };
}

/** True when redis-server is installed (the cluster scenario needs it). */
export function hasRedisServer(): boolean {
  for (
    const dir of [
      "/usr/bin",
      "/usr/local/bin",
      "/usr/sbin",
      ...(Deno.env.get("PATH") ?? "").split(":"),
    ]
  ) {
    try {
      if (dir && Deno.statSync(`${dir}/redis-server`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** A throwaway redis-server (no persistence) pinned to `cpu`. */
export async function startRedisServer(cpu: number, logName: string): Promise<Helper> {
  const port = freePort();
  const dir = Deno.makeTempDirSync({ prefix: "cableway_bench_redis_" });
  const argv = [
    "redis-server",
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
  ];
  const removeDir = () => Deno.removeSync(dir, { recursive: true });
  let s: Omit<RunningServer, "impl">;
  try {
    s = await launch("redis-server", port, cpu, logName, argv, REDIS_HEALTH);
  } catch (e) {
    removeDir();
    throw e;
  }
  return {
    port,
    pid: s.pid,
    stop: async () => {
      await s.stop();
      removeDir();
    },
  };
}

/** Spawns `argv` pinned to `cpu` with its output in the log, and waits until `probe` answers. */
async function launch(
  name: string,
  port: number,
  cpu: number,
  logName: string,
  argv: string[],
  probe = HTTP_HEALTH,
): Promise<Omit<RunningServer, "impl">> {
  Deno.mkdirSync(LOG_DIR, { recursive: true });
  const logPath = `${LOG_DIR}/${logName}.log`;
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; log="$1"; shift; ' +
    `exec taskset -c ${cpu} "$@" >"$log" 2>&1 </dev/null`;
  const child = new Deno.Command("bash", {
    args: ["-c", script, "bash", logPath, ...argv],
    cwd: REPO_DIR,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone already
      }
      const timer = setTimeout(() => {
        try {
          if (!exited) child.kill("SIGKILL");
        } catch {
          // gone already
        }
      }, 3000);
      await status;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await healthy(port, probe)) {
      return { port, pid: child.pid, logPath, stop };
    }
    await sleep(50);
  }
  await stop();
  let tail = "";
  try {
    tail = Deno.readTextFileSync(logPath).slice(-2000);
  } catch {
    // no log
  }
  throw new Error(`${name} did not become healthy on port ${port}\n${tail}`);
}

/** VmRSS and VmHWM of a process, from /proc/<pid>/status. */
export function readMemory(pid: number): Memory {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1]);
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
}
