/**
 * `deno task start` pays only for what the server imports: `deno task` installs every npm
 * package of deno.json's "imports" before it runs anything, so that map must hold the server's
 * packages and nothing else. Tests, bench and demo use deno.dev.json (a superset).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

type Imports = Record<string, string>;

async function imports(file: string): Promise<Imports> {
  return JSON.parse(await Deno.readTextFile(`${ROOT}${file}`)).imports ?? {};
}

/** `name@version` of an `npm:name@version[/path]` specifier. */
function npmPackage(specifier: string): string | undefined {
  const m = /^npm:\/?((?:@[^/]+\/)?[^/@]+@[^/]+)/.exec(specifier);
  return m?.[1];
}

/** Every "error" anywhere in a `deno info --json` answer. */
function errors(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => errors(v, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "error" && typeof v === "string") out.push(v);
      else errors(v, out);
    }
  }
  return out;
}

/** The npm packages (`name@version`) a server entry point imports directly, by deno.json. */
async function serverPackages(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(text);
  assert.deepEqual(
    errors(info.modules),
    [],
    `${entry} does not resolve with deno.json alone: a package the server imports belongs in ` +
      "deno.json (and deno.dev.json)",
  );
  const used = new Set<string>();
  for (const m of info.modules as Array<{ kind?: string; npmPackage?: string }>) {
    if (m.kind === "npm" && m.npmPackage) used.add(m.npmPackage);
  }
  return used;
}

Deno.test("deno.json imports exactly the server's npm packages; deno.dev.json has the same versions", async () => {
  const server = await imports("deno.json");
  const dev = await imports("deno.dev.json");
  for (const [name, target] of Object.entries(server)) {
    assert.equal(
      dev[name],
      target,
      `deno.dev.json must map "${name}" to ${target} as deno.json does`,
    );
  }
  const used = new Set([
    ...await serverPackages("main.ts"),
    ...await serverPackages("deploy/main.ts"),
  ]);
  const declared = new Set(Object.values(server).map((t) => npmPackage(t) ?? t));
  const unused = [...declared].filter((p) => !used.has(p));
  assert.deepEqual(
    unused,
    [],
    "deno.json lists packages the server never imports: `deno task start` would download them " +
      "(move test, bench and demo packages to deno.dev.json)",
  );
  assert.ok(used.size > 0 && [...used].every((p) => declared.has(p)), [...used].join(", "));
});

Deno.test("start and compile run with deno.json; test, check, bench and demo tasks name deno.dev.json", async () => {
  const tasks: Record<string, string> =
    JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  for (const name of ["start", "compile"]) {
    assert.doesNotMatch(tasks[name], /--config/, name);
  }
  for (const name of ["test", "bench", "demo", "demo:screenshot"]) {
    assert.match(tasks[name], /--config deno\.dev\.json/, name);
  }
  assert.match(tasks.check, /deno check --config deno\.dev\.json tests\//);
});
