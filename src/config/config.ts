import {
  type Config,
  envNames,
  NON_NEGATIVE,
  type OptionName,
  OPTIONS,
  type OptionSpec,
} from "./options.ts";

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
}

type Env = { get(name: string): string | undefined };

/** argv + env -> resolved Config. Flags win over env vars, env vars over defaults. */
export function parseConfig(argv: string[], env: Env = Deno.env): ParsedArgs {
  const values: Record<string, unknown> = {};
  const explicit = new Set<OptionName>();
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    values[name] = OPTIONS[name].default;
    for (const envName of envNames(name).reverse()) {
      const raw = env.get(envName);
      if (raw !== undefined && raw !== "") {
        values[name] = convert(name, raw, envName);
        explicit.add(name);
      }
    }
  }
  let help = false;
  let version = false;
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
    const name = rawName.replaceAll("-", "_") as OptionName;
    if (!(name in OPTIONS)) throw new ConfigError(`unknown flag: --${rawName}`);
    const spec: OptionSpec<unknown> = OPTIONS[name];
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.type === "bool") raw = "true";
    else if (i + 1 < argv.length) raw = argv[++i];
    else throw new ConfigError(`flag --${rawName} needs a value`);
    values[name] = convert(name, raw, `--${rawName}`);
    explicit.add(name);
  }
  const warnings: string[] = [];
  const config = resolve(values, explicit, warnings);
  return { config, explicit, help, version, warnings };
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
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (["true", "1", "yes", "t", "y", "on"].includes(v)) return true;
      if (["false", "0", "no", "f", "n", "off"].includes(v)) return false;
      throw new ConfigError(`${source}: not a boolean: ${raw}`);
    }
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
  broker: ["", "none", "memory", "kv", "redis", "nats"],
  pubsub: ["", "none", "redis", "nats", "kv"],
};
const ADAPTERS = ["http", "redis", "redisx", "nats"];
const PRESETS = ["broker"];

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
 * shared/PROTOCOL.md §10: without an explicit --pubsub, the Redis broker, the redisx adapter
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
