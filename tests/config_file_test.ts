/**
 * `anycable.toml` in AnyCable-Go's layout: found in the working directory, read with
 * --config-path, skipped with --ignore-config-path; flags > env > file; --print-config prints
 * the resolved configuration with secrets masked; a bad file names file, line and key.
 */
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import { spawnServer } from "./support/process.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const env = (vars: Record<string, string> = {}) => ({ get: (k: string) => vars[k] });

const REFERENCE_FILE = `# as anycable-go --print-config writes it
secret = "file-secret"
broadcast_adapters = ["http"]
node_id = "node-from-file"

[server]
host = "127.0.0.1"
port = 0
health_path = "/file-health"
max_conn = 50
ssl.cert_path = ""

[logging]
format = "json"

[rpc]
host = "http://127.0.0.1:1/_anycable"
proxy_headers = ["cookie", "x-api-token"]

[app]
ping_interval = 9

[sse]
enabled = true
path = "/file-events"

[metrics]
http = "/metrics"
tags.region = "eu"
statsd.prefix = "cw."

[redis]
url = "redis://user:s3cret-pass@127.0.0.1:6390/2"
tls_verify = true

[redis_stream_broadcast]
group = "file-group"

[pusher_nonsense]
x = 1
`;

async function run(args: string[], cwd: string, vars: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd,
    env: vars,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("a reference-layout file maps onto options; flags > env > file > defaults", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/custom.toml`;
    await Deno.writeTextFile(path, REFERENCE_FILE);
    const { config, warnings, configFile } = parseConfig(
      [`--config-path=${path}`, "--sse_path=/flag-events"],
      env({ ANYCABLE_SSE_PATH: "/env-events", ANYCABLE_PING_INTERVAL: "4" }),
    );
    assert.equal(configFile, path);
    assert.equal(config.secret, "file-secret");
    assert.equal(config.node_id, "node-from-file");
    assert.equal(config.health_path, "/file-health");
    assert.equal(config.max_conn, 50);
    assert.deepEqual(config.headers, ["cookie", "x-api-token"]);
    assert.equal(config.sse, true);
    assert.equal(config.sse_path, "/flag-events"); // flag beats env beats file
    assert.equal(config.ping_interval, 4); // env beats file
    assert.equal(config.metrics_http, "/metrics");
    assert.deepEqual(config.metrics_tags, ["region:eu"]);
    assert.equal(config.statsd_prefix, "cw.");
    assert.equal(config.redis_tls_verify, true);
    assert.equal(config.redisx_group, "file-group");
    // A file value counts as given: auto-wiring does not override it, and the non-default
    // Redis URL turns Redis pub/sub on as it would from a flag.
    assert.equal(config.pubsub, "redis");
    assert.deepEqual(warnings.filter((w) => w.includes("pusher_nonsense")).length, 1);
    assert.match(warnings.find((w) => w.includes("pusher_nonsense"))!, /custom\.toml:\d+: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the search order: the first existing default path; --ignore-config-path skips it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/b.toml`, "[server]\nport = 9002\n");
    const paths = [`${dir}/a.toml`, `${dir}/b.toml`];
    assert.equal(parseConfig([], env(), { configPaths: paths }).config.port, 9002);
    await Deno.writeTextFile(`${dir}/a.toml`, "[server]\nport = 9001\n");
    assert.equal(parseConfig([], env(), { configPaths: paths }).config.port, 9001);
    const ignored = parseConfig(["--ignore-config-path"], env(), { configPaths: paths });
    assert.equal(ignored.config.port, 8080);
    assert.equal(ignored.configFile, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad file is an error naming the file, the line and the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/anycable.toml`;
    await Deno.writeTextFile(path, `secret = "x"\n\n[server]\nhost = "h"\nport = "eighty"\n`);
    assert.throws(
      () => parseConfig([`--config-path=${path}`], env()),
      (e: Error) => e instanceof ConfigError && e.message.includes(`${path}:5: server.port`),
    );
    await Deno.writeTextFile(path, `[app]\nping_interval = 3\nshutdown_delay = = 2\n`);
    assert.throws(
      () => parseConfig([`--config-path=${path}`], env()),
      (e: Error) => e instanceof ConfigError && e.message.startsWith(`${path}:3:`),
    );
    assert.throws(
      () => parseConfig([`--config-path=${dir}/missing.toml`], env()),
      (e: Error) => e instanceof ConfigError && e.message.includes("missing.toml"),
    );
    // The process: exit status 2 and the message on stderr.
    await Deno.writeTextFile(path, `[server]\nport = true\n`);
    const out = await run([], dir);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /anycable\.toml:2: server\.port: expected an integer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--print-config prints the resolved file + env + flags with secrets masked, then exits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/anycable.toml`, REFERENCE_FILE);
    const out = await run(
      ["--print-config", "--jwt_secret=flag-jwt", "--port=7001"],
      dir,
      { ANYCABLE_SSE_PATH: "/env-events" },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /anycable\.toml:\d+: pusher_nonsense\.x: unknown key/);
    const printed = parse(out.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(printed.secret, "[masked]");
    assert.equal(printed.jwt.secret, "[masked]");
    assert.equal(printed.server.port, 7001);
    assert.equal(printed.server.host, "127.0.0.1");
    assert.equal(printed.sse.path, "/env-events");
    assert.equal(printed.redis.url, "redis://user:[masked]@127.0.0.1:6390/2");
    for (const s of ["file-secret", "flag-jwt", "s3cret-pass"]) {
      assert.ok(!out.stdout.includes(s), `${s} printed`);
    }
    // What it prints loads back (masked values aside).
    const back = `${dir}/back.toml`;
    await Deno.writeTextFile(back, out.stdout);
    const again = parseConfig([`--config-path=${back}`], env()).config;
    assert.equal(again.port, 7001);
    assert.equal(again.sse_path, "/env-events");
    assert.deepEqual(again.metrics_tags, ["region:eu"]);
    // --ignore-config-path: the defaults.
    const plain = parse(
      (await run(["--print-config", "--ignore-config-path"], dir)).stdout,
    ) as Record<string, Record<string, unknown>>;
    assert.equal(plain.server.host, "localhost");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a server started from ./anycable.toml serves what the file says", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/anycable.toml`, REFERENCE_FILE);
    const server = await spawnServer(["--norpc", "--public", "--pubsub=none"], {
      cmd: [Deno.execPath(), "run", "-A", MAIN],
      cwd: dir,
    });
    try {
      assert.ok(server.lines.some((l) => l.msg === "using configuration from file"));
      const health = await fetch(`http://127.0.0.1:${server.port}/file-health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const ctl = new AbortController();
      const sse = await fetch(`http://127.0.0.1:${server.port}/file-events?stream=s`, {
        signal: ctl.signal,
      });
      assert.equal(sse.status, 200);
      assert.match(sse.headers.get("content-type") ?? "", /text\/event-stream/);
      ctl.abort();
      await sse.body?.cancel().catch(() => {});
    } finally {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
