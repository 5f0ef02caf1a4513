/**
 * Deno Deploy emulation: Cableway PROCESSES sharing one KV file stand in for Deploy isolates
 * sharing one KV database (`--broker=kv --pubsub=kv`). Deploy itself is not reachable from
 * the test machine; what differs there is listed in deploy/README.md.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../src/config/config.ts";
import { deployEnv, deployProblem, deployRpcWarning, main } from "../deploy/main.ts";
import { GrpcWebBackend } from "./support/grpc_web_backend.ts";
import { type ServerProcess, spawnServer } from "./support/process.ts";
import { WsClient } from "./support/ws_client.ts";
import { freePort } from "./support/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const EXT = "actioncable-v1-ext-json";
const KEY = "k";
const CHAT = JSON.stringify({ channel: "$pubsub", stream_name: "chat" });

function isolateFlags(kvPath: string): string[] {
  return [
    "--broker=kv",
    "--pubsub=kv",
    `--kv_path=${kvPath}`,
    "--norpc",
    "--public",
    `--broadcast_key=${KEY}`,
    "--http_broadcast_port=0",
  ];
}

async function withIsolates(
  n: number,
  fn: (nodes: ServerProcess[], kvPath: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cableway_deploy_" });
  const kvPath = `${dir}/shared.sqlite`;
  const nodes: ServerProcess[] = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await spawnServer(isolateFlags(kvPath)));
    await fn(nodes, kvPath);
  } finally {
    for (const node of nodes) node.child.kill("SIGTERM");
    await Promise.all(nodes.map((node) => node.exited));
    await Deno.remove(dir, { recursive: true });
  }
}

async function broadcast(port: number, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/_broadcast`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  assert.equal(res.status, 201);
}

const publication = (text: string) => ({ stream: "chat", data: JSON.stringify({ text }) });

/** An ext-protocol client subscribed to the public stream "chat"; returns it and its sid. */
async function subscriber(port: number, query = ""): Promise<{ ws: WsClient; sid: string }> {
  const ws = new WsClient(`ws://127.0.0.1:${port}/cable${query}`, EXT);
  const welcome = await ws.waitFor((f) => f.type === "welcome");
  if (!welcome.restored) {
    // The history reply comes after the session was saved, so a restore can find it.
    ws.send({
      command: "subscribe",
      identifier: CHAT,
      history: { since: Math.floor(Date.now() / 1000) - 60 },
    });
    await ws.waitFor((f) => f.type === "confirm_subscription" && f.identifier === CHAT);
    await ws.waitFor((f) => f.type === "confirm_history" && f.identifier === CHAT);
  }
  return { ws, sid: String(welcome.sid) };
}

const textOf = (f: Record<string, unknown>) => (f.message as { text?: string } | undefined)?.text;

function receive(ws: WsClient, text: string, timeoutMs = 5000) {
  return ws.waitFor((f) => f.identifier === CHAT && textOf(f) === text, timeoutMs);
}

function countOf(ws: WsClient, text: string): number {
  return ws.frames.filter((f) => f.identifier === CHAT && textOf(f) === text).length;
}

Deno.test("deploy: Deploy defaults fill in only what env vars and flags leave unset", () => {
  const env = (vars: Record<string, string>) => deployEnv({ get: (n) => vars[n] });
  const { config } = parseConfig([], env({ PORT: "9123" }));
  assert.equal(config.broker, "kv");
  assert.equal(config.pubsub, "kv");
  assert.equal(config.kv_path, "");
  assert.equal(config.port, 9123);
  assert.equal(config.http_broadcast_port, 9123);
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.shutdown_timeout, 3);
  const custom = parseConfig(
    ["--port=7000"],
    env({ ANYCABLE_PUBSUB: "none", ANYCABLE_KV_PATH: "/data/kv", ANYCABLE_PORT: "9000" }),
  ).config;
  assert.equal(custom.pubsub, "");
  assert.equal(custom.kv_path, "/data/kv");
  assert.equal(custom.port, 7000);
  assert.equal(custom.http_broadcast_port, 9000);
});

Deno.test("deploy: an unauthenticated public /_broadcast is refused unless asked for", async () => {
  const env = (vars: Record<string, string>) => deployEnv({ get: (n) => vars[n] });
  const parse = (vars: Record<string, string>) => parseConfig([], env(vars)).config;
  assert.match(deployProblem(parse({}))!, /ANYCABLE_SECRET/);
  assert.equal(deployProblem(parse({ ANYCABLE_SECRET: "s" })), undefined);
  assert.equal(deployProblem(parse({ ANYCABLE_BROADCAST_KEY: "k" })), undefined);
  assert.equal(deployProblem(parse({ ANYCABLE_BROADCAST_KEY: "none" })), undefined);
  assert.equal(deployProblem(parse({ ANYCABLE_PUBLIC: "true" })), undefined);
  assert.equal(deployProblem(parse({ ANYCABLE_BROADCAST_ADAPTER: "redis" })), undefined);
  // main() stops before binding anything.
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    assert.equal(await main([], { get: () => undefined }), 2);
  } finally {
    console.error = original;
  }
  assert.match(String(errors[0]), /unauthenticated/);
});

Deno.test("deploy: a publication POSTed to isolate B reaches A's subscriber once, with its position", async () => {
  await withIsolates(2, async ([a, b]) => {
    const onA = await subscriber(a.port);
    const onB = await subscriber(b.port);
    try {
      await broadcast(b.port, publication("one"));
      const first = await receive(onA.ws, "one");
      assert.equal(first.stream_id, "chat");
      assert.equal(typeof first.epoch, "string");
      assert.ok((first.epoch as string).length > 0);
      assert.equal(first.offset, 1);
      await broadcast(b.port, publication("two"));
      const second = await receive(onA.ws, "two");
      assert.equal(second.epoch, first.epoch);
      assert.equal(second.offset, 2);
      // B's own subscriber got both locally; each client got each message exactly once.
      await receive(onB.ws, "two");
      for (const c of [onA, onB]) {
        assert.equal(countOf(c.ws, "one"), 1);
        assert.equal(countOf(c.ws, "two"), 1);
      }
      const onBFirst = onB.ws.frames.find((f) => textOf(f) === "one")!;
      assert.deepEqual([onBFirst.epoch, onBFirst.offset], [first.epoch, 1]);
    } finally {
      await Promise.all([onA.ws.close(), onB.ws.close()]);
    }
  });
});

Deno.test("deploy: a session left on A is restored on B and catches up from KV history", async () => {
  await withIsolates(2, async ([a, b]) => {
    const first = await subscriber(a.port);
    await broadcast(a.port, publication("before"));
    const seen = await receive(first.ws, "before");
    const epoch = seen.epoch as string;
    const offset = seen.offset as number;
    await first.ws.close();
    await broadcast(a.port, publication("missed"));

    const again = new WsClient(`ws://127.0.0.1:${b.port}/cable?sid=${first.sid}`, EXT);
    try {
      const welcome = await again.waitFor((f) => f.type === "welcome");
      assert.equal(welcome.restored, true);
      assert.deepEqual(welcome.restored_ids, [CHAT]);
      again.send({
        command: "history",
        identifier: CHAT,
        history: { streams: { chat: { epoch, offset } } },
      });
      const missed = await receive(again, "missed");
      assert.equal(missed.epoch, epoch);
      assert.equal(missed.offset, offset + 1);
      await again.waitFor((f) => f.type === "confirm_history" && f.identifier === CHAT);
      assert.equal(countOf(again, "before"), 0);
      // The restored subscription is live on B: a publication on A reaches it.
      await broadcast(a.port, publication("live"));
      const live = await receive(again, "live");
      assert.equal(live.offset, offset + 2);
    } finally {
      await again.close();
    }
  });
});

Deno.test("deploy: a remote disconnect POSTed to B closes the session held by A", async () => {
  await withIsolates(2, async ([a, b]) => {
    const client = await subscriber(a.port);
    const bystander = await subscriber(a.port);
    try {
      await broadcast(b.port, {
        command: "disconnect",
        payload: { identifier: JSON.stringify({ sid: client.sid }), reconnect: false },
      });
      const msg = await client.ws.waitFor((f) => f.type === "disconnect");
      assert.deepEqual(msg, { type: "disconnect", reason: "remote", reconnect: false });
      await client.ws.closed;
      // Others on A stay connected and keep receiving.
      await broadcast(b.port, publication("still here"));
      await receive(bystander.ws, "still here");
      assert.equal(bystander.ws.frames.some((f) => f.type === "disconnect"), false);
    } finally {
      await Promise.all([client.ws.close(), bystander.ws.close()]);
    }
  });
});

function summary(samples: number[]): string {
  const sorted = [...samples].sort((x, y) => x - y);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return `mean ${mean.toFixed(1)}, p50 ${pick(0.5).toFixed(1)}, p95 ${pick(0.95).toFixed(1)}, ` +
    `max ${sorted[sorted.length - 1].toFixed(1)}`;
}

Deno.test("deploy: cross-process delivery latency (POST on B -> frame on A)", async () => {
  await withIsolates(2, async ([a, b]) => {
    const onA = await subscriber(a.port);
    const onB = await subscriber(b.port);
    try {
      const remote: number[] = [];
      const local: number[] = [];
      for (let i = 0; i < 60; i++) {
        // Pacing, not waiting for an event: a random start keeps publications from locking
        // onto the receiver's poll phase, so the samples cover the whole poll interval.
        await new Promise((r) => setTimeout(r, Math.random() * 60));
        const t = performance.now();
        await broadcast(b.port, publication(`lat-${i}`));
        await Promise.all([
          receive(onB.ws, `lat-${i}`).then(() => local.push(performance.now() - t)),
          receive(onA.ws, `lat-${i}`).then(() => remote.push(performance.now() - t)),
        ]);
      }
      console.log(`same process (B -> client on B), ms: ${summary(local)}`);
      console.log(`cross-process (B -> KV -> client on A), ms: ${summary(remote)}`);
      const median = [...remote].sort((x, y) => x - y)[remote.length >> 1];
      assert.ok(median < 1000, "median cross-process latency under a second");
    } finally {
      await Promise.all([onA.ws.close(), onB.ws.close()]);
    }
  });
});

/** Runs deploy/main.ts as Deploy would: no flags, configuration from the environment. */
async function spawnDeployEntry(env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}deploy/main.ts`],
    env,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: Array<Record<string, unknown>> = [];
  const listening = Promise.withResolvers<Record<string, unknown>>();
  const pump = (async () => {
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = { msg: line };
        }
        lines.push(parsed);
        if (parsed.msg === "Cableway is listening") listening.resolve(parsed);
        if (parsed.msg === "failed to start") listening.reject(new Error(line));
      }
    }
    listening.reject(new Error(`deploy entry exited: ${JSON.stringify(lines)}`));
  })();
  const timer = setTimeout(() => listening.reject(new Error("deploy entry: no listen log")), 30000);
  const exited = child.status.then(async (s) => {
    await pump;
    return s.code;
  });
  try {
    return { child, exited, lines, listen: await listening.promise };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("deploy: deploy/main.ts serves on PORT with KV broker and pub/sub, next to a main.ts node", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cableway_deploy_entry_" });
  const kvPath = `${dir}/shared.sqlite`;
  const port = freePort();
  const entry = await spawnDeployEntry({
    PORT: String(port),
    ANYCABLE_KV_PATH: kvPath,
    ANYCABLE_PUBLIC: "true",
    ANYCABLE_NORPC: "true",
    ANYCABLE_BROADCAST_KEY: KEY,
  });
  let other: ServerProcess | undefined;
  try {
    assert.equal(entry.listen.broker, "kv");
    assert.equal(entry.listen.pubsub, "kv");
    assert.equal(entry.listen.addr, `0.0.0.0:${port}`);
    assert.equal(entry.listen.broadcast, `http://0.0.0.0:${port}/_broadcast`);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    await health.body?.cancel();
    assert.equal(health.status, 200);

    const client = await subscriber(port);
    try {
      await broadcast(port, publication("to the entry"));
      assert.equal((await receive(client.ws, "to the entry")).offset, 1);
      // Another node on the same KV: its publications reach the entry's clients.
      other = await spawnServer(isolateFlags(kvPath));
      await broadcast(other.port, publication("from another node"));
      const msg = await receive(client.ws, "from another node");
      assert.equal(msg.offset, 2);
    } finally {
      await client.ws.close();
    }
    entry.child.kill("SIGINT");
    assert.equal(await entry.exited, 0);
    assert.ok(entry.lines.some((l) => l.msg === "stopped"));
  } finally {
    try {
      entry.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await entry.exited;
    other?.child.kill("SIGTERM");
    await other?.exited;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy: RPC transports — fetch-based HTTP and gRPC-web pass, native gRPC is warned about", () => {
  const env = (vars: Record<string, string>) => deployEnv({ get: (n) => vars[n] });
  const parse = (vars: Record<string, string>) => parseConfig([], env(vars)).config;
  assert.match(deployRpcWarning(parse({}))!, /native gRPC .* not a supported RPC transport/);
  assert.match(deployRpcWarning(parse({ ANYCABLE_RPC_HOST: "rpc:50051" }))!, /grpc-web/);
  assert.equal(deployRpcWarning(parse({ ANYCABLE_RPC_HOST: "https://app/_anycable" })), undefined);
  assert.equal(
    deployRpcWarning(parse({ ANYCABLE_RPC_HOST: "https://app", ANYCABLE_RPC_IMPL: "grpc-web" })),
    undefined,
  );
  assert.equal(deployRpcWarning(parse({ ANYCABLE_NORPC: "true" })), undefined);
});

Deno.test("deploy: deploy/main.ts talks gRPC-web to a Connect backend", async () => {
  const backend = await GrpcWebBackend.start();
  const dir = await Deno.makeTempDir({ prefix: "cableway_deploy_grpcweb_" });
  const port = freePort();
  const entry = await spawnDeployEntry({
    PORT: String(port),
    ANYCABLE_KV_PATH: `${dir}/kv.sqlite`,
    ANYCABLE_SECRET: "s3cret",
    ANYCABLE_RPC_HOST: backend.url,
    ANYCABLE_RPC_IMPL: "grpc-web",
  });
  try {
    assert.equal(entry.listen.rpc_impl, "grpc-web");
    assert.ok(!entry.lines.some((l) => /not a supported RPC transport/.test(String(l.msg))));
    const client = new WsClient(`ws://127.0.0.1:${port}/cable`);
    const welcome = await client.waitFor((f) => f.type === "welcome", 10_000);
    await backend.waitFor((cs) => cs.some((c) => c.method === "connect"));
    assert.equal(backend.of("connect")[0].headers.sid, welcome.sid);
    await client.close();
    await backend.waitFor((cs) => cs.some((c) => c.method === "disconnect"));
    entry.child.kill("SIGINT");
    assert.equal(await entry.exited, 0);
  } finally {
    try {
      entry.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await entry.exited;
    await backend.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
