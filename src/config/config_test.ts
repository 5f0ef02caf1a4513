import assert from "node:assert/strict";
import { ConfigError, helpText, parseConfig } from "./config.ts";
import { NON_NEGATIVE, type OptionName, OPTIONS, type OptionSpec } from "./options.ts";
import { pubsubInternalChannel } from "../app/adapters.ts";

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

Deno.test("explicit records the options set by flags or env vars, nothing else", () => {
  const { explicit } = parseConfig(
    ["--port=1", "--redis-url", "redis://r:1"],
    env({ NATS_URL: "n" }),
  );
  assert.deepEqual([...explicit].sort(), ["nats_servers", "port", "redis_url"]);
  assert.equal(parseConfig([], env({ ANYCABLE_BROKER: "" })).explicit.size, 0);
});

Deno.test("--presets=broker alone picks the memory broker and nothing else", () => {
  const { config } = parseConfig(["--presets=broker"], env());
  assert.equal(config.broker, "memory");
  assert.equal(config.pubsub, "");
  assert.deepEqual(config.broadcast_adapter, ["http"]);
});

Deno.test("--presets=broker with Redis given: redis broker, redis pub/sub, http+redisx", () => {
  for (
    const [argv, vars] of [
      [["--presets=broker", "--redis_url=redis://10.0.0.1:6379"], {}],
      [["--presets=broker"], { REDIS_URL: "redis://cache:6379/2" }],
      [[], { ANYCABLE_PRESETS: "broker", ANYCABLE_REDIS_URL: "redis://cache:6379" }],
      // Given explicitly, even with the default value.
      [["--presets=broker", "--redis_url=redis://localhost:6379"], {}],
    ] as Array<[string[], Record<string, string>]>
  ) {
    const { config } = parseConfig(argv, env(vars));
    assert.equal(config.broker, "redis", JSON.stringify(argv));
    assert.equal(config.pubsub, "redis");
    assert.deepEqual(config.broadcast_adapter, ["http", "redisx"]);
  }
});

Deno.test("--presets=broker with NATS given: nats broker, nats pub/sub, http+nats", () => {
  for (
    const [argv, vars] of [
      [["--presets=broker", "--nats_servers=nats://10.0.0.2:4222"], {}],
      [["--presets=broker"], { NATS_URL: "nats://bus:4222" }],
    ] as Array<[string[], Record<string, string>]>
  ) {
    const { config } = parseConfig(argv, env(vars));
    assert.equal(config.broker, "nats");
    assert.equal(config.pubsub, "nats");
    assert.deepEqual(config.broadcast_adapter, ["http", "nats"]);
  }
  // Redis wins when both are given.
  const both = parseConfig(
    ["--presets=broker", "--nats_servers=nats://n:4222", "--redis_url=redis://r:6379"],
    env(),
  ).config;
  assert.equal(both.broker, "redis");
  assert.equal(both.pubsub, "redis");
});

Deno.test("--presets=broker never overrides values the user set", () => {
  const a = parseConfig(
    ["--presets=broker", "--redis_url=redis://r:6379", "--broker=memory", "--pubsub=none"],
    env({ ANYCABLE_BROADCAST_ADAPTER: "http,redis" }),
  ).config;
  assert.equal(a.broker, "memory");
  assert.equal(a.pubsub, "");
  assert.deepEqual(a.broadcast_adapter, ["http", "redis"]);
  const b = parseConfig(
    ["--presets=broker", "--nats_servers=nats://n:4222", "--broadcast_adapter=http"],
    env(),
  ).config;
  assert.equal(b.broker, "nats");
  assert.equal(b.pubsub, "nats");
  assert.deepEqual(b.broadcast_adapter, ["http"]);
  // An explicit "none" stays none.
  assert.equal(parseConfig(["--presets=broker", "--broker=none"], env()).config.broker, "");
});

Deno.test("pub/sub is auto-enabled by the redis broker, redisx, a non-default Redis URL, the nats broker", () => {
  const pubsub = (argv: string[], vars: Record<string, string> = {}) =>
    parseConfig(argv, env(vars)).config.pubsub;
  assert.equal(pubsub([]), "");
  assert.equal(pubsub(["--broker=memory"]), "");
  assert.equal(pubsub(["--broker=kv"]), "");
  assert.equal(pubsub(["--broadcast_adapter=http,redis"]), "");
  assert.equal(pubsub(["--broadcast_adapter=nats"]), "");
  assert.equal(pubsub(["--broker=redis"]), "redis");
  assert.equal(pubsub(["--broadcast_adapter=http,redisx"]), "redis");
  assert.equal(pubsub(["--broker=memory", "--redis_url=redis://cache:6379"]), "redis");
  assert.equal(pubsub([], { REDIS_URL: "redis://cache:6379" }), "redis");
  // The default URL given explicitly is not "Redis configured" (as in the reference).
  assert.equal(pubsub(["--redis_url=redis://localhost:6379"]), "");
  assert.equal(pubsub(["--broker=nats"]), "nats");
  assert.equal(pubsub(["--broker=nats", "--broadcast_adapter=http,redisx"]), "nats");
  // An explicit choice always wins, "none" included.
  assert.equal(pubsub(["--broker=redis", "--pubsub=nats"]), "nats");
  assert.equal(pubsub(["--broker=redis", "--pubsub=none"]), "");
  assert.equal(pubsub(["--broker=redis"], { ANYCABLE_PUBSUB: "none" }), "");
});

Deno.test("the pub/sub command channel gets -int when the fan-out broadcaster uses its name", () => {
  const channel = (argv: string[]) => pubsubInternalChannel(parseConfig(argv, env()).config);
  assert.equal(
    channel(["--pubsub=redis", "--broadcast_adapter=http,redis"]),
    "__anycable_internal__",
  );
  assert.equal(
    channel([
      "--pubsub=redis",
      "--broadcast_adapter=redis",
      "--redis_channel=__anycable_internal__",
    ]),
    "__anycable_internal__-int",
  );
  // Same channel name but the legacy broadcaster is off: no clash.
  assert.equal(
    channel([
      "--pubsub=redis",
      "--broadcast_adapter=http",
      "--redis_channel=__anycable_internal__",
    ]),
    "__anycable_internal__",
  );
  assert.equal(
    channel(["--pubsub=nats", "--broadcast_adapter=nats", "--nats_channel=__anycable_internal__"]),
    "__anycable_internal__-int",
  );
  // A Redis broadcaster never clashes with NATS pub/sub.
  assert.equal(
    channel([
      "--pubsub=nats",
      "--broadcast_adapter=redis",
      "--redis_channel=__anycable_internal__",
    ]),
    "__anycable_internal__",
  );
});

Deno.test("every numeric option is range-checked, from flags and env vars alike", () => {
  let checked = 0;
  for (const [name, raw] of Object.entries(OPTIONS)) {
    const spec: OptionSpec<unknown> = raw;
    if (spec.type !== "int" && spec.type !== "float") continue;
    checked++;
    const { min, max } = spec.range ?? NON_NEGATIVE;
    const def = spec.default as number;
    assert.ok(def >= min && def <= max, `${name}: default ${def} outside ${min}..${max}`);
    // --rpc_request_timeout=0 means "the default", as in the reference.
    const atMin = name === "rpc_request_timeout" ? def : min;
    assert.equal(parseConfig([`--${name}=${min}`], env()).config[name as OptionName], atMin);
    assert.equal(parseConfig([`--${name}=${max}`], env()).config[name as OptionName], max);
    assert.throws(
      () => parseConfig([`--${name}=${min - 1}`], env()),
      (e: Error) => e instanceof ConfigError && e.message.includes(`--${name}=${min - 1}`),
      `${name} below ${min}`,
    );
    assert.throws(
      () => parseConfig([`--${name}=${max + 1}`], env()),
      (e: Error) => e instanceof ConfigError && e.message.includes("out of range"),
      `${name} above ${max}`,
    );
    const envName = `ANYCABLE_${name.toUpperCase()}`;
    assert.throws(
      () => parseConfig([], env({ [envName]: String(min - 1) })),
      (e: Error) => e instanceof ConfigError && e.message.includes(envName),
      `${envName} below ${min}`,
    );
  }
  assert.ok(checked >= 20, `only ${checked} numeric options`);
  assert.throws(
    () => parseConfig(["--port=99999"], env()),
    /--port=99999 is out of range: expected 0 to 65535/,
  );
  assert.throws(
    () => parseConfig(["--history_limit=-5"], env()),
    /--history_limit=-5 is out of range/,
  );
  assert.throws(() => parseConfig([], env({ PORT: "70000" })), /PORT=70000 is out of range/);
  assert.throws(() => parseConfig(["--ping_interval=99999999"], env()), /--ping_interval/);
  assert.match(helpText("test"), /--port=INT +Port to listen on \(0 = any free port\) \[0-65535\]/);
});

Deno.test("an rpc_host with a path but no scheme suggests http://", () => {
  assert.throws(
    () => parseConfig(["--rpc_host=localhost:3000/_anycable"], env()),
    /--rpc_host: "localhost:3000\/_anycable" has no scheme; for HTTP RPC write http:\/\/localhost:3000\/_anycable/,
  );
  assert.throws(
    () => parseConfig(["--rpc_host=localhost:3000", "--rpc_impl=http"], env()),
    /write http:\/\/localhost:3000/,
  );
  for (
    const ok of [
      "localhost:50051",
      "dns:///rpc.internal:50051",
      "grpc-list://a:1,b:2",
      "http://localhost:3000/_anycable",
      "https://app.example.com/_anycable",
    ]
  ) {
    assert.equal(parseConfig([`--rpc_host=${ok}`], env()).config.rpc_host, ok);
  }
  // Without RPC the host is never used.
  assert.equal(parseConfig(["--norpc", "--rpc_host=a/b"], env()).config.norpc, true);
});

Deno.test("gRPC-web and RPC TLS options", () => {
  const { config } = parseConfig(
    ["--rpc_impl=grpc-web", "--rpc_grpc_web_mode=text", "--rpc_tls_root_ca=/etc/ca.pem"],
    env({ ANYCABLE_RPC_TLS_VERIFY: "false", ANYCABLE_RPC_ENABLE_TLS: "true" }),
  );
  assert.equal(config.rpc_impl, "grpc-web");
  assert.equal(config.rpc_grpc_web_mode, "text");
  assert.equal(config.rpc_tls_root_ca, "/etc/ca.pem");
  assert.equal(config.rpc_tls_verify, false);
  assert.equal(config.rpc_enable_tls, true);
  assert.equal(parseConfig([], env()).config.rpc_grpc_web_mode, "binary");
  assert.throws(
    () => parseConfig(["--rpc_grpc_web_mode=base64"], env()),
    (e) => e instanceof ConfigError && /rpc_grpc_web_mode.*binary, text/.test(e.message),
  );
  assert.throws(
    () => parseConfig(["--rpc_impl=grpcweb"], env()),
    (e) => e instanceof ConfigError && /http, grpc, grpc-web/.test(e.message),
  );
});
