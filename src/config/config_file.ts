/**
 * `anycable.toml`: read, map the reference's sections onto options, convert types. Errors name
 * the file, the line and the key.
 */
import { parse, TomlError } from "smol-toml";
import { type OptionName, OPTIONS, type OptionSpec } from "./options.ts";
import { TOML_ALIASES, TOML_IGNORED, TOML_KEYS } from "./toml_keys.ts";

/** Searched in this order when no `--config-path` is given. */
export const DEFAULT_CONFIG_PATHS = ["./anycable.toml", "/etc/anycable/anycable.toml"];

export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

export interface ConfigFileValues {
  values: Map<OptionName, unknown>;
  warnings: string[];
}

const BY_KEY = new Map<string, OptionName>(
  (Object.entries(TOML_KEYS) as [OptionName, string][]).map(([name, key]) => [key, name]),
);

/** Reads and converts a configuration file. */
export function loadConfigFile(path: string): ConfigFileValues {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigFileError(`${path}: cannot read the configuration file: ${message(err)}`);
  }
  return parseConfigFile(text, path);
}

export function parseConfigFile(text: string, file: string): ConfigFileValues {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0];
      throw new ConfigFileError(`${file}:${err.line}:${err.column}: ${first}`);
    }
    throw err;
  }
  const lines = keyLines(text);
  const lineOf = (key: string) =>
    lines.get(key) ?? [...lines].find(([k]) => k.startsWith(`${key}.`))?.[1] ?? "?";
  const where = (key: string) => `${file}:${lineOf(key)}: ${key}`;
  const values = new Map<OptionName, unknown>();
  const warnings: string[] = [];
  for (const [key, raw] of flatten(doc)) {
    const canonical = TOML_ALIASES[key] ?? key;
    const name = optionFor(canonical);
    if (!name) {
      if (!TOML_IGNORED.has(canonical)) {
        warnings.push(`${where(key)}: unknown key, ignored`);
      }
      continue;
    }
    values.set(name, convertValue(name, raw, where(key)));
  }
  return { values, warnings };
}

function optionFor(key: string): OptionName | undefined {
  const mapped = BY_KEY.get(key);
  if (mapped) return mapped;
  if (!key.includes(".") && key in OPTIONS) return key as OptionName;
  const parts = key.split(".");
  if (parts.length === 2) {
    const joined = `${parts[0]}_${parts[1]}`;
    if (joined in OPTIONS) return joined as OptionName;
  }
  return undefined;
}

/** Dotted keys down to values; `metrics.tags` (a table of labels) stays one value. */
function flatten(doc: Record<string, unknown>, prefix = ""): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isTable(v) && key !== "metrics.tags") out.push(...flatten(v, key));
    else out.push([key, v]);
  }
  return out;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function convertValue(name: OptionName, raw: unknown, where: string): unknown {
  const spec: OptionSpec<unknown> = OPTIONS[name];
  const fail = (expected: string): never => {
    throw new ConfigFileError(`${where}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case "string":
      if (typeof raw === "string") return raw;
      // The reference writes the embedded NATS gateways as an array joined by ";".
      if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) return raw.join(";");
      return fail("a string");
    case "int":
      if (typeof raw === "number" && Number.isInteger(raw)) return raw;
      if (typeof raw === "bigint") return Number(raw);
      return fail("an integer");
    case "float":
      if (typeof raw === "number") return raw;
      return fail("a number");
    case "bool":
      if (typeof raw === "boolean") return raw;
      return fail("true or false");
    case "list":
      if (typeof raw === "string") {
        return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
      }
      if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) return [...raw];
      if (name === "metrics_tags" && isTable(raw)) {
        return Object.entries(raw).map(([k, v]) => {
          if (typeof v !== "string" && typeof v !== "number") fail("a table of strings");
          return `${k}:${v}`;
        });
      }
      return fail("a string or an array of strings");
  }
}

/** The line each dotted key is set on (1-based), following `[section]` headers. */
function keyLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let section = "";
  text.split("\n").forEach((line, i) => {
    const header = line.match(/^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/);
    if (header) {
      section = dotted(header[1]);
      return;
    }
    const assign = line.match(/^\s*([A-Za-z0-9_\-."' ]+?)\s*=/);
    if (!assign) return;
    const key = dotted(assign[1]);
    const full = section ? `${section}.${key}` : key;
    if (!out.has(full)) out.set(full, i + 1);
  });
  return out;
}

function dotted(raw: string): string {
  return raw.split(".").map((p) => p.trim().replace(/^["']|["']$/g, "")).join(".");
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
