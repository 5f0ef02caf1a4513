/**
 * gRPC status codes and how a failed call maps onto Cableway's RPC errors: UNAVAILABLE and
 * RESOURCE_EXHAUSTED are retryable (RpcUnavailableError), DEADLINE_EXCEEDED is a timeout,
 * everything else is a response error.
 */
import { RpcResponseError, RpcTimeoutError, RpcUnavailableError } from "./rpc_client.ts";

export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const NAMES = new Map<number, string>(Object.entries(GrpcCode).map(([k, v]) => [v, k]));

export function grpcCodeName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}

/** The error to throw for a call to `method` that ended with a non-OK gRPC status. */
export function grpcStatusError(
  method: string,
  code: number,
  message: string,
): RpcUnavailableError | RpcTimeoutError | RpcResponseError {
  const text = `${method}: gRPC ${grpcCodeName(code)}${message ? `: ${message}` : ""}`;
  if (code === GrpcCode.UNAVAILABLE) return new RpcUnavailableError(text);
  // A saturated backend is retried sooner (10 ms steps) than an unreachable one.
  if (code === GrpcCode.RESOURCE_EXHAUSTED) return new RpcUnavailableError(text, { retryBase: 10 });
  if (code === GrpcCode.DEADLINE_EXCEEDED) return new RpcTimeoutError(text);
  return new RpcResponseError(text);
}

/** Maps an HTTP status without grpc-status to a gRPC code (gRPC's HTTP-to-gRPC table). */
export function grpcCodeFromHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}
