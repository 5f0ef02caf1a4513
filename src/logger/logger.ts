/** Levelled, structured logger: `text` (key=value) or `json` lines on stderr. */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

const stderrSink: LogSink = {
  write(line) {
    console.error(line);
  },
};

export class Logger {
  readonly #min: number;
  readonly #format: LogFormat;
  readonly #fields: LogFields;
  readonly #sink: LogSink;

  constructor(
    opts: { level?: LogLevel; format?: LogFormat; fields?: LogFields; sink?: LogSink } = {},
  ) {
    this.#min = LEVELS[opts.level ?? "info"];
    this.#format = opts.format ?? "text";
    this.#fields = opts.fields ?? {};
    this.#sink = opts.sink ?? stderrSink;
  }

  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger {
    return new Logger({
      level: levelName(this.#min),
      format: this.#format,
      fields: { ...this.#fields, ...fields },
      sink: this.#sink,
    });
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.#min;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVELS[level] < this.#min) return;
    const all = { ...this.#fields, ...fields };
    const time = new Date().toISOString();
    if (this.#format === "json") {
      this.#sink.write(JSON.stringify({ time, level, msg, ...normalize(all) }));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(normalize(all))) {
      const s = typeof v === "string" ? v : JSON.stringify(v);
      line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    }
    this.#sink.write(line);
  }
}

function normalize(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = v instanceof Error ? v.message : v;
  }
  return out;
}

function levelName(n: number): LogLevel {
  return (Object.keys(LEVELS) as LogLevel[]).find((l) => LEVELS[l] === n) ?? "info";
}

/** A logger that drops everything (tests). */
export const silentLogger = new Logger({ level: "error", sink: { write() {} } });
