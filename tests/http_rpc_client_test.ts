import assert from "node:assert/strict";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";
import { freePort } from "./support/services.ts";
import { lines } from "./support/lines.ts";

/**
 * HTTP RPC under a backend crash, with both clients (`--rpc_http_client=native`, the default,
 * and `fetch`): the backend process is killed -9 while sessions keep connecting, and started
 * again on the same port. Every session still gets its welcome (Connect calls are retried
 * within the call budget), and the server keeps serving.
 */

const BACKEND = new URL("./support/http_rpc_backend_main.ts", import.meta.url).pathname;

/** The backend process; its call log lines land in `calls`. */
async function backend(port: number, calls: { method: string; sid: string }[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", BACKEND, String(port)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const listening = Promise.withResolvers<void>();
  (async () => {
    for await (const text of lines(child.stdout)) {
      const line = JSON.parse(text);
      if (line.listening) listening.resolve();
      else calls.push(line);
    }
  })().catch(() => {});
  const timer = setTimeout(() => listening.reject(new Error("backend did not start")), 20_000);
  await listening.promise.finally(() => clearTimeout(timer));
  return {
    kill: async () => {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

for (const transport of ["native", "fetch"]) {
  Deno.test(`HTTP RPC (${transport}): the backend killed -9 and restarted while sessions connect`, async () => {
    const port = freePort();
    const calls: { method: string; sid: string }[] = [];
    let proc = await backend(port, calls);
    const server = await startServer([
      `--rpc_host=http://127.0.0.1:${port}/_anycable`,
      `--rpc_http_client=${transport}`,
    ], "info");
    const clients: WsClient[] = [];
    try {
      const welcomes: Promise<unknown>[] = [];
      const N = 40;
      for (let i = 0; i < N; i++) {
        if (i === 10) await proc.kill(); // sessions 10..24 connect while it is down
        if (i === 25) proc = await backend(port, calls);
        const c = new WsClient(server.wsUrl);
        clients.push(c);
        welcomes.push(c.waitFor((f) => f.type === "welcome", 15_000));
        await new Promise((r) => setTimeout(r, 20));
      }
      await Promise.all(welcomes);
      // the command path works on the restarted backend, and a fresh session is served
      const last = new WsClient(server.wsUrl);
      clients.push(last);
      await last.waitFor((f) => f.type === "welcome", 10_000);
      const identifier = JSON.stringify({ channel: "C" });
      last.send({ command: "subscribe", identifier });
      await last.waitFor((f) => f.type === "confirm_subscription", 10_000);
      const connects = calls.filter((c) => c.method === "connect");
      const perSid = new Map<string, number>();
      for (const c of connects) perSid.set(c.sid, (perSid.get(c.sid) ?? 0) + 1);
      const repeated = [...perSid.values()].filter((n) => n > 1).length;
      console.log(
        `${transport}: ${N + 1} sessions welcomed; ${connects.length} Connect calls reached the ` +
          `backend for ${perSid.size} sids (${repeated} sids answered more than once: calls the ` +
          `killed process had taken)`,
      );
      assert.equal(perSid.size, N + 1);
      assert.ok(repeated <= 10, `${repeated} sids called more than once`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      await proc.kill();
    }
  });
}
