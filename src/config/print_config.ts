/**
 * `--print-config`: the resolved configuration as `anycable.toml` (the reference's sections),
 * secrets masked, so the output can be saved and edited into a configuration file.
 */
import { stringify } from "smol-toml";
import { type Config, type OptionName, OPTIONS } from "./options.ts";
import { TOML_KEYS } from "./toml_keys.ts";

export const MASK = "[masked]";

/** Options whose values are secrets (keys, passwords); paths to key files are not. */
export function isSecretOption(name: string): boolean {
  if (name.endsWith("_path") || name === "ssl_key") return false;
  return name.includes("secret") || name.endsWith("_key") || name.includes("password");
}

/** `scheme://user:password@host` -> the password masked; each comma-separated entry. */
export function maskUrlCredentials(value: string): string {
  return value.replace(/(^|,|\/\/)([^,/@:]*):([^,@/]+)@/g, (_m, lead, user) => {
    return `${lead}${user}:${MASK}@`;
  });
}

const URL_OPTIONS = new Set(["redis_url", "nats_servers", "rpc_host", "redis_sentinels"]);

export function printableValue(name: OptionName, value: unknown): unknown {
  if (typeof value === "string" && value !== "" && value !== "none" && isSecretOption(name)) {
    return MASK;
  }
  if (typeof value === "string" && URL_OPTIONS.has(name)) return maskUrlCredentials(value);
  if (name === "metrics_tags" && Array.isArray(value)) {
    const table: Record<string, string> = {};
    for (const tag of value as string[]) {
      const i = tag.indexOf(":");
      if (i > 0) table[tag.slice(0, i)] = tag.slice(i + 1);
    }
    return table;
  }
  return value;
}

export function configToToml(config: Config, source?: string): string {
  const top: Record<string, unknown> = {};
  const sections: Record<string, unknown> = {};
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const value = printableValue(name, config[name]);
    const key = TOML_KEYS[name];
    if (!key) {
      top[name] = value;
      continue;
    }
    const parts = key.split(".");
    if (parts.length === 1) {
      top[key] = value;
      continue;
    }
    let table = sections as Record<string, unknown>;
    for (const part of parts.slice(0, -1)) {
      table[part] ??= {};
      table = table[part] as Record<string, unknown>;
    }
    table[parts[parts.length - 1]] = value;
  }
  const header = [
    "# Cableway configuration (AnyCable-Go's anycable.toml layout); secrets are masked.",
    `# Resolved from: defaults${source ? `, ${source}` : ""}, env, flags.`,
    "",
  ].join("\n");
  return `${header}${stringify(top)}\n\n${stringify(sections)}\n`;
}
