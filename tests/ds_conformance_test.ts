/**
 * The official Durable Streams server conformance suite
 * (`@durable-streams/server-conformance-tests`, run by vitest under Node from
 * tests/ds_conformance/) against Cableway with the memory and the Deno KV brokers. Prints the
 * suite's counts; the reference server passes 324 of its 338 tests.
 */
import assert from "node:assert/strict";
import { spawnServer } from "./support/process.ts";

const DIR = new URL("./ds_conformance/", import.meta.url).pathname;
const REFERENCE_PASSED = 324;

function hasCommand(name: string): boolean {
  try {
    return new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const NODE = hasCommand("node") && hasCommand("npm");

/**
 * Installs the suite's pinned packages (package-lock.json) unless they are there already;
 * returns why it could not (then the test is ignored, saying so).
 */
async function installSuite(): Promise<string | null> {
  if (!NODE) return "node/npm not installed";
  const marker = `${DIR}node_modules/@durable-streams/server-conformance-tests/package.json`;
  try {
    const version = JSON.parse(await Deno.readTextFile(marker)).version;
    if (version === "0.3.6") return null;
  } catch {
    // not installed yet
  }
  const out = await new Deno.Command("npm", {
    // `npm install` keeps the lockfile's versions; `npm ci` of npm 11 refuses this lockfile over
    // an optional platform package it lists without a version.
    args: ["install", "--no-audit", "--no-fund", "--silent"],
    cwd: DIR,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return out.success ? null : "npm install of the conformance suite failed (registry unreachable?)";
}

const UNAVAILABLE = await installSuite();
if (UNAVAILABLE) console.log(`ds conformance: not run: ${UNAVAILABLE}`);

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  total: number;
  failures: string[];
  seconds: number;
}

async function runSuite(broker: string, flags: string[]): Promise<Counts> {
  // A process of its own, so the server and this test runner can use both cores.
  const server = await spawnServer([
    "--public",
    "--ds",
    "--ds_poll_interval=1",
    "--ds_sse_ttl=30",
    "--broadcast_key=conformance", // mounted on the main port (no fixed 8090)
    ...flags,
  ]);
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const report = await Deno.makeTempFile({ suffix: ".json" });
  const started = Date.now();
  try {
    const out = await new Deno.Command("node", {
      args: [
        "node_modules/vitest/vitest.mjs",
        "run",
        "suite.test.mjs",
        "--testTimeout=20000",
        "--reporter=json",
        `--outputFile=${report}`,
      ],
      cwd: DIR,
      env: {
        DS_BASE_URL: `${baseUrl}/ds`,
        DS_BROKER: broker,
        DS_LONG_POLL_MS: "1000",
        NO_COLOR: "1",
      },
      stdout: "null",
      stderr: "piped",
    }).output();
    const json = JSON.parse(await Deno.readTextFile(report).catch(() => "{}"));
    if (json.numTotalTests === undefined) {
      throw new Error(`vitest gave no report: ${new TextDecoder().decode(out.stderr)}`);
    }
    const failures: string[] = [];
    for (const file of json.testResults ?? []) {
      for (const t of file.assertionResults ?? []) {
        if (t.status === "failed") failures.push(t.fullName ?? t.title);
      }
    }
    return {
      passed: json.numPassedTests,
      failed: json.numFailedTests,
      skipped: json.numPendingTests + (json.numTodoTests ?? 0),
      total: json.numTotalTests,
      failures,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
    await Deno.remove(report).catch(() => {});
  }
}

Deno.test({
  name: UNAVAILABLE
    ? `Durable Streams conformance suite (ignored: ${UNAVAILABLE})`
    : "Durable Streams conformance suite: memory and KV brokers",
  ignore: UNAVAILABLE !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kvPath = await Deno.makeTempFile({ suffix: ".sqlite" });
    try {
      const [memory, kv] = await Promise.all([
        runSuite("memory", ["--broker=memory"]),
        runSuite("kv", ["--broker=kv", `--kv_path=${kvPath}`]),
      ]);
      for (const [name, c] of [["memory", memory], ["kv", kv]] as const) {
        console.log(
          `ds conformance (${name} broker): ${c.passed} passed, ${c.failed} failed, ` +
            `${c.skipped} skipped of ${c.total} in ${c.seconds.toFixed(1)} s`,
        );
        for (const f of c.failures) console.log(`  failed: ${f}`);
      }
      assert.ok(memory.passed >= REFERENCE_PASSED, `memory broker: ${memory.passed} passed`);
      assert.ok(kv.passed >= REFERENCE_PASSED, `kv broker: ${kv.passed} passed`);
    } finally {
      for (const suffix of ["", "-shm", "-wal"]) await Deno.remove(kvPath + suffix).catch(() => {});
    }
  },
});
