/**
 * The whole demo in one process: the chat backend (HTTP RPC, on an internal loopback port)
 * and Cableway, with the chat page mounted on Cableway's main server.
 */
import { type App, startApp } from "../src/app/app.ts";
import { parseConfig } from "../src/config/config.ts";
import { Logger, type LogLevel } from "../src/logger/logger.ts";
import { createChatBackend } from "./chat_backend.ts";
import { createPageRoutes } from "./page_routes.ts";

export interface Demo {
  app: App;
  /** The page to open, e.g. http://localhost:8080/ */
  url: string;
  shutdown(): Promise<void>;
}

export interface DemoOptions {
  /** Where ANYCABLE_* variables come from (default: the process environment). */
  env?: { get(name: string): string | undefined };
  /** Default: text lines on stderr at the configured --log_level. */
  logger?: Logger;
}

/**
 * Starts the demo. `argv` takes Cableway's flags (`--port=0`, `--host`, `--log_level`, ...);
 * the demo fixes the RPC host and the keys, and turns the memory broker on (history,
 * sessions, presence) unless `--broker` says otherwise.
 */
export async function startDemo(argv: string[], opts: DemoOptions = {}): Promise<Demo> {
  const rpcSecret = randomKey();
  const broadcastKey = randomKey();
  let broadcastUrl = "";
  const backend = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    createChatBackend({
      rpcSecret,
      broadcast: (stream, data) => publish(broadcastUrl, broadcastKey, stream, data),
    }),
  );
  try {
    const { config, warnings } = parseConfig([
      "--broker=memory",
      // A tab that vanished without leaving (crash, lost network) drops off the online list
      // after 2 s instead of 15.
      "--presence_ttl=2",
      ...argv,
      `--rpc_host=http://127.0.0.1:${backend.addr.port}/rpc`,
      `--http_rpc_secret=${rpcSecret}`,
      `--broadcast_key=${broadcastKey}`,
    ], opts.env ?? Deno.env);
    const logger = opts.logger ??
      new Logger({ level: config.log_level as LogLevel, format: config.log_format as "text" });
    for (const w of warnings) logger.warn(w);
    const app = await startApp(config, logger, await createPageRoutes());
    const host = urlHost(config.host);
    broadcastUrl = `http://${host}:${app.broadcastPort}${config.http_broadcast_path}`;
    return {
      app,
      url: `http://${host}:${app.port}/`,
      async shutdown() {
        await app.shutdown();
        await backend.shutdown();
      },
    };
  } catch (err) {
    await backend.shutdown();
    throw err;
  }
}

async function publish(url: string, key: string, stream: string, data: unknown): Promise<void> {
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ stream, data: JSON.stringify(data) }),
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`broadcast answered ${res.status}`);
}

function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A host to put in a URL that reaches the server from this machine. */
function urlHost(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
