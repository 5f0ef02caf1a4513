import assert from "node:assert/strict";
import { ConfigError, helpText, parseConfig } from "./config.ts";
import { OPTIONS } from "./options.ts";

const env = (vars: Record<string, string> = {}) => ({ get: (k: string) => vars[k] });

Deno.test("defaults match the reference", () => {
  const { config } = parseConfig([], env());
  assert.equal(config.port, 8080);
  assert.deepEqual(config.path, ["/cable"]);
  assert.equal(config.ping_interval, 3);
  assert.equal(config.rpc_concurrency, 28);
  assert.equal(config.max_message_size, 65536);
  assert.deepEqual(config.broadcast_adapter, ["http"]);
  assert.deepEqual(config.headers, ["cookie"]);
  assert.equal(config.history_limit, 100);
  assert.equal(config.broker, "");
});

Deno.test("flags beat ANYCABLE_* env vars; both spellings of a flag work", () => {
  const vars = { ANYCABLE_RPC_HOST: "http://env/_anycable", PORT: "9000", ANYCABLE_NORPC: "true" };
  const a = parseConfig([], env(vars)).config;
  assert.equal(a.rpc_host, "http://env/_anycable");
  assert.equal(a.port, 9000);
  assert.equal(a.norpc, true);
  const b =
    parseConfig(["--rpc-host", "http://flag/_anycable", "--port=1234", "--norpc=false"], env(vars))
      .config;
  assert.equal(b.rpc_host, "http://flag/_anycable");
  assert.equal(b.port, 1234);
  assert.equal(b.norpc, false);
  assert.equal(parseConfig([], env({ ANYCABLE_PORT: "7", PORT: "8" })).config.port, 7);
});

Deno.test("unknown flags and bad values are errors that name the flag", () => {
  assert.throws(
    () => parseConfig(["--nope"], env()),
    (e: Error) => e instanceof ConfigError && e.message.includes("--nope"),
  );
  assert.throws(() => parseConfig(["--port=abc"], env()), /--port/);
  assert.throws(() => parseConfig(["--broker=mongo"], env()), /--broker/);
  assert.throws(() => parseConfig(["--broadcast_adapter=http,kafka"], env()), /kafka/);
  assert.throws(() => parseConfig(["--path=cable"], env()), /--path/);
  assert.throws(() => parseConfig(["--port"], env()), /needs a value/);
  assert.throws(
    () => parseConfig([], env({ ANYCABLE_PING_INTERVAL: "x" })),
    /ANYCABLE_PING_INTERVAL/,
  );
});

Deno.test("--public implies noauth, public streams and unauthenticated broadcasts, with a warning", () => {
  const { config, warnings } = parseConfig(["--public"], env());
  assert.equal(config.noauth, true);
  assert.equal(config.public_streams, true);
  assert.equal(config.broadcast_key, "none");
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /public mode/);
  assert.equal(parseConfig(["--presets=broker"], env()).config.broker, "memory");
  assert.equal(parseConfig(["--presets=broker", "--broker=kv"], env()).config.broker, "kv");
});

Deno.test("--help lists every option from the table", () => {
  const text = helpText("test");
  for (const name of Object.keys(OPTIONS)) assert.ok(text.includes(`--${name}`), name);
});
