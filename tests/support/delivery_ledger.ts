/**
 * Counts, per client, what a delivery guarantee forbids: messages missing from the
 * acknowledged (published) set, duplicates, and reorderings (a message arriving after one
 * published later). Messages are identified by their publication sequence number.
 */

export interface LedgerCounts {
  clients: number;
  messages: number;
  /** Acknowledged messages some client never received (summed over clients). */
  missing: number;
  /** Receipts beyond the first of the same message (summed over clients). */
  duplicated: number;
  /** Receipts of a message older than one the client already had (summed over clients). */
  reordered: number;
}

export class DeliveryLedger {
  readonly #published: number[] = [];
  readonly #received = new Map<string, number[]>();

  /** A publication the server acknowledged. */
  published(seq: number): void {
    this.#published.push(seq);
  }

  /** Registers a client (so one that received nothing still counts). */
  client(name: string): void {
    if (!this.#received.has(name)) this.#received.set(name, []);
  }

  received(name: string, seq: number): void {
    let list = this.#received.get(name);
    if (!list) this.#received.set(name, list = []);
    list.push(seq);
  }

  /** How many distinct acknowledged messages `name` has. */
  distinct(name: string): number {
    const acked = new Set(this.#published);
    return new Set((this.#received.get(name) ?? []).filter((s) => acked.has(s))).size;
  }

  /** True when every client holds every acknowledged message. */
  complete(): boolean {
    for (const name of this.#received.keys()) {
      if (this.distinct(name) < this.#published.length) return false;
    }
    return true;
  }

  counts(): LedgerCounts {
    const acked = new Set(this.#published);
    let missing = 0;
    let duplicated = 0;
    let reordered = 0;
    for (const list of this.#received.values()) {
      const seen = new Set<number>();
      let max = -Infinity;
      for (const seq of list) {
        if (seen.has(seq)) duplicated++;
        else if (seq < max) reordered++;
        seen.add(seq);
        if (seq > max) max = seq;
      }
      for (const seq of acked) if (!seen.has(seq)) missing++;
    }
    return {
      clients: this.#received.size,
      messages: this.#published.length,
      missing,
      duplicated,
      reordered,
    };
  }

  /** Per-client detail for a failure message: the first few problems of each. */
  describe(limit = 5): string {
    const acked = new Set(this.#published);
    const out: string[] = [];
    for (const [name, list] of this.#received) {
      const seen = new Set(list);
      const missing = [...acked].filter((s) => !seen.has(s));
      const dupes: number[] = [];
      const back: number[] = [];
      const had = new Set<number>();
      let max = -Infinity;
      for (const seq of list) {
        if (had.has(seq)) dupes.push(seq);
        else if (seq < max) back.push(seq);
        had.add(seq);
        max = Math.max(max, seq);
      }
      if (missing.length || dupes.length || back.length) {
        out.push(
          `${name}: missing ${missing.length} [${
            missing.slice(0, limit)
          }], duplicated ${dupes.length} [${dupes.slice(0, limit)}], reordered ${back.length} [${
            back.slice(0, limit)
          }]`,
        );
      }
    }
    return out.slice(0, 10).join("\n");
  }
}
