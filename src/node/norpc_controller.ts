import { Status } from "../rpc/rpc_client.ts";
import type { CommandResult, ConnectResult, Controller } from "./controller.ts";

/** `--norpc`: nothing is delegated; what no other layer accepted is rejected. */
export class NoRpcController implements Controller {
  authenticate(): Promise<ConnectResult> {
    return Promise.resolve({
      status: Status.FAILURE,
      transmissions: [
        JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
      ],
      error_msg: "RPC is disabled",
    });
  }

  subscribe(_ctx: unknown, identifier: string): Promise<CommandResult> {
    return Promise.resolve({
      status: Status.FAILURE,
      transmissions: [JSON.stringify({ type: "reject_subscription", identifier })],
      error_msg: "RPC is disabled",
    });
  }

  unsubscribe(): Promise<CommandResult> {
    return Promise.resolve({ status: Status.SUCCESS });
  }

  perform(): Promise<CommandResult> {
    return Promise.resolve({ status: Status.FAILURE, error_msg: "RPC is disabled" });
  }

  disconnect() {
    return Promise.resolve({ status: Status.SUCCESS });
  }
}
