import {
  type Config,
  envNames,
  NON_NEGATIVE,
  type OptionName,
  OPTIONS,
  type OptionSpec,
} from "./options.ts";
import { DEPRECATED, NOT_ON_DENO } from "./reference_only.ts";
import { ConfigFileError, DEFAULT_CONFIG_PATHS, loadConfigFile } from "./config_file.ts";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface ParsedArgs {
  config: Config;
  /** Options given by a flag or an env var (presets and auto-wiring never override these). */
  explicit: ReadonlySet<OptionName>;
  help: boolean;
  version: boolean;
  /** Warnings to print once a logger exists. */
  warnings: string[];
  /** `--print-config`: print the resolved configuration and exit. */
  printConfig: boolean;
  /** The configuration file that was read, if any. */
  configFile?: string;
}

type Env = { get(name: string): string | undefined };

/** Flags that pick the configuration file; they are not options themselves. */
const FILE_FLAGS = ["config_path", "ignore_config_path", "print_config"] as const;

export interface ParseOptions {
  /** Where to look for a configuration file without --config-path (first found wins). */
  configPaths?: readonly string[];
}

/**
 * argv + env + configuration file -> resolved Config. Flags win over env vars, env vars over
 * the file, the file over defaults.
 */
export function parseConfig(
  argv: string[],
  env: Env = Deno.env,
  opts: ParseOptions = {},
): ParsedArgs {
  const values: Record<string, unknown> = {};
  const explicit = new Set<OptionName>();
  const flags: [OptionName, string, string][] = [];
  let help = false;
  let version = false;
  let printConfig = false;
  let ignoreFile = false;
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (arg === "-v" || arg === "--version") {
      version = true;
      continue;
    }
    if (!arg.startsWith("-")) throw new ConfigError(`unexpected argument: ${arg}`);
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const rawName = eq >= 0 ? body.slice(0, eq) : body;
    const name = rawName.replaceAll("-", "_");
    if ((FILE_FLAGS as readonly string[]).includes(name)) {
      if (name === "config_path") {
        if (eq >= 0) configPath = body.slice(eq + 1);
        else if (i + 1 < argv.length) configPath = argv[++i];
        else throw new ConfigError(`flag --${rawName} needs a value`);
      } else {
        const on = eq >= 0 ? convertBool(body.slice(eq + 1), `--${rawName}`) : true;
        if (name === "print_config") printConfig = on;
        else ignoreFile = on;
      }
      continue;
    }
    if (!(name in OPTIONS)) throw new ConfigError(`unknown flag: --${rawName}`);
    const spec: OptionSpec<unknown> = OPTIONS[name as OptionName];
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.type === "bool") raw = "true";
    else if (i + 1 < argv.length) raw = argv[++i];
    else throw new ConfigError(`flag --${rawName} needs a value`);
    flags.push([name as OptionName, raw, `--${rawName}`]);
  }
  const warnings: string[] = [];
  for (const name of Object.keys(OPTIONS) as OptionName[]) values[name] = OPTIONS[name].default;

  let configFile: string | undefined;
  if (!ignoreFile) {
    configFile = configPath ??
      (opts.configPaths ?? DEFAULT_CONFIG_PATHS).find((p) => fileExists(p));
  }
  if (configFile) {
    let loaded;
    try {
      loaded = loadConfigFile(configFile);
    } catch (err) {
      if (err instanceof ConfigFileError) throw new ConfigError(err.message);
      throw err;
    }
    for (const [name, value] of loaded.values) {
      values[name] = value;
      explicit.add(name);
    }
    warnings.push(...loaded.warnings);
  }
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    for (const envName of envNames(name).reverse()) {
      const raw = env.get(envName);
      if (raw !== undefined && raw !== "") {
        values[name] = convert(name, raw, envName);
        explicit.add(name);
      }
    }
  }
  for (const [name, raw, source] of flags) {
    values[name] = convert(name, raw, source);
    explicit.add(name);
  }
  if (!explicit.has("presets")) values.presets = detectPresets(env);
  applyPlatformPresets(values, explicit, env, warnings);
  const config = resolve(values, explicit, warnings);
  return { config, explicit, help, version, warnings, printConfig, configFile };
}

/** As the reference: presets are detected from the platform's env vars unless given. */
function detectPresets(env: Env): string[] {
  const has = (names: string[]) => names.every((n) => env.get(n));
  if (has(["FLY_APP_NAME", "FLY_REGION", "FLY_ALLOC_ID"])) return ["fly"];
  if (has(["HEROKU_DYNO_ID", "HEROKU_APP_ID"])) return ["heroku"];
  return [];
}

/**
 * `fly` and `heroku` presets (never overriding what was given): listen on 0.0.0.0 and take
 * broadcasts on the main port; on Fly, `ANYCABLE_FLY_RPC_APP_NAME` points gRPC at the RPC app.
 * Fly's embedded NATS cluster does not exist on Deno: a warning says what to set instead.
 */
function applyPlatformPresets(
  values: Record<string, unknown>,
  explicit: ReadonlySet<OptionName>,
  env: Env,
  warnings: string[],
): void {
  const presets = values.presets as string[];
  if (presets.includes("none")) {
    values.presets = [];
    return;
  }
  const fill = (name: OptionName, value: unknown) => {
    if (!explicit.has(name)) values[name] = value;
  };
  if (presets.includes("fly") || presets.includes("heroku")) {
    fill("host", "0.0.0.0");
    fill("http_broadcast_port", values.port);
  }
  if (presets.includes("fly")) {
    const region = env.get("FLY_REGION");
    const rpcApp = env.get("ANYCABLE_FLY_RPC_APP_NAME");
    if (region && rpcApp) fill("rpc_host", `dns:///${region}.${rpcApp}.internal:50051`);
    if (!explicit.has("redis_url") && !explicit.has("pubsub") && !explicit.has("nats_servers")) {
      warnings.push(
        "--presets=fly: the embedded NATS cluster AnyCable-Go starts on Fly does not exist on Deno; run nats-server (or Redis) and pass --nats_servers (or --redis_url) with --pubsub",
      );
    }
  }
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function convertBool(raw: string, source: string): boolean {
  const v = raw.trim().toLowerCase();
  if (["true", "1", "yes", "t", "y", "on"].includes(v)) return true;
  if (["false", "0", "no", "f", "n", "off"].includes(v)) return false;
  throw new ConfigError(`${source}: not a boolean: ${raw}`);
}

function convert(name: OptionName, raw: string, source: string): unknown {
  const spec: OptionSpec<unknown> = OPTIONS[name];
  switch (spec.type) {
    case "string":
      return raw;
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${source}: not an integer: ${raw}`);
      return inRange(spec, Number(raw), source);
    }
    case "float": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) {
        throw new ConfigError(`${source}: not a number: ${raw}`);
      }
      return inRange(spec, n, source);
    }
    case "bool":
      return convertBool(raw, source);
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

/** Every numeric option is checked against its range (non-negative unless it names one). */
function inRange(spec: OptionSpec<unknown>, n: number, source: string): number {
  const { min, max } = spec.range ?? NON_NEGATIVE;
  if (n < min || n > max) {
    throw new ConfigError(`${source}=${n} is out of range: expected ${min} to ${max}`);
  }
  return n;
}

const ONE_OF: Partial<Record<OptionName, string[]>> = {
  log_level: ["debug", "info", "warn", "error"],
  log_format: ["text", "json"],
  ping_timestamp_precision: ["s", "ms", "ns"],
  disconnect_mode: ["auto", "always", "never"],
  rpc_impl: ["", "http", "grpc", "grpc-web"],
  rpc_grpc_web_mode: ["binary", "text"],
  rpc_http_client: ["native", "fetch"],
  broker: ["", "none", "memory", "kv", "redis", "nats"],
  pubsub: ["", "none", "redis", "nats", "kv"],
  statsd_tags_format: ["datadog", "influxdb", "graphite"],
};
const ADAPTERS = ["http", "redis", "redisx", "nats"];
const PRESETS = ["broker", "fly", "heroku", "none"];

function resolve(
  values: Record<string, unknown>,
  explicit: ReadonlySet<OptionName>,
  warnings: string[],
): Config {
  for (const [name, allowed] of Object.entries(ONE_OF)) {
    if (!allowed.includes(values[name] as string)) {
      throw new ConfigError(
        `--${name}: unknown value "${values[name]}" (expected ${
          allowed.filter(Boolean).join(", ")
        })`,
      );
    }
  }
  for (const a of values.broadcast_adapter as string[]) {
    if (!ADAPTERS.includes(a)) {
      throw new ConfigError(`--broadcast_adapter: unknown adapter "${a}"`);
    }
  }
  for (const p of values.presets as string[]) {
    if (!PRESETS.includes(p)) throw new ConfigError(`--presets: unknown preset "${p}"`);
  }
  referenceOnly(values, explicit, warnings);
  if (values.broker === "none") values.broker = "";
  if (values.pubsub === "none") values.pubsub = "";
  if ((values.presets as string[]).includes("broker")) applyBrokerPreset(values, explicit);
  autoPubSub(values, explicit);
  if (values.debug) values.log_level = "debug";
  if (values.public) {
    values.noauth = true;
    values.public_streams = true;
    if (values.broadcast_key === "") values.broadcast_key = "none";
  }
  checkRpcHost(values);
  for (const p of values.path as string[]) {
    if (!p.startsWith("/")) throw new ConfigError(`--path: "${p}" must start with /`);
  }
  if (Boolean(values.ssl_cert) !== Boolean(values.ssl_key)) {
    throw new ConfigError("--ssl_cert and --ssl_key go together: give both or neither");
  }
  if (values.public) {
    warnings.push(
      "Server is running in the public mode: no authentication, public streams and unauthenticated broadcasts",
    );
  } else {
    if (values.noauth) {
      warnings.push(
        "Server is running without authentication (--noauth): every connection is accepted",
      );
    }
    if (values.public_streams) {
      warnings.push("Public streams are enabled: anyone can subscribe to any $pubsub stream_name");
    }
  }
  return Object.freeze(values) as unknown as Config;
}

function isSet(values: Record<string, unknown>, name: OptionName): boolean {
  return JSON.stringify(values[name]) !== JSON.stringify(OPTIONS[name].default);
}

/**
 * Options of AnyCable-Go that do nothing on Deno get a warning that says why (embedded NATS is
 * refused: the deployment depends on it), and deprecated aliases fill in their replacements
 * the way the reference does.
 */
function referenceOnly(
  values: Record<string, unknown>,
  explicit: ReadonlySet<OptionName>,
  warnings: string[],
): void {
  for (
    const [name, rule] of Object.entries(NOT_ON_DENO) as [
      OptionName,
      { message: string; refuse?: boolean },
    ][]
  ) {
    if (!isSet(values, name)) continue;
    if (rule.refuse) throw new ConfigError(`--${name}: ${rule.message}`);
    warnings.push(`--${name}: ${rule.message}`);
  }
  for (const [name, instead] of Object.entries(DEPRECATED) as [OptionName, string][]) {
    if (explicit.has(name) && isSet(values, name)) {
      warnings.push(`--${name} is deprecated (as in AnyCable-Go): use ${instead}`);
    }
  }
  const fill = (name: OptionName, value: unknown) => {
    if (!explicit.has(name) || !isSet(values, name)) values[name] = value;
  };
  if (values.jwt_id_key) fill("jwt_secret", values.jwt_id_key);
  if (values.jwt_id_param) fill("jwt_param", values.jwt_id_param);
  if (values.jwt_id_enforce) values.enforce_jwt = true;
  if (values.turbo_rails_key) {
    fill("turbo_streams_secret", values.turbo_rails_key);
    values.turbo_streams = true;
  }
  if (values.cable_ready_key) {
    fill("cable_ready_secret", values.cable_ready_key);
    values.cable_ready = true;
  }
  if (values.http_broadcast_secret) fill("broadcast_key", values.http_broadcast_secret);
  if (values.disable_disconnect) values.disconnect_mode = "never";
  if ((values.metrics_log_interval as number) > 0 && !explicit.has("metrics_rotate_interval")) {
    values.metrics_rotate_interval = values.metrics_log_interval;
  }
  // As in the reference, a zero request timeout means the command timeout.
  if ((values.rpc_request_timeout as number) <= 0) {
    values.rpc_request_timeout = (values.rpc_command_timeout as number) > 0
      ? values.rpc_command_timeout
      : OPTIONS.rpc_request_timeout.default;
  }
  for (const name of ["http_rpc_timeout", "rpc_command_timeout"] as const) {
    if (explicit.has(name) && isSet(values, name) && !explicit.has("rpc_request_timeout")) {
      values.rpc_request_timeout = values[name];
    }
  }
}

/**
 * A gRPC target is `host:port` (or `dns:`/`grpc-list://`): an rpc_host with a path but no
 * scheme, or `--rpc_impl=http` without one, is an HTTP URL whose `http://` was forgotten.
 */
function checkRpcHost(values: Record<string, unknown>): void {
  if (values.norpc) return;
  const host = (values.rpc_host as string).trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host) || host.startsWith("dns:")) return;
  if (host.includes("/") || values.rpc_impl === "http") {
    throw new ConfigError(
      `--rpc_host: "${host}" has no scheme; for HTTP RPC write http://${host} ` +
        "(a gRPC target is host:port)",
    );
  }
}

/**
 * `--presets=broker`: fills in (never overrides) broker, pub/sub and broadcast adapters.
 * Redis given (--redis_url, ANYCABLE_REDIS_URL or REDIS_URL) -> redis broker, redis pub/sub,
 * http+redisx; else NATS given (--nats_servers, ANYCABLE_NATS_SERVERS or NATS_URL) -> nats
 * broker, nats pub/sub, http+nats; else the memory broker. See docs/cluster.md.
 */
function applyBrokerPreset(values: Record<string, unknown>, explicit: ReadonlySet<OptionName>) {
  const fill = (name: OptionName, value: unknown) => {
    if (!explicit.has(name)) values[name] = value;
  };
  if (explicit.has("redis_url")) {
    fill("broker", "redis");
    fill("pubsub", "redis");
    fill("broadcast_adapter", ["http", "redisx"]);
  } else if (explicit.has("nats_servers")) {
    fill("broker", "nats");
    fill("pubsub", "nats");
    fill("broadcast_adapter", ["http", "nats"]);
  } else {
    fill("broker", "memory");
  }
}

/**
 * docs/protocol.md#pubsub-between-nodes: without an explicit --pubsub, the Redis broker, the redisx adapter
 * or a non-default Redis URL turn on Redis pub/sub; the NATS broker turns on NATS pub/sub.
 */
function autoPubSub(values: Record<string, unknown>, explicit: ReadonlySet<OptionName>) {
  if (explicit.has("pubsub") || values.pubsub !== "") return;
  if (values.broker === "redis") values.pubsub = "redis";
  else if (values.broker === "nats") values.pubsub = "nats";
  else if (
    (values.broadcast_adapter as string[]).includes("redisx") ||
    values.redis_url !== OPTIONS.redis_url.default
  ) {
    values.pubsub = "redis";
  }
}

/** `--help` text, generated from the option table. */
export function helpText(version: string): string {
  const lines = [
    `Cableway ${version}: an AnyCable-compatible real-time server for Deno`,
    "",
    "Usage: cableway [flags]",
    "       cableway sign-stream <name> [--secret=S]",
    "       cableway jwt [--secret=S] [--ext=JSON] [--ttl=SECONDS]",
    "",
    "Every flag is also read from ANYCABLE_<FLAG_NAME> (e.g. ANYCABLE_RPC_HOST).",
    "Numbers must be non-negative unless a [min-max] range is shown.",
    "Precedence: flags > env vars > configuration file > defaults.",
    "",
    "CONFIGURATION FILE:",
    `  ${
      "--config-path=PATH".padEnd(38)
    } TOML configuration file (default: ./anycable.toml, else /etc/anycable/anycable.toml)`,
    `  ${"--ignore-config-path".padEnd(38)} Do not read a configuration file`,
    `  ${
      "--print-config".padEnd(38)
    } Print the resolved configuration as TOML (secrets masked) and exit`,
  ];
  let group = "";
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const spec: OptionSpec<unknown> = OPTIONS[name];
    if (spec.group !== group) {
      group = spec.group;
      lines.push("", `${group.toUpperCase()}:`);
    }
    const def = Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default);
    const flag = spec.type === "bool" ? `--${name}` : `--${name}=${spec.type.toUpperCase()}`;
    const extra = spec.env?.length ? `, env ${spec.env.join("/")}` : "";
    const range = spec.range && spec.range !== NON_NEGATIVE
      ? ` [${spec.range.min}-${spec.range.max}]`
      : "";
    lines.push(
      `  ${flag.padEnd(38)} ${spec.help}${range}${def !== "" ? ` (default: ${def})` : ""}${extra}`,
    );
  }
  return lines.join("\n");
}
