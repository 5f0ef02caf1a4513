/**
 * TLS settings for the fetch-based RPC transports (HTTP JSON over `https://`, gRPC-web over
 * `https://`): an extra root CA from `--rpc_tls_root_ca` (a PEM file path or PEM text), and
 * recognising a failed TLS handshake so it is reported as such.
 */

/** `--rpc_tls_root_ca` cannot be used. */
export class RpcTlsConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcTlsConfigError";
  }
}

/** The PEM text of `value`: PEM given inline, or read from the file it names. */
export function loadRootCa(value: string): string {
  const trimmed = value.trim();
  let pem = trimmed;
  if (!trimmed.includes("-----BEGIN")) {
    try {
      pem = Deno.readTextFileSync(trimmed);
    } catch (err) {
      throw new RpcTlsConfigError(
        `--rpc_tls_root_ca: cannot read ${JSON.stringify(trimmed)}: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }
  }
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) {
    throw new RpcTlsConfigError("--rpc_tls_root_ca: no PEM certificate found");
  }
  return pem;
}

/**
 * An HTTP client trusting `rootCa` in addition to the system roots, or undefined when there
 * is nothing to add (fetch's default client is used then).
 */
export function createRpcHttpClient(rootCa: string): Deno.HttpClient | undefined {
  if (!rootCa) return undefined;
  const pem = loadRootCa(rootCa);
  try {
    return Deno.createHttpClient({ caCerts: [pem] });
  } catch (err) {
    throw new RpcTlsConfigError(
      `--rpc_tls_root_ca: unusable certificate: ${err instanceof Error ? err.message : err}`,
      { cause: err },
    );
  }
}

/** Whether a fetch failure is a TLS handshake / certificate problem (retrying won't help). */
export function isTlsError(err: unknown): boolean {
  const text = errorChain(err);
  return /certificate|tls|ssl|handshake|UnknownIssuer|NotValidForName/i.test(text);
}

function errorChain(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur; i++) {
    parts.push(cur instanceof Error ? `${cur.name}: ${cur.message}` : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(" | ");
}
