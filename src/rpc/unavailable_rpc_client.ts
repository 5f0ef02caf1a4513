import { type RpcClient, RpcResponseError } from "./rpc_client.ts";

/** Stands in for an RPC implementation this build does not have; every call fails clearly. */
export class UnavailableRpcClient implements RpcClient {
  readonly name = "unavailable";
  readonly #reason: string;

  constructor(reason: string) {
    this.#reason = reason;
  }

  connect(): Promise<never> {
    return Promise.reject(new RpcResponseError(this.#reason));
  }
  command(): Promise<never> {
    return Promise.reject(new RpcResponseError(this.#reason));
  }
  disconnect(): Promise<never> {
    return Promise.reject(new RpcResponseError(this.#reason));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
