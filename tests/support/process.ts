/** Runs `main.ts` as a child process and reads its JSON log lines. */

import { lines as textLines } from "./lines.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface ServerProcess {
  child: Deno.ChildProcess;
  port: number;
  lines: Array<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<void>;
}

export async function spawnServer(
  args: string[],
  opts: { cmd?: string[]; env?: Record<string, string>; cwd?: string } = {},
): Promise<ServerProcess> {
  const cmd = opts.cmd ?? [Deno.execPath(), "run", "-A", `${ROOT}main.ts`];
  const child = new Deno.Command(cmd[0], {
    args: [...cmd.slice(1), "--host=127.0.0.1", "--port=0", "--log_format=json", ...args],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
  }).spawn();
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  (async () => {
    for await (const line of textLines(child.stderr)) {
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ msg: line });
      }
      for (const w of waiters.splice(0)) w();
    }
  })();
  const exited = child.status.then((s) => s.code);
  const waitForLog = async (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30000) => {
    const deadline = Date.now() + timeoutMs;
    while (!lines.some(pred)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`log line not seen; got: ${JSON.stringify(lines)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  await waitForLog((l) => l.msg === "Cableway is listening" || l.msg === "failed to start");
  const listening = lines.find((l) => l.msg === "Cableway is listening");
  if (!listening) throw new Error(`server failed to start: ${JSON.stringify(lines)}`);
  const port = Number(String(listening.addr).split(":").pop());
  return { child, port, lines, exited, waitForLog };
}
