/**
 * `cableway sign-stream` and `cableway jwt`: helpers that mint signed stream names and
 * identification tokens with the same secrets the server verifies them with.
 *
 * Contract: `runIdentityCli(args, io)` never throws and never exits the process; it writes
 * results through `io.out`, diagnostics through `io.err`, and returns the exit code
 * (0 success, 1 any error). `args[0]` is the subcommand.
 */

import { parseArgs } from "node:util";
import { issueToken, type JwtAlgorithm } from "./jwt.ts";
import { signStream } from "./signed_stream.ts";

export interface IdentityCliIo {
  /** Receives each line of normal output (default: console.log). */
  out?: (line: string) => void;
  /** Receives each line of diagnostics (default: console.error). */
  err?: (line: string) => void;
  /** Environment lookup (default: Deno.env.get; unreadable variables count as unset). */
  env?: (name: string) => string | undefined;
  /** Clock in milliseconds used for `exp` (default: Date.now). */
  now?: () => number;
}

export const IDENTITY_SUBCOMMANDS = ["sign-stream", "jwt"] as const;

export const IDENTITY_CLI_USAGE = `Usage:
  cableway sign-stream <name> [--secret=S]
      Print the signed form of stream <name> (for $pubsub signed_stream_name).
      Secret: --secret, else $ANYCABLE_STREAMS_SECRET, else $ANYCABLE_SECRET.

  cableway jwt [--secret=S] [--ext=JSON | --id key=value ...] [--ttl=SECONDS] [--alg=HS256]
      Print an identification token whose "ext" claim holds the identifiers.
      --ext     identifiers as a JSON object, e.g. --ext='{"user_id":42}'
      --id      one identifier (string value); repeatable; merged over --ext
      --ttl     lifetime in seconds (positive integer); without it the token never expires
      --alg     HS256 (default), HS384 or HS512
      Secret: --secret, else $ANYCABLE_JWT_SECRET, else $ANYCABLE_SECRET.

  Options: -h, --help  show this help`;

/** A user-facing error: reported on stderr with exit code 1. */
class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Explicit --secret wins (and must be non-empty); then the first non-empty variable. */
function resolveSecret(
  flag: string | undefined,
  env: (name: string) => string | undefined,
  variables: string[],
): string {
  if (flag !== undefined) {
    if (flag === "") throw new CliUsageError("--secret must not be empty");
    return flag;
  }
  for (const name of variables) {
    const value = env(name);
    if (value) return value;
  }
  throw new CliUsageError(
    `missing secret: pass --secret or set ${variables.map((v) => `$${v}`).join(" or ")}`,
  );
}

type Output = (line: string) => void;
type Env = (name: string) => string | undefined;

async function runSignStream(args: string[], out: Output, env: Env): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      secret: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return out(IDENTITY_CLI_USAGE);
  if (positionals.length !== 1) {
    throw new CliUsageError("sign-stream expects exactly one stream name");
  }
  const secret = resolveSecret(values.secret, env, ["ANYCABLE_STREAMS_SECRET", "ANYCABLE_SECRET"]);
  out(await signStream(positionals[0], secret));
}

function parseExt(ext: string | undefined): Record<string, unknown> {
  if (ext === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(ext);
  } catch {
    throw new CliUsageError(`--ext is not valid JSON: ${ext}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CliUsageError("--ext must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function parseTtl(ttl: string | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  if (!/^\d+$/.test(ttl) || Number(ttl) <= 0 || !Number.isSafeInteger(Number(ttl))) {
    throw new CliUsageError(`--ttl must be a positive integer number of seconds, got ${ttl}`);
  }
  return Number(ttl);
}

function parseAlg(alg: string | undefined): JwtAlgorithm {
  if (alg === undefined) return "HS256";
  if (alg === "HS256" || alg === "HS384" || alg === "HS512") return alg;
  throw new CliUsageError(`--alg must be HS256, HS384 or HS512, got ${alg}`);
}

async function runJwt(args: string[], out: Output, env: Env, now: () => number): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      secret: { type: "string" },
      ext: { type: "string" },
      id: { type: "string", multiple: true },
      ttl: { type: "string" },
      alg: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return out(IDENTITY_CLI_USAGE);
  if (positionals.length > 0) {
    throw new CliUsageError(`jwt takes no positional arguments, got: ${positionals.join(" ")}`);
  }
  const ttl = parseTtl(values.ttl);
  const alg = parseAlg(values.alg);

  // With --ext alone the JSON text is kept verbatim; --id entries force a re-encode.
  let identifiers: Record<string, unknown> | string = values.ext ?? "{}";
  const parsed = parseExt(values.ext);
  if (values.id && values.id.length > 0) {
    for (const pair of values.id) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new CliUsageError(`--id expects key=value, got ${pair}`);
      parsed[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    identifiers = parsed;
  }

  const secret = resolveSecret(values.secret, env, ["ANYCABLE_JWT_SECRET", "ANYCABLE_SECRET"]);
  out(await issueToken(identifiers, secret, ttl, now(), alg));
}

/** Runs `sign-stream` or `jwt` (`args[0]`) with the remaining args; returns the exit code. */
export async function runIdentityCli(args: string[], io: IdentityCliIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  const env = io.env ?? defaultEnv;
  const now = io.now ?? Date.now;
  const [command, ...rest] = args;

  try {
    switch (command) {
      case "sign-stream":
        await runSignStream(rest, out, env);
        return 0;
      case "jwt":
        await runJwt(rest, out, env, now);
        return 0;
      case "-h":
      case "--help":
      case "help":
        out(IDENTITY_CLI_USAGE);
        return 0;
      default:
        throw new CliUsageError(
          command === undefined ? "missing subcommand" : `unknown subcommand: ${command}`,
        );
    }
  } catch (error) {
    // parseArgs reports unknown/malformed options as TypeError with an ERR_PARSE_ARGS code.
    const message = error instanceof Error ? error.message : String(error);
    err(`error: ${message}`);
    if (error instanceof CliUsageError || error instanceof TypeError) {
      err("Run with --help for usage.");
    }
    return 1;
  }
}
