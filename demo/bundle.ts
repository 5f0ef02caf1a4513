/**
 * Bundles the chat page's script (demo/client/chat.ts and @anycable/web from npm) for the
 * browser with `deno bundle`, in memory, once per start: nothing generated is committed.
 */

const ROOT = new URL("../", import.meta.url);

export function bundleClient(): Promise<string> {
  return bundleForBrowser("demo/client/chat.ts", { minify: true });
}

/** Bundles `entry` (a path from the repository root) and its npm imports for the browser. */
export async function bundleForBrowser(
  entry: string,
  opts: { minify?: boolean } = {},
): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      ...(opts.minify ? ["--minify"] : []),
      "--config",
      new URL("deno.dev.json", ROOT).pathname,
      new URL(entry, ROOT).pathname,
    ],
    cwd: ROOT.pathname,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const js = new TextDecoder().decode(stdout);
  if (code !== 0 || !js.trim()) {
    throw new Error(`deno bundle failed (exit ${code}): ${new TextDecoder().decode(stderr)}`);
  }
  return js;
}
