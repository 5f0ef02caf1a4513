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

/** At most `lines` lines per `perMs` window; the rest are counted and summed up in one line. */
export interface LogBudget {
  readonly lines: number;
  readonly perMs: number;
}

interface Budgeted {
  readonly budget: LogBudget;
  windowStart: number;
  used: number;
  suppressed: number;
}

export class Logger {
  readonly #min: number;
  readonly #format: LogFormat;
  readonly #fields: LogFields;
  readonly #sink: LogSink;
  #limit?: Budgeted;

  constructor(
    opts: { level?: LogLevel; format?: LogFormat; fields?: LogFields; sink?: LogSink } = {},
  ) {
    this.#min = LEVELS[opts.level ?? "info"];
    this.#format = opts.format ?? "text";
    this.#fields = opts.fields ?? {};
    this.#sink = opts.sink ?? stderrSink;
  }

  /**
   * A logger that adds `fields` to every line. With a `budget`, the child writes at most that
   * many lines per window (one client cannot flood the log); what it drops is reported by one
   * `log lines suppressed` line when the next window opens or on flush().
   */
  child(fields: LogFields, budget?: LogBudget): Logger {
    const child = new Logger({
      level: levelName(this.#min),
      format: this.#format,
      fields: { ...this.#fields, ...fields },
      sink: this.#sink,
    });
    if (budget) child.#limit = { budget, windowStart: Date.now(), used: 0, suppressed: 0 };
    return child;
  }

  /** Writes the summary of lines the budget dropped, if any. */
  flush(): void {
    const limit = this.#limit;
    if (!limit || limit.suppressed === 0) return;
    const suppressed = limit.suppressed;
    limit.suppressed = 0;
    this.#write("warn", "log lines suppressed", {
      suppressed,
      window_seconds: limit.budget.perMs / 1000,
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
    const limit = this.#limit;
    if (limit) {
      const now = Date.now();
      if (now - limit.windowStart >= limit.budget.perMs) {
        this.flush();
        limit.windowStart = now;
        limit.used = 0;
      }
      if (limit.used >= limit.budget.lines) {
        limit.suppressed++;
        return;
      }
      limit.used++;
    }
    this.#write(level, msg, fields);
  }

  #write(level: LogLevel, msg: string, fields?: LogFields): void {
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
