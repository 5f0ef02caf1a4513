/** A Durable Streams request the rules refuse: becomes an HTTP status with a short text. */
export class DsError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "DsError";
    this.status = status;
    this.headers = headers;
  }
}
