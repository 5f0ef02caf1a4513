import { type App, startApp } from "../../src/app/app.ts";
import { parseConfig } from "../../src/config/config.ts";
import { Logger, type LogLevel } from "../../src/logger/logger.ts";

export interface TestServer {
  app: App;
  /** http://127.0.0.1:<port> */
  url: string;
  /** ws://127.0.0.1:<port>/cable */
  wsUrl: string;
  /** Lines the server logged (JSON objects). */
  logs: Array<Record<string, unknown>>;
  /** POSTs a publication to the HTTP broadcast endpoint (with the derived key if any). */
  broadcast(body: unknown, key?: string): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * Starts a real Cableway on 127.0.0.1:0 from CLI-style flags, e.g.
 * `startServer(["--norpc", "--public"])`. Broadcasts are mounted on the main port unless a
 * flag says otherwise.
 */
export async function startServer(
  flags: string[] = [],
  level: LogLevel = "debug",
): Promise<TestServer> {
  const keyed = flags.some((f) =>
    f.startsWith("--http_broadcast_port") || f.startsWith("--secret") ||
    f.startsWith("--broadcast_key")
  );
  const { config } = parseConfig(
    [
      "--host=127.0.0.1",
      "--port=0",
      ...(keyed ? [] : ["--broadcast_key=test-key"]),
      ...flags,
    ],
    { get: () => undefined },
  );
  const logs: Array<Record<string, unknown>> = [];
  const logger = new Logger({
    level,
    format: "json",
    sink: { write: (line) => logs.push(JSON.parse(line)) },
  });
  const app = await startApp(config, logger);
  const url = `http://127.0.0.1:${app.port}`;
  const broadcastUrl = `http://127.0.0.1:${app.broadcastPort}${config.http_broadcast_path}`;
  return {
    app,
    url,
    wsUrl: `ws://127.0.0.1:${app.port}${config.path[0]}`,
    logs,
    async broadcast(body: unknown, key?: string) {
      const headers: Record<string, string> = {};
      const k = key ?? (config.broadcast_key === "none" ? "" : config.broadcast_key);
      if (k) headers.authorization = `Bearer ${k}`;
      const res = await fetch(broadcastUrl, {
        method: "POST",
        headers,
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      await res.body?.cancel();
      return res;
    },
    stop: () => app.shutdown(),
  };
}
