/**
 * Parses a gRPC `--rpc_host` into the list of `host:port` endpoints to dial: `host:port`,
 * `dns:///host:port` (also `dns://authority/host:port` and `dns:host:port`), and
 * `grpc-list://h1:p1,h2:p2` for client-side round-robin.
 */

export interface GrpcEndpoint {
  /** Host name or IP (IPv6 without brackets). */
  host: string;
  port: number;
  /** `http://host:port` (IPv6 bracketed), for logs and errors. */
  origin: string;
}

/** The rpc_host cannot be turned into endpoints. */
export class GrpcTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrpcTargetError";
  }
}

export function parseGrpcTarget(target: string): GrpcEndpoint[] {
  const raw = target.trim();
  if (raw.startsWith("grpc-list://")) {
    const parts = raw.slice("grpc-list://".length).split(",").map((p) => p.trim()).filter((p) =>
      p !== ""
    );
    if (parts.length === 0) throw new GrpcTargetError(`no hosts in ${JSON.stringify(target)}`);
    return parts.map((p) => parseHostPort(p, target));
  }
  let rest = raw;
  if (rest.startsWith("dns://")) {
    // dns://[authority]/host:port — the authority names a DNS server; the system resolver is used.
    const slash = rest.indexOf("/", "dns://".length);
    if (slash < 0) throw new GrpcTargetError(`malformed dns target ${JSON.stringify(target)}`);
    rest = rest.slice(slash + 1);
  } else if (rest.startsWith("dns:")) {
    rest = rest.slice("dns:".length);
  }
  return [parseHostPort(rest, target)];
}

function parseHostPort(value: string, target: string): GrpcEndpoint {
  let host: string;
  let portText: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") {
      throw new GrpcTargetError(`expected [ipv6]:port in ${JSON.stringify(target)}`);
    }
    host = value.slice(1, close);
    portText = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0 || value.indexOf(":") !== colon) {
      throw new GrpcTargetError(`expected host:port in ${JSON.stringify(target)}`);
    }
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
  }
  const port = Number(portText);
  if (host === "" || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new GrpcTargetError(`expected host:port in ${JSON.stringify(target)}`);
  }
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return { host, port, origin };
}
