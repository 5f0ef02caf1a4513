import assert from "node:assert/strict";
import { FakeRpc } from "./support/fake_rpc.ts";
import { spawnServer } from "./support/process.ts";
import { WsClient } from "./support/ws_client.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("SIGTERM: clients get server_restart, Disconnect calls are flushed, exit 0", async () => {
  const rpc = new FakeRpc();
  const server = await spawnServer([
    `--rpc_host=${rpc.url}`,
    "--disconnect_rate=1",
    "--broadcast_key=k",
  ]);
  try {
    const clients = Array.from(
      { length: 5 },
      () => new WsClient(`ws://127.0.0.1:${server.port}/cable`),
    );
    await Promise.all(clients.map((c) => c.waitFor((f) => f.type === "welcome")));
    server.child.kill("SIGTERM");
    for (const c of clients) {
      const msg = await c.waitFor((f) => f.type === "disconnect");
      assert.deepEqual(msg, { type: "disconnect", reason: "server_restart", reconnect: true });
      assert.equal((await c.closed).code, 1001);
    }
    assert.equal(await server.exited, 0);
    // Rate-limited to 1/s while serving, but all 5 were flushed at shutdown.
    assert.equal(rpc.calls("disconnect").length, 5);
  } finally {
    await rpc.stop();
  }
});

Deno.test("a second signal exits at once", async () => {
  // A backend that never answers Disconnect keeps the first shutdown waiting.
  const hang = Promise.withResolvers<Record<string, unknown>>();
  const rpc = new FakeRpc({ disconnect: () => hang.promise });
  const server = await spawnServer([
    `--rpc_host=${rpc.url}`,
    "--shutdown_timeout=60",
    "--rpc_request_timeout=60000",
    "--broadcast_key=k",
  ]);
  try {
    const c = new WsClient(`ws://127.0.0.1:${server.port}/cable`);
    await c.waitFor((f) => f.type === "welcome");
    server.child.kill("SIGTERM");
    await rpc.waitFor((r) => r.some((x) => x.method === "disconnect"));
    const t = Date.now();
    server.child.kill("SIGINT");
    assert.equal(await server.exited, 1);
    assert.ok(Date.now() - t < 5000);
  } finally {
    hang.resolve({ status: 1 });
    await rpc.stop();
  }
});

Deno.test("startup errors: unknown flag exits 2 naming it; --help lists flags", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const bad = await run(["--bogus_flag=1"]);
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown flag: --bogus_flag/);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--rpc_host=STRING/);
  const signed = await run(["sign-stream", "chat/2023", "--secret=s3Krit"]);
  assert.equal(
    new TextDecoder().decode(signed.stdout).trim(),
    "ImNoYXQvMjAyMyI=--2b2e054b6413bf3bc7e8bbad2f68962aa2ba19821800ccbd8de6fd7314e8320c",
  );
});

/**
 * Why `deno compile` cannot run here, or null when it can: it needs the denort runtime, from
 * DENORT_BIN, the Deno cache, or dl.deno.land (one bounded HEAD request).
 */
async function denortUnavailable(): Promise<string | null> {
  if (Deno.env.get("DENORT_BIN")) return null;
  const home = Deno.env.get("HOME") ?? "";
  const cache = Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`;
  const zip = `denort-${Deno.build.target}.zip`;
  const cached = `${cache}/dl/release/v${Deno.version.deno}/${zip}`;
  if (await Deno.stat(cached).then(() => true, () => false)) return null;
  const url = `https://dl.deno.land/release/v${Deno.version.deno}/${zip}`;
  try {
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    if (res.ok) return null;
    return `dl.deno.land answered ${res.status} for the denort runtime`;
  } catch (err) {
    return `the denort runtime cannot be downloaded from dl.deno.land (${
      err instanceof Error ? err.message : String(err)
    }); set DENORT_BIN to a local denort binary to run it`;
  }
}

const noDenort = await denortUnavailable();
if (noDenort) console.log(`ignoring the compile test: ${noDenort}`);

Deno.test({
  name: `deno task compile builds one binary that serves clients${
    noDenort ? ` (ignored: ${noDenort})` : ""
  }`,
  ignore: noDenort !== null,
  fn: async () => {
    // The task itself, as a user runs it: it writes dist/cableway.
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      stdout: "piped",
      stderr: "piped",
      cwd: ROOT,
    }).output();
    assert.ok(build.success, new TextDecoder().decode(build.stderr));
    const server = await spawnServer(["--norpc", "--public", "--broadcast_key=k"], {
      cmd: [`${ROOT}dist/cableway`],
    });
    try {
      const c = new WsClient(`ws://127.0.0.1:${server.port}/cable`);
      await c.waitFor((f) => f.type === "welcome");
      await c.close();
    } finally {
      server.child.kill("SIGTERM");
      assert.equal(await server.exited, 0);
    }
  },
});

Deno.test("a KV file that cannot be opened is a startup error naming the path", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}main.ts`,
      "--port=0",
      "--norpc",
      "--broker=kv",
      "--kv_path=/nonexistent-dir/cableway.db",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(new TextDecoder().decode(out.stderr), /\/nonexistent-dir\/cableway\.db/);
});
