/**
 * Randomized delivery trials on one machine: the memory broker, the Deno KV broker, and two
 * server processes sharing one KV file. 0 missing, 0 duplicated, 0 reordered.
 */
import { CutProxy } from "./support/cut_proxy.ts";
import { runTrial } from "./support/delivery_trial.ts";
import { assertClean, batch, HISTORY, SIZE, twoNodeTrial } from "./support/trial_runs.ts";
import { startServer } from "./support/server.ts";

/**
 * A directory for the KV file: on tmpfs when the machine has one, since every publication is
 * a KV commit and a disk sync per commit would make the trial measure the disk instead.
 */
async function kvDir(): Promise<string> {
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory).catch(() => false);
  return await Deno.makeTempDir({ prefix: "cableway_trial_", dir: shm ? "/dev/shm" : undefined });
}

for (const broker of ["memory", "kv"]) {
  Deno.test(`randomized cuts, ${broker} broker: every client gets every message once, in order`, async () => {
    const dir = await kvDir();
    const flags = ["--norpc", "--public", `--broker=${broker}`, ...HISTORY];
    if (broker === "kv") flags.push(`--kv_path=${dir}/kv.sqlite`);
    const server = await startServer(flags, "warn");
    const proxy = new CutProxy(server.app.port);
    try {
      const result = await runTrial({
        name: `${broker} broker`,
        ...SIZE,
        proxies: [proxy],
        publish: async (_first, data) => (await server.broadcast(batch(data))).status === 201,
      });
      assertClean(result);
    } finally {
      proxy.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("randomized cuts, two processes on one Deno KV file: once, in order", async () => {
  const dir = await kvDir();
  await twoNodeTrial(
    "kv broker, two processes",
    ["--broker=kv", "--pubsub=kv", `--kv_path=${dir}/kv.sqlite`],
    () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  );
});
