/**
 * A listener could not bind: names the address, the port, and the flag that chose it, so the
 * user knows what to change. main and the demo exit with status 2 on it.
 */
export class ListenError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly flag: string,
    override readonly cause: unknown,
    hint = "",
  ) {
    const what = cause instanceof Deno.errors.AddrInUse
      ? "is already in use"
      : `cannot be bound (${cause instanceof Error ? cause.message : String(cause)})`;
    super(`port ${port} on ${host} ${what}: choose another with ${flag}${hint ? `; ${hint}` : ""}`);
    this.name = "ListenError";
  }
}
