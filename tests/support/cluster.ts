/** Helpers for tests that run several Cableway processes as one cluster. */
import assert from "node:assert/strict";
import { type ServerProcess, spawnServer } from "./process.ts";
import { WsClient } from "./ws_client.ts";

export const EXT = "actioncable-v1-ext-json";
/** The HTTP broadcast key every node is started with. */
export const KEY = "k";
export const BASE_ARGS = ["--norpc", "--public", `--broadcast_key=${KEY}`, "--shutdown_timeout=1"];
export const ident = (stream: string) =>
  JSON.stringify({ channel: "$pubsub", stream_name: stream });
export const CHAT = ident("chat");

export type Frame = Record<string, unknown>;

/** Starts `n` nodes with the same flags; if one fails to start, the others are stopped. */
export async function startNodes(n: number, args: string[]): Promise<ServerProcess[]> {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, () => spawnServer([...BASE_ARGS, ...args])),
  );
  const nodes = settled.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await stopNodes(nodes);
    throw failed.reason;
  }
  return nodes;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once every process is gone. */
export async function stopNodes(nodes: ServerProcess[]): Promise<void> {
  await Promise.all(nodes.map(async (node) => {
    try {
      node.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hard = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          node.child.kill("SIGKILL");
        } catch {
          // already gone
        }
        resolve();
      }, 5000);
    });
    await Promise.race([node.exited, hard]);
    clearTimeout(timer);
    await node.exited;
  }));
}

/** Subscribes and asserts the confirmation. */
export async function subscribe(client: WsClient, identifier = CHAT): Promise<void> {
  client.send({ command: "subscribe", identifier });
  const reply = await client.waitFor((f) =>
    f.identifier === identifier &&
    (f.type === "confirm_subscription" || f.type === "reject_subscription")
  );
  assert.equal(reply.type, "confirm_subscription");
}

/** POSTs to a node's HTTP broadcast endpoint; returns the status. */
export async function httpPublish(port: number, body: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/_broadcast`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body,
  });
  await res.body?.cancel();
  return res.status;
}

export { WsClient };
