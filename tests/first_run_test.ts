/**
 * A newcomer's first run: a busy port, a flag out of range, a backend that is not there. Each
 * error names what to change; the process exits 2 for usage errors, never with a stack trace.
 */
import assert from "node:assert/strict";
import { ListenError } from "../src/app/listen_error.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(
  script: string,
  args: string[],
): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    // The demo's page needs the development config (deno task demo passes it too).
    args: [
      "run",
      ...(script.startsWith("demo/") ? ["--config", `${ROOT}deno.dev.json`] : []),
      "-A",
      `${ROOT}${script}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    cwd: ROOT,
  }).output();
  const dec = new TextDecoder();
  return { code: res.code, out: dec.decode(res.stdout) + dec.decode(res.stderr) };
}

/** A port something else listens on, for as long as the returned listener stays open. */
function busyPort(): Deno.TcpListener {
  return Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
}

/** A port nothing listens on (bound, then released). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr;
  l.close();
  return port;
}

Deno.test("a busy --port: the error names the port and the flag, exit 2", async () => {
  const busy = busyPort();
  try {
    const { code, out } = await run("main.ts", [
      "--host=127.0.0.1",
      `--port=${busy.addr.port}`,
      "--broadcast_key=k",
      "--norpc",
    ]);
    assert.equal(code, 2, out);
    assert.match(out, new RegExp(`port ${busy.addr.port} on 127\\.0\\.0\\.1 is already in use`));
    assert.match(out, /--port/);
    assert.doesNotMatch(out, /^\s+at /m, "no stack trace");
  } finally {
    busy.close();
  }
});

Deno.test("a busy broadcast port: the error names --http_broadcast_port, the log where /_broadcast listens", async () => {
  const busy = busyPort();
  try {
    const { code, out } = await run("main.ts", [
      "--host=127.0.0.1",
      "--port=0",
      `--http_broadcast_port=${busy.addr.port}`,
      "--norpc",
    ]);
    assert.equal(code, 2, out);
    assert.match(out, new RegExp(`port ${busy.addr.port} .*already in use.*--http_broadcast_port`));
  } finally {
    busy.close();
  }
  // A free broadcast port: the startup log says where publications go.
  const free = closedPort();
  const server = await startServer(["--norpc", `--http_broadcast_port=${free}`]);
  try {
    const warn = server.logs.find((l) => String(l.msg).includes("not authenticated"));
    assert.match(String(warn?.msg), new RegExp(`/_broadcast listens on port ${free}`));
    const listening = server.logs.find((l) => l.msg === "Cableway is listening");
    assert.equal(listening?.broadcast, `http://127.0.0.1:${free}/_broadcast`);
  } finally {
    await server.stop();
  }
});

Deno.test("flags out of range fail at start, naming the flag, exit 2", async () => {
  for (const flag of ["--port=99999", "--history_limit=-5"]) {
    const { code, out } = await run("main.ts", [flag]);
    assert.equal(code, 2, out);
    assert.match(out, new RegExp(`${flag} is out of range`));
  }
  const { code, out } = await run("main.ts", ["--rpc_host=localhost:3000/_anycable"]);
  assert.equal(code, 2, out);
  assert.match(out, /write http:\/\/localhost:3000\/_anycable/);
});

Deno.test("the demo on a busy port: a one-line error naming --port, exit 2", async () => {
  const busy = busyPort();
  try {
    const { code, out } = await run("demo/main.ts", [
      "--host=127.0.0.1",
      `--port=${busy.addr.port}`,
    ]);
    assert.equal(code, 2, out);
    assert.match(out, new RegExp(`demo: port ${busy.addr.port} .*already in use.*--port`));
    assert.doesNotMatch(out, /^\s+at /m, "no stack trace");
  } finally {
    busy.close();
  }
});

for (
  const [kind, target, expected] of [
    ["HTTP", (p: number) => `http://127.0.0.1:${p}/_anycable`, (p: number) =>
      new RegExp(
        `connect: backend http://127\\.0\\.0\\.1:${p}/_anycable/connect unreachable: .*Connection refused`,
      )],
    [
      "gRPC",
      (p: number) => `127.0.0.1:${p}`,
      (p: number) =>
        new RegExp(`connect: gRPC backend 127\\.0\\.0\\.1:${p} unreachable: .*Connection refused`),
    ],
  ] as const
) {
  Deno.test(`no ${kind} backend: the log names the target and the cause`, async () => {
    const port = closedPort();
    const server = await startServer([`--rpc_host=${target(port)}`, "--rpc_request_timeout=300"]);
    try {
      const c = new WsClient(server.wsUrl);
      const msg = await c.waitFor((f) => f.type === "disconnect", 20000);
      assert.equal(msg.reason, "server_error");
      await c.close();
      const line = server.logs.find((l) => l.msg === "Connect RPC failed");
      assert.match(String(line?.error), expected(port));
      assert.doesNotMatch(String(line?.error), /fetch failed|http:\/\/127\.0\.0\.1:\d+ unreach/);
    } finally {
      await server.stop();
    }
  });
}

Deno.test("a second keyless instance: the taken default port 8090 is named with --http_broadcast_port", async () => {
  // Hold 127.0.0.1:8090 for the test (if something else already holds it, it is taken anyway).
  let held: Deno.TcpListener | undefined;
  try {
    held = Deno.listen({ hostname: "127.0.0.1", port: 8090, transport: "tcp" });
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
  }
  try {
    const err = await startServer(["--norpc", "--broadcast_key=none"]).then(
      async (server) => {
        await server.stop();
        return undefined;
      },
      (e) => e,
    );
    assert.ok(err instanceof ListenError, `expected a ListenError, got ${err}`);
    assert.match(
      err.message,
      /port 8090 on 127\.0\.0\.1 is already in use: choose another with --http_broadcast_port; without --broadcast_key or --secret/,
    );
  } finally {
    held?.close();
  }
});
