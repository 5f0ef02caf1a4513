/**
 * Deno Deploy entry point (see deploy/README.md).
 *
 * The configuration is the usual one (ANYCABLE_* env vars, plus any arguments given to the
 * entrypoint), with Deploy-suited defaults filling in what the environment leaves unset:
 * sessions, history and presence in Deno KV, cross-isolate delivery through Deno KV, every
 * endpoint on the one public port. RPC to the application works over `fetch`: HTTP JSON or
 * gRPC-web (`ANYCABLE_RPC_IMPL=grpc-web`); native gRPC is warned about (see deployRpcWarning). The wiring is src/app/app.ts's `startApp`, as for main.ts.
 */
import { rpcImplOf, startApp } from "../src/app/app.ts";
import { serveUntilSignal } from "../src/app/serve_until_signal.ts";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import { type Config, OPTIONS } from "../src/config/options.ts";
import { type LogFormat, Logger, type LogLevel } from "../src/logger/logger.ts";

type Env = { get(name: string): string | undefined };

/** Deno Deploy stops an isolate 5 s after SIGINT; shutdown must finish before that. */
const SHUTDOWN_TIMEOUT_SECONDS = 3;

/**
 * Defaults for Deploy, by env var name. The port comes from ANYCABLE_PORT or PORT (on Deploy
 * the platform rebinds the first server anyway); HTTP broadcasts are mounted on that same
 * port, because an isolate has a single public port.
 */
export function deployDefaults(env: Env): Record<string, string> {
  const port = env.get("ANYCABLE_PORT") || env.get("PORT") || String(OPTIONS.port.default);
  return {
    ANYCABLE_BROKER: "kv",
    ANYCABLE_PUBSUB: "kv",
    ANYCABLE_HOST: "0.0.0.0",
    ANYCABLE_PORT: port,
    ANYCABLE_HTTP_BROADCAST_PORT: port,
    ANYCABLE_SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT_SECONDS),
    ANYCABLE_LOG_FORMAT: "json",
    // Deploy's supported outbound path is fetch (the native client dials raw TCP).
    ANYCABLE_RPC_HTTP_CLIENT: "fetch",
  };
}

/** `env` with Deploy defaults for the names it leaves unset or empty. */
export function deployEnv(env: Env): Env {
  const defaults = deployDefaults(env);
  return {
    get(name: string) {
      const value = env.get(name);
      return value !== undefined && value !== "" ? value : defaults[name];
    },
  };
}

/**
 * Why `config` must not run on Deploy, if it must not. Every endpoint there is public, so an
 * HTTP broadcast endpoint nobody gave a key (or an explicit `none`, or `--public`) is refused
 * instead of being served unauthenticated.
 */
export function deployProblem(config: Config): string | undefined {
  if (!config.broadcast_adapter.includes("http")) return undefined;
  if (config.broadcast_key !== "" || config.secret !== "") return undefined;
  return "/_broadcast would be public and unauthenticated: set ANYCABLE_SECRET or " +
    "ANYCABLE_BROADCAST_KEY (or ANYCABLE_BROADCAST_KEY=none to allow it knowingly)";
}

/**
 * A warning when `config`'s RPC transport is not one that works on Deploy. HTTP JSON and
 * gRPC-web run over `fetch` and work there; native gRPC needs a raw HTTP/2 client connection
 * to the backend, which Deploy does not offer as a supported path.
 */
export function deployRpcWarning(config: Config): string | undefined {
  if (config.norpc || rpcImplOf(config) !== "grpc") return undefined;
  return `native gRPC to ${config.rpc_host} is not a supported RPC transport on Deno Deploy: ` +
    "use gRPC-web (ANYCABLE_RPC_IMPL=grpc-web, ANYCABLE_RPC_HOST=https://...), HTTP RPC " +
    "(ANYCABLE_RPC_HOST=https://...), or ANYCABLE_NORPC=true";
}

export async function main(args: string[], env: Env = Deno.env): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(args, deployEnv(env));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`cableway (deploy): ${err.message}`);
      return 2;
    }
    throw err;
  }
  const { config } = parsed;
  const problem = deployProblem(config);
  if (problem) {
    console.error(`cableway (deploy): ${problem}`);
    return 2;
  }
  const logger = new Logger({
    level: config.log_level as LogLevel,
    format: config.log_format as LogFormat,
  });
  for (const w of parsed.warnings) logger.warn(w);
  const rpcWarning = deployRpcWarning(config);
  if (rpcWarning) logger.warn(rpcWarning);
  let app;
  try {
    app = await startApp(config, logger);
  } catch (err) {
    logger.error("failed to start", { error: err });
    return 1;
  }
  return await serveUntilSignal(app, logger);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
