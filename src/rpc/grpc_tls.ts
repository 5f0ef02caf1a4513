/**
 * TLS settings for the gRPC client from the options: `--rpc_enable_tls` turns TLS (ALPN h2)
 * on, `--rpc_tls_root_ca` (a PEM file path or PEM text) replaces the system roots, and
 * `--rpc_tls_verify=false` is refused: Deno cannot skip certificate verification for a single
 * connection, so the server's certificate (or its CA) has to be given as the root CA instead.
 */
import type { H2TlsOptions } from "./h2_connection.ts";

export interface GrpcTlsConfig {
  rpc_enable_tls: boolean;
  rpc_tls_root_ca: string;
  rpc_tls_verify: boolean;
}

/** TLS options for the HTTP/2 client, or undefined for plain h2c. Throws on a bad setup. */
export function grpcTlsOptions(config: GrpcTlsConfig): H2TlsOptions | undefined {
  if (!config.rpc_enable_tls) return undefined;
  if (!config.rpc_tls_verify) {
    throw new Error(
      "--rpc_tls_verify=false is not supported: Deno cannot skip certificate verification " +
        "for one connection. Pass the RPC server's certificate (self-signed) or its CA with " +
        "--rpc_tls_root_ca instead",
    );
  }
  const rootCa = config.rpc_tls_root_ca.trim();
  if (rootCa === "") return {};
  return { caCerts: [readPem(rootCa)] };
}

/** PEM text as given, or the contents of the PEM file it names. */
export function readPem(value: string): string {
  if (value.includes("-----BEGIN")) return value;
  let text: string;
  try {
    text = Deno.readTextFileSync(value);
  } catch (err) {
    throw new Error(
      `--rpc_tls_root_ca: cannot read ${value}: ${err instanceof Error ? err.message : err}`,
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`--rpc_tls_root_ca: ${value} holds no PEM certificate`);
  }
  return text;
}
