/**
 * The README's process-manager commands: the deno binary itself (`deno task start`, or
 * `deno run … main.ts`) receives SIGTERM and shuts down gracefully, leaving nothing behind.
 * (`npx deno …` does not forward signals: the server would be left running as an orphan.)
 */
import assert from "node:assert/strict";
import { spawnServer } from "./support/process.ts";
import { WsClient } from "./support/ws_client.ts";

const PERMS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];

for (
  const [label, cmd] of [
    ["deno task start", [Deno.execPath(), "task", "start"]],
    ["deno run <permissions> main.ts", [Deno.execPath(), "run", ...PERMS, "main.ts"]],
  ] as const
) {
  Deno.test(`process manager: SIGTERM to \`${label}\` shuts down gracefully, exit 0, port released`, async () => {
    const server = await spawnServer(["--norpc", "--public", "--broadcast_key=k"], {
      cmd: [...cmd],
    });
    const c = new WsClient(`ws://127.0.0.1:${server.port}/cable`);
    await c.waitFor((f) => f.type === "welcome");
    server.child.kill("SIGTERM");
    const msg = await c.waitFor((f) => f.type === "disconnect", 15000);
    assert.deepEqual(msg, { type: "disconnect", reason: "server_restart", reconnect: true });
    assert.equal((await c.closed).code, 1001);
    assert.equal(await server.exited, 0);
    assert.ok(server.lines.some((l) => l.msg === "stopped"), JSON.stringify(server.lines));
    // Nothing is left listening: the port can be bound again.
    const l = Deno.listen({ hostname: "127.0.0.1", port: server.port });
    l.close();
  });
}
