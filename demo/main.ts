/**
 * `deno task demo [--port=8080] [other Cableway flags]`: a chat on Cableway with a small
 * HTTP RPC backend. Prints the URL to open; Ctrl-C stops it.
 */
import { ListenError } from "../src/app/listen_error.ts";
import { ConfigError } from "../src/config/config.ts";
import { startDemo } from "./demo_server.ts";

const USAGE = `Usage: deno task demo [--port=8080] [--host=localhost] [Cableway flags]

Starts Cableway with the memory broker, a chat backend (AnyCable HTTP RPC) and a chat page.
Open the printed URL in two browser windows, or add ?name=Alice to skip the name prompt.`;

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let demo;
  try {
    demo = await startDemo(args);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`demo: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ListenError) {
      console.error(`demo: ${err.message}`);
      return 2;
    }
    throw err;
  }
  console.log(`\nCableway chat demo: open ${demo.url} (try ${demo.url}?name=Alice)\n`);
  const stopped = Promise.withResolvers<void>();
  let stopping = false;
  const stop = () => {
    if (stopping) Deno.exit(1); // a second Ctrl-C: do not wait for the graceful shutdown
    stopping = true;
    demo.shutdown().then(stopped.resolve, stopped.resolve);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await stopped.promise;
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
