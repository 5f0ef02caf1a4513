import type { Logger } from "../logger/logger.ts";
import { RedisConnection } from "../util/redis_connection.ts";
import { RedisScript } from "../util/redis_script.ts";
import type { DurableStreamStore, StoredStream } from "./store.ts";
import { toBase64 } from "./streams.ts";
import type { DsEntry, DsMeta } from "./types.ts";

export interface RedisStreamStoreOptions {
  url: string;
  logger: Logger;
  /** Key prefix (tests). */
  prefix?: string;
}

/**
 * KEYS: version, meta, entries hash. ARGV: expected version ("" = absent), meta JSON ("" =
 * delete), entries hash of a dropped generation ("" = none), then field/value pairs. The
 * version only grows (it survives deletes), so a stale writer can never match a new stream.
 */
const COMMIT = new RedisScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if redis.call('EXISTS', KEYS[2]) == 0 then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then redis.call('DEL', ARGV[3]) end
redis.call('INCR', KEYS[1])
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
return 1
`);

/** Fields fetched per HMGET while reading. */
const READ_BATCH = 128;

/**
 * Durable Streams in Redis (the Redis broker's companion): `<prefix>m:<stream>` holds the meta
 * as JSON, `<prefix>v:<stream>` its version, `<prefix>e:<stream>:<generation>` a hash of entry
 * number -> `<group>|<base64 data>`. Streams survive restarts of Cableway.
 */
export class RedisStreamStore implements DurableStreamStore {
  readonly name = "redis";
  readonly durable = true;
  readonly #opts: RedisStreamStoreOptions;
  readonly #prefix: string;
  #conn?: RedisConnection;

  constructor(opts: RedisStreamStoreOptions) {
    this.#opts = opts;
    this.#prefix = opts.prefix ?? "cableway:ds:";
  }

  async start(): Promise<void> {
    this.#conn ??= await RedisConnection.open({
      url: this.#opts.url,
      logger: this.#opts.logger,
      failWhileDown: true,
    });
  }

  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = undefined;
    await conn?.close();
  }

  #c(): RedisConnection {
    if (!this.#conn) throw new Error("Redis stream store is not started");
    return this.#conn;
  }

  #entriesKey(stream: string, generation: string): string {
    return `${this.#prefix}e:${stream}:${generation}`;
  }

  async load(stream: string): Promise<StoredStream | null> {
    const reply = await this.#c().command([
      "MGET",
      `${this.#prefix}v:${stream}`,
      `${this.#prefix}m:${stream}`,
    ]) as (string | null)[];
    const [version, meta] = reply;
    if (meta === null || meta === undefined) return null;
    return { meta: JSON.parse(meta) as DsMeta, version: version ?? "" };
  }

  async commit(
    stream: string,
    expected: string | null,
    meta: DsMeta | null,
    entries: DsEntry[],
    drop?: string,
  ): Promise<boolean> {
    const args: string[] = [
      expected ?? "",
      meta === null ? "" : JSON.stringify(meta),
      drop === undefined ? "" : this.#entriesKey(stream, drop),
    ];
    for (const e of entries) args.push(String(e.n), `${e.group ?? ""}|${toBase64(e.data)}`);
    const res = await COMMIT.run(this.#c(), [
      `${this.#prefix}v:${stream}`,
      `${this.#prefix}m:${stream}`,
      this.#entriesKey(stream, meta?.generation ?? "none"),
    ], args);
    return res === 1;
  }

  async read(
    stream: string,
    generation: string,
    after: number,
    upTo: number,
    maxBytes: number,
  ): Promise<DsEntry[]> {
    const out: DsEntry[] = [];
    let bytes = 0;
    const key = this.#entriesKey(stream, generation);
    for (let from = after + 1; from <= upTo; from += READ_BATCH) {
      const fields: string[] = [];
      for (let n = from; n <= Math.min(upTo, from + READ_BATCH - 1); n++) fields.push(String(n));
      const values = await this.#c().command(["HMGET", key, ...fields]) as (string | null)[];
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v === null) continue;
        if (out.length > 0 && bytes >= maxBytes) return out;
        const bar = v.indexOf("|");
        const data = fromBase64(v.slice(bar + 1));
        const entry: DsEntry = { n: Number(fields[i]), data };
        if (bar > 0) entry.group = Number(v.slice(0, bar));
        out.push(entry);
        bytes += data.byteLength;
      }
    }
    return out;
  }
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
