/** The request headers a session reads: looked up by name, case-insensitively. */
export interface RequestHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
}

/**
 * A few request headers copied out of a request before its upgrade: a Map of lower-case names
 * instead of a `Headers` object, whose construction and `set` (name and value validation,
 * normalization) cost more than the rest of the copy. The values are the request's own
 * `Headers.get` results, so they read exactly as they did there.
 */
export class CopiedHeaders implements RequestHeaders {
  readonly #values = new Map<string, string>();

  /** `name` must be lower case (the reader lower-cases what it looks up). */
  add(name: string, value: string): void {
    this.#values.set(name, value);
  }

  get(name: string): string | null {
    return this.#values.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }

  /** Name/value pairs sorted by name, as a `Headers` iterates. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    yield* [...this.#values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
