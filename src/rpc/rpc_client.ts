/** The RPC seam (docs/protocol.md#rpc): the three calls, as JSON-shaped values. */

export const Status = { ERROR: 0, SUCCESS: 1, FAILURE: 2 } as const;
export type StatusCode = typeof Status[keyof typeof Status];

export interface Env {
  url: string;
  headers?: Record<string, string>;
  cstate?: Record<string, string>;
  istate?: Record<string, string>;
}

export interface EnvResponse {
  cstate?: Record<string, string>;
  istate?: Record<string, string>;
}

export interface ConnectRequest {
  env: Env;
}

export interface ConnectResponse {
  status: StatusCode;
  identifiers?: string;
  transmissions?: string[];
  error_msg?: string;
  env?: EnvResponse;
}

export interface CommandRequest {
  command: string;
  identifier: string;
  connection_identifiers?: string;
  data?: string;
  env: Env;
}

export interface PresenceResponse {
  type: "join" | "leave";
  id: string;
  info?: string;
}

export interface CommandResponse {
  status: StatusCode;
  disconnect?: boolean;
  stop_streams?: boolean;
  streams?: string[];
  stopped_streams?: string[];
  transmissions?: string[];
  error_msg?: string;
  env?: EnvResponse;
  presence?: PresenceResponse | null;
}

export interface DisconnectRequest {
  identifiers?: string;
  subscriptions?: string[];
  env: Env;
}

export interface DisconnectResponse {
  status: StatusCode;
  error_msg?: string;
}

/** Per-call metadata sent alongside the request (HTTP headers / gRPC metadata). */
export interface CallMeta {
  sid: string;
  /** Aborted when the call is no longer wanted (its session closed, or its budget ran out). */
  signal?: AbortSignal;
  /**
   * When `signal` aborts at the latest (ms since epoch, the caller's call budget): a client
   * whose own request timeout would fire later need not arm a timer of its own.
   */
  deadline?: number;
}

/**
 * One transport to the backend. Implementations throw RpcError subclasses for failures
 * and return decoded responses (status normalized to a number) otherwise.
 */
export interface RpcClient {
  readonly name: string;
  connect(req: ConnectRequest, meta: CallMeta): Promise<ConnectResponse>;
  command(req: CommandRequest, meta: CallMeta): Promise<CommandResponse>;
  disconnect(req: DisconnectRequest, meta: CallMeta): Promise<DisconnectResponse>;
  close(): Promise<void>;
}

/** The backend could not be reached (or is saturated); safe to retry. */
export class RpcUnavailableError extends Error {
  /** First retry delay in ms (doubled per attempt); the caller's default when unset. */
  readonly retryBase?: number;

  constructor(message: string, options?: ErrorOptions & { retryBase?: number }) {
    super(message, options);
    this.name = "RpcUnavailableError";
    this.retryBase = options?.retryBase;
  }
}

/** The backend answered with something unusable (non-200, bad JSON, missing status). */
export class RpcResponseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcResponseError";
  }
}

/** The call did not finish within its deadline. */
export class RpcTimeoutError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcTimeoutError";
  }
}

/**
 * The session the call was for has gone: the call was dropped before it was sent, or its
 * request was abandoned and any answer discarded. Not a failure of the backend.
 */
export class RpcCanceledError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RpcCanceledError";
  }
}

/** Accepts 0/1/2 and "ERROR"/"SUCCESS"/"FAILURE"; anything else (incl. missing) is ERROR. */
export function normalizeStatus(value: unknown): StatusCode {
  if (value === 1 || value === "SUCCESS") return Status.SUCCESS;
  if (value === 2 || value === "FAILURE") return Status.FAILURE;
  return Status.ERROR;
}
