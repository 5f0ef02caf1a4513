import { startApp } from "./src/app/app.ts";
import { ListenError } from "./src/app/listen_error.ts";
import { serveUntilSignal } from "./src/app/serve_until_signal.ts";
import { ConfigError, helpText, parseConfig } from "./src/config/config.ts";
import { configToToml } from "./src/config/print_config.ts";
import { IDENTITY_SUBCOMMANDS, runIdentityCli } from "./src/identity/cli.ts";
import { type LogFormat, Logger, type LogLevel } from "./src/logger/logger.ts";
import { VERSION } from "./src/version.ts";

async function main(args: string[]): Promise<number> {
  if ((IDENTITY_SUBCOMMANDS as readonly string[]).includes(args[0])) {
    return await runIdentityCli(args);
  }
  let parsed;
  try {
    parsed = parseConfig(args);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`cableway: ${err.message} (see --help)`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    console.log(helpText(VERSION));
    return 0;
  }
  if (parsed.version) {
    console.log(VERSION);
    return 0;
  }
  if (parsed.printConfig) {
    for (const w of parsed.warnings) console.error(`cableway: warning: ${w}`);
    console.log(configToToml(parsed.config, parsed.configFile));
    return 0;
  }
  const { config } = parsed;
  const logger = new Logger({
    level: config.log_level as LogLevel,
    format: config.log_format as LogFormat,
  });
  if (parsed.configFile) logger.info("using configuration from file", { path: parsed.configFile });
  for (const w of parsed.warnings) logger.warn(w);
  let app;
  try {
    app = await startApp(config, logger);
  } catch (err) {
    logger.error("failed to start", { error: err });
    // A busy port is a usage error (the message names the port and its flag), as is a bad flag.
    return err instanceof ListenError ? 2 : 1;
  }
  return await serveUntilSignal(app, logger);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
