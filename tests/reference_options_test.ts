/**
 * Every option of AnyCable 1.6.16 (names and defaults copied into a fixture from its
 * `anycable-go --help`) is known to `--help`, parses as a flag and as an env var with the
 * reference default, and the ones that cannot apply on Deno say why, once.
 */
import assert from "node:assert/strict";
import { ConfigError, helpText, parseConfig } from "../src/config/config.ts";
import { OPTIONS } from "../src/config/options.ts";
import { spawnServer } from "./support/process.ts";

interface FixtureOption {
  name: string;
  default: string;
  status: "supported" | "no_effect_on_deno" | "refused_when_set" | "elsewhere";
}
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/anycable_1_6_16_options.json", import.meta.url)),
) as { options: FixtureOption[] };

const env = (vars: Record<string, string> = {}) => ({ get: (k: string) => vars[k] });
const noFile = { configPaths: [] };
const FILE_FLAGS = ["config-path", "ignore-config-path", "print-config"];
const flagName = (name: string) => name.replaceAll("-", "_");
const envName = (name: string) => `ANYCABLE_${flagName(name).toUpperCase()}`;
/** Options other branches add; they are checked here once they exist in the table. */
const pending = (o: FixtureOption) => o.status === "elsewhere" && !(flagName(o.name) in OPTIONS);

Deno.test("the fixture holds the reference's 140 options", () => {
  assert.equal(fixture.options.length, 140);
  assert.equal(new Set(fixture.options.map((o) => o.name)).size, 140);
  const elsewhere = fixture.options.filter(pending).map((o) => o.name);
  if (elsewhere.length > 0) console.log(`provided on other branches: ${elsewhere.join(", ")}`);
});

Deno.test("--help lists every reference option", () => {
  const help = helpText("test");
  const missing = fixture.options.filter((o) => !pending(o)).filter((o) =>
    !help.includes(`--${flagName(o.name)}`) && !help.includes(`--${o.name}`)
  );
  assert.deepEqual(missing.map((o) => o.name), []);
});

Deno.test("every reference option parses with its reference default, as a flag and as an env var", () => {
  for (const o of fixture.options.filter((o) => !pending(o))) {
    if (FILE_FLAGS.includes(o.name)) continue;
    for (
      const [argv, vars] of [
        [[`--${o.name}=${o.default}`], {}],
        [[], o.default === "" ? {} : { [envName(o.name)]: o.default }],
      ] as [string[], Record<string, string>][]
    ) {
      let parsed;
      try {
        parsed = parseConfig(argv, env(vars), noFile);
      } catch (err) {
        assert.fail(`${o.name}=${o.default}: ${(err as Error).message}`);
      }
      const about = parsed.warnings.filter((w) => w.includes(`--${flagName(o.name)}`));
      assert.deepEqual(about, [], `${o.name} at its default warns`);
    }
  }
  for (const flag of ["--ignore-config-path", "--print-config", "--config-path="]) {
    parseConfig([flag], env(), noFile);
  }
});

function otherValue(name: string, def: string): string {
  const spec = OPTIONS[flagName(name) as keyof typeof OPTIONS];
  if (spec.type === "bool") return def === "true" ? "false" : "true";
  if (spec.type === "int") return String(Number(def) + 7);
  return "x.example:1";
}

Deno.test("options that cannot apply on Deno say why and what to use instead, once each", () => {
  for (const o of fixture.options.filter((o) => o.status === "no_effect_on_deno")) {
    const value = otherValue(o.name, o.default);
    const { warnings } = parseConfig([`--${o.name}=${value}`], env(), noFile);
    const about = warnings.filter((w) => w.includes(`--${flagName(o.name)}`));
    assert.equal(about.length, 1, `${o.name}: ${JSON.stringify(warnings)}`);
    assert.match(about[0], /Deno/, o.name);
    assert.match(about[0], /no effect/, o.name);
  }
  for (const o of fixture.options.filter((o) => o.status === "refused_when_set")) {
    assert.throws(
      () => parseConfig([`--${o.name}=${otherValue(o.name, o.default)}`], env(), noFile),
      (e: Error) =>
        e instanceof ConfigError && e.message.includes(`--${o.name}`) &&
        /Deno/.test(e.message) && /nats-server/.test(e.message),
    );
  }
});

Deno.test("deprecated reference options fill in their replacements", () => {
  const c = (argv: string[]) => parseConfig(argv, env(), noFile);
  const a = c(["--jwt_id_key=k", "--turbo_rails_key=t", "--disable_disconnect"]);
  assert.equal(a.config.jwt_secret, "k");
  assert.equal(a.config.turbo_streams_secret, "t");
  assert.equal(a.config.turbo_streams, true);
  assert.equal(a.config.disconnect_mode, "never");
  assert.equal(a.warnings.filter((w) => w.includes("deprecated")).length, 3);
  assert.equal(c(["--http_broadcast_secret=b"]).config.broadcast_key, "b");
  assert.equal(c(["--http_broadcast_secret=b", "--broadcast_key=k"]).config.broadcast_key, "k");
  assert.equal(c(["--rpc_request_timeout=0"]).config.rpc_request_timeout, 3000);
  assert.equal(c(["--metrics_log_interval=4"]).config.metrics_rotate_interval, 4);
});

Deno.test("the README's option table lists every option", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const missing = Object.keys(OPTIONS).filter((name) => !readme.includes(`| \`--${name}\``));
  assert.deepEqual(missing, []);
});

Deno.test("presets: none, heroku and fly (detected from their env) as in the reference", () => {
  const p = (argv: string[], vars: Record<string, string> = {}) =>
    parseConfig(argv, env(vars), noFile);
  assert.deepEqual(p(["--presets=none"]).config.presets, []);
  const heroku = p([], { HEROKU_DYNO_ID: "d", HEROKU_APP_ID: "a", PORT: "5000" }).config;
  assert.equal(heroku.host, "0.0.0.0");
  assert.equal(heroku.http_broadcast_port, 5000);
  const notHeroku = p(["--presets=none"], { HEROKU_DYNO_ID: "d", HEROKU_APP_ID: "a" }).config;
  assert.equal(notHeroku.host, "localhost");
  const fly = p(["--host=127.0.0.1"], {
    FLY_APP_NAME: "app",
    FLY_REGION: "ams",
    FLY_ALLOC_ID: "1",
    ANYCABLE_FLY_RPC_APP_NAME: "rpc",
  });
  assert.equal(fly.config.host, "127.0.0.1"); // given: not overridden
  assert.equal(fly.config.rpc_host, "dns:///ams.rpc.internal:50051");
  assert.ok(fly.warnings.some((w) => w.includes("--presets=fly") && w.includes("nats-server")));
});

Deno.test("an AnyCable-Go deployment's command line and env start Cableway unchanged", async () => {
  const server = await spawnServer([
    "--rpc_host=http://127.0.0.1:9/_anycable",
    "--headers=cookie,x-api-token",
    "--proxy-cookies=_session_id",
    "--max-conn=1000",
    "--health-path=/up",
    "--path=/cable,/admin/cable",
    "--shutdown_timeout=10",
    "--shutdown_pool_size=32",
    "--hub_gopool_size=32",
    "--disconnect_timeout=5",
    "--disconnect_rate=50",
    "--rpc_concurrency=20",
    "--rpc_command_timeout=5000",
    "--rpc_max_call_recv_size=4194304",
    "--read_buffer_size=2048",
    "--write_buffer_size=2048",
    "--enable_ws_compression",
    "--enable_native_pings",
    "--ping_interval=5",
    "--metrics_http=/metrics",
    "--metrics_tags=app:chat",
    "--metrics_rotate_interval=30",
    "--statsd_host=127.0.0.1:9",
    "--jwt_id_key=legacy-jwt",
    "--turbo_rails_key=legacy-turbo",
    "--turbo_rails_cleartext",
    "--http_broadcast_cors",
    "--redisx_group=bx",
    "--nats_dont_randomize_servers",
    "--enats_cluster_name=unused",
    "--sse",
  ], {
    env: {
      ANYCABLE_SECRET: "app-secret",
      ANYCABLE_BROADCAST_KEY: "broadcast-key",
      ANYCABLE_ALLOWED_ORIGINS: "*.example.com",
      ANYCABLE_NODE_ID: "web-1",
      ANYCABLE_PRESETS: "none",
      ANYCABLE_REDIS_DISABLE_CACHE: "true",
      ANYCABLE_LOG_LEVEL: "info",
      ANYCABLE_DEBUG: "false",
    },
  });
  try {
    const up = await fetch(`http://127.0.0.1:${server.port}/up`);
    assert.equal(up.status, 200);
    await up.body?.cancel();
    const metrics = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.match(await metrics.text(), /anycable_go_clients_num\{app="chat"\} 0/);
    const listening = server.lines.find((l) => l.msg === "Cableway is listening")!;
    assert.equal(listening.nodeid, "web-1");
    const warned = server.lines.filter((l) => l.level === "warn").map((l) => String(l.msg));
    for (const flag of ["--hub_gopool_size", "--enable_ws_compression", "--jwt_id_key"]) {
      assert.ok(warned.some((w) => w.includes(flag)), `${flag} warned: ${warned.join(" / ")}`);
    }
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
  }
});
