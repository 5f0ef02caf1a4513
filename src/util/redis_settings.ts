/**
 * How to reach Redis beyond its URL: Sentinel (`--redis_sentinels`, the URL's host is the
 * master name), TLS for `rediss://` (`--redis_tls_verify`, CA, client certificate and key for
 * mutual TLS) and the keepalive PING interval. Shared by every Redis adapter.
 */

export interface RedisTlsSettings {
  /** Verify the server certificate (the reference's default is not to). */
  verify: boolean;
  caPath?: string;
  certPath?: string;
  keyPath?: string;
}

export interface RedisSettings {
  /** `host:port` or `:password@host:port` entries. */
  sentinels?: string[];
  /** Seconds between sentinel topology scans. */
  sentinelDiscoveryInterval?: number;
  /** Seconds between keepalive PINGs (0 = off). */
  keepaliveInterval?: number;
  tls?: RedisTlsSettings;
}

export interface SentinelNode {
  host: string;
  port: number;
  password?: string;
}

/** `host:port`, `:password@host:port`, `user:password@host:port` (port 26379 by default). */
export function parseSentinel(entry: string): SentinelNode {
  let rest = entry.trim().replace(/^redis:\/\//, "");
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(":");
    password = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth) || undefined;
  }
  const colon = rest.lastIndexOf(":");
  const host = colon > 0 ? rest.slice(0, colon) : rest;
  const port = colon > 0 ? Number(rest.slice(colon + 1)) : 26379;
  if (!host || !Number.isInteger(port) || port <= 0) {
    throw new Error(`bad sentinel address "${entry}" (expected host:port)`);
  }
  return { host, port, password };
}

/** Reads the PEM files named by the TLS settings; a missing file names itself. */
export function readTlsFiles(tls: RedisTlsSettings): { ca?: string; cert?: string; key?: string } {
  const read = (path: string | undefined, what: string) => {
    if (!path) return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the Redis TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  return {
    ca: read(tls.caPath, "CA certificate (--redis_tls_ca_cert_path)"),
    cert: read(tls.certPath, "client certificate (--redis_tls_client_cert_path)"),
    key: read(tls.keyPath, "client key (--redis_tls_client_key_path)"),
  };
}
