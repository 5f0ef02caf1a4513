/**
 * CI's smoke check of the benchmark: every scenario at 100-200 clients, one repetition, against
 * the raw baseline and Cableway (with the fake RPC backend and Redis where a scenario needs
 * them). It checks that the benchmark works and that nothing was lost, duplicated or reordered;
 * the figures are not judged here (see bench/README.md).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

async function has(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

// the cluster scenario runs two Cableway nodes over a real redis-server
const tools = await has("cc", ["--version"]) && await has("taskset", ["-V"]) &&
  await has("redis-server", ["--version"]);
if (!tools) {
  console.warn("cc, taskset or redis-server not installed: the benchmark smoke check is ignored");
}

Deno.test({
  name:
    "benchmark smoke tier: every scenario (RPC storm, many streams, 2-node cluster included) runs at 100-200 clients with no lost message",
  ignore: !tools,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}bench/run.ts`, "--smoke"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(240_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text.slice(-3000));
    assert.match(text, /PASS\s+correctness/);
  },
});
