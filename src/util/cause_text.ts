/**
 * The innermost reason of a network error, for log lines: follows `cause` to the last error
 * and strips the wrappers runtimes put around it, e.g. fetch's "fetch failed" ->
 * "tcp connect error: Connection refused (os error 111)", node:http2's "The pending stream has
 * been canceled (caused by: connect ECONNREFUSED 127.0.0.1:50051)" -> "connect ECONNREFUSED …".
 */
export function causeText(err: unknown): string {
  let e = err;
  for (let i = 0; i < 10 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  let msg = e instanceof Error ? e.message : String(e);
  const caused = /\(caused by: (.*)\)$/.exec(msg);
  if (caused) msg = caused[1];
  const wrapped = msg.lastIndexOf("): ");
  if (wrapped >= 0 && msg.startsWith("error sending request")) msg = msg.slice(wrapped + 3);
  return msg;
}
