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
  /** Extra Cableway flags, e.g. `--broker=memory`. */
  flags?: string[];
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

function command(impl: Impl, port: number, flags: string[]): string[] {
  if (impl === "raw") {
    return ["deno", "run", "--allow-net", `${BENCH_DIR}raw_server.ts`, `--port=${port}`];
  }
  return [
    "deno",
    "run",
    "-A",
    `${REPO_DIR}main.ts`,
    `--port=${port}`,
    "--public",
    `--http_broadcast_port=${port}`,
    "--log_level=error",
    ...flags,
  ];
}

/** One HTTP/1.0 GET over a fresh socket; true on a 200. Leaves no pooled connection behind. */
async function healthy(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && /^HTTP\/1\.[01] 200/.test(new TextDecoder().decode(buf.subarray(0, n)));
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
  Deno.mkdirSync(LOG_DIR, { recursive: true });
  const port = freePort();
  const logPath = `${LOG_DIR}/${opts.logName}.log`;
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; log="$1"; shift; ' +
    `exec taskset -c ${opts.cpu} "$@" >"$log" 2>&1 </dev/null`;
  const child = new Deno.Command("bash", {
    args: ["-c", script, "bash", logPath, ...command(opts.impl, port, opts.flags ?? [])],
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
    if (await healthy(port)) return { impl: opts.impl, port, pid: child.pid, logPath, stop };
    await sleep(50);
  }
  await stop();
  let tail = "";
  try {
    tail = Deno.readTextFileSync(logPath).slice(-2000);
  } catch {
    // no log
  }
  throw new Error(`${opts.impl} server did not become healthy on port ${port}\n${tail}`);
}

/** VmRSS and VmHWM of a process, from /proc/<pid>/status. */
export function readMemory(pid: number): Memory {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1]);
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
}
