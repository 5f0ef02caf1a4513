/**
 * Every option of AnyCable 1.6.16 (names and defaults copied into a fixture from its
 * `anycable-go --help`) is known to `--help`, parses as a flag and as an env var with the
 * reference default, and the ones that cannot apply on Deno say why, once.
 */
import assert from "node:assert/strict";
import { ConfigError, helpText, parseConfig } from "../src/config/config.ts";
import { OPTIONS } from "../src/config/options.ts";

interface FixtureOption {
  name: string;
  default: string;
  status: "supported" | "no_effect_on_deno" | "refused_when_set" | "elsewhere";
}
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/anycable_1_6_16_options.json", import.meta.url)),
) as { options: FixtureOption[] };

const env = (vars: Record<string, string> = {}) => ({ get: (k: string) => vars[k] });
const noFile = { configPaths: [] };
const FILE_FLAGS = ["config-path", "ignore-config-path", "print-config"];
const flagName = (name: string) => name.replaceAll("-", "_");
const envName = (name: string) => `ANYCABLE_${flagName(name).toUpperCase()}`;
/** Options other branches add; they are checked here once they exist in the table. */
const pending = (o: FixtureOption) => o.status === "elsewhere" && !(flagName(o.name) in OPTIONS);

Deno.test("the fixture holds the reference's 140 options", () => {
  assert.equal(fixture.options.length, 140);
  assert.equal(new Set(fixture.options.map((o) => o.name)).size, 140);
  const elsewhere = fixture.options.filter(pending).map((o) => o.name);
  if (elsewhere.length > 0) console.log(`provided on other branches: ${elsewhere.join(", ")}`);
});

Deno.test("--help lists every reference option", () => {
  const help = helpText("test");
  const missing = fixture.options.filter((o) => !pending(o)).filter((o) =>
    !help.includes(`--${flagName(o.name)}`) && !help.includes(`--${o.name}`)
  );
  assert.deepEqual(missing.map((o) => o.name), []);
});

Deno.test("every reference option parses with its reference default, as a flag and as an env var", () => {
  for (const o of fixture.options.filter((o) => !pending(o))) {
    if (FILE_FLAGS.includes(o.name)) continue;
    for (
      const [argv, vars] of [
        [[`--${o.name}=${o.default}`], {}],
        [[], o.default === "" ? {} : { [envName(o.name)]: o.default }],
      ] as [string[], Record<string, string>][]
    ) {
      let parsed;
      try {
        parsed = parseConfig(argv, env(vars), noFile);
      } catch (err) {
        assert.fail(`${o.name}=${o.default}: ${(err as Error).message}`);
      }
      const about = parsed.warnings.filter((w) => w.includes(`--${flagName(o.name)}`));
      assert.deepEqual(about, [], `${o.name} at its default warns`);
    }
  }
  for (const flag of ["--ignore-config-path", "--print-config", "--config-path="]) {
    parseConfig([flag], env(), noFile);
  }
});

function otherValue(name: string, def: string): string {
  const spec = OPTIONS[flagName(name) as keyof typeof OPTIONS];
  if (spec.type === "bool") return def === "true" ? "false" : "true";
  if (spec.type === "int") return String(Number(def) + 7);
  return "x.example:1";
}

Deno.test("options that cannot apply on Deno say why and what to use instead, once each", () => {
  for (const o of fixture.options.filter((o) => o.status === "no_effect_on_deno")) {
    const value = otherValue(o.name, o.default);
    const { warnings } = parseConfig([`--${o.name}=${value}`], env(), noFile);
    const about = warnings.filter((w) => w.includes(`--${flagName(o.name)}`));
    assert.equal(about.length, 1, `${o.name}: ${JSON.stringify(warnings)}`);
    assert.match(about[0], /Deno/, o.name);
    assert.match(about[0], /no effect/, o.name);
  }
  for (const o of fixture.options.filter((o) => o.status === "refused_when_set")) {
    assert.throws(
      () => parseConfig([`--${o.name}=${otherValue(o.name, o.default)}`], env(), noFile),
      (e: Error) =>
        e instanceof ConfigError && e.message.includes(`--${o.name}`) &&
        /Deno/.test(e.message) && /nats-server/.test(e.message),
    );
  }
});

Deno.test("deprecated reference options fill in their replacements", () => {
  const c = (argv: string[]) => parseConfig(argv, env(), noFile);
  const a = c(["--jwt_id_key=k", "--turbo_rails_key=t", "--disable_disconnect"]);
  assert.equal(a.config.jwt_secret, "k");
  assert.equal(a.config.turbo_streams_secret, "t");
  assert.equal(a.config.turbo_streams, true);
  assert.equal(a.config.disconnect_mode, "never");
  assert.equal(a.warnings.filter((w) => w.includes("deprecated")).length, 3);
  assert.equal(c(["--http_broadcast_secret=b"]).config.broadcast_key, "b");
  assert.equal(c(["--http_broadcast_secret=b", "--broadcast_key=k"]).config.broadcast_key, "k");
  assert.equal(c(["--rpc_request_timeout=0"]).config.rpc_request_timeout, 3000);
  assert.equal(c(["--metrics_log_interval=4"]).config.metrics_rotate_interval, 4);
});

Deno.test("the README's option table lists every option", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const missing = Object.keys(OPTIONS).filter((name) => !readme.includes(`| \`--${name}\``));
  assert.deepEqual(missing, []);
});
