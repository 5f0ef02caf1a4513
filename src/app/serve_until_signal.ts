import type { Logger } from "../logger/logger.ts";
import type { App } from "./app.ts";

/**
 * Serves until SIGTERM or SIGINT, then shuts down gracefully; a second signal exits at once.
 * Resolves with the process exit code.
 */
export function serveUntilSignal(app: App, logger: Logger): Promise<number> {
  const done = Promise.withResolvers<number>();
  let signals = 0;
  const onSignal = (signal: Deno.Signal) => {
    signals++;
    if (signals > 1) {
      logger.warn("second signal: exiting now", { signal });
      Deno.exit(1);
    }
    logger.info("signal received", { signal });
    app.shutdown().then(() => done.resolve(0), (err) => {
      logger.error("shutdown failed", { error: err });
      done.resolve(1);
    });
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => onSignal(signal));
  }
  return done.promise;
}
