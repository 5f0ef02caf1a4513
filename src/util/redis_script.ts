/** A Lua script run with EVALSHA, falling back to EVAL when Redis lost its script cache. */
import { isReplyError, type RedisConnection, type RedisReply } from "./redis_connection.ts";

export class RedisScript {
  readonly source: string;
  #sha?: Promise<string>;

  constructor(source: string) {
    this.source = source;
  }

  async run(
    conn: RedisConnection,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<RedisReply> {
    this.#sha ??= sha1Hex(this.source);
    const sha = await this.#sha;
    const tail = [keys.length, ...keys, ...args];
    try {
      return await conn.command(["EVALSHA", sha, ...tail]);
    } catch (err) {
      if (!isReplyError(err, "NOSCRIPT")) throw err;
      return await conn.command(["EVAL", this.source, ...tail]);
    }
  }
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
