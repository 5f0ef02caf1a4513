import type { DurableStreamStore, StoredStream } from "./store.ts";
import type { DsEntry, DsMeta } from "./types.ts";

/** Streams in process memory: lost on restart (the memory broker's companion). */
export class MemoryStreamStore implements DurableStreamStore {
  readonly name = "memory";
  readonly durable = false;
  readonly #metas = new Map<string, { meta: DsMeta; version: number }>();
  /** `${stream}\0${generation}` -> entries, ordered by n. */
  readonly #entries = new Map<string, DsEntry[]>();

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  list(): Promise<string[]> {
    return Promise.resolve([...this.#metas.keys()]);
  }

  load(stream: string): Promise<StoredStream | null> {
    const found = this.#metas.get(stream);
    if (!found) return Promise.resolve(null);
    return Promise.resolve({ meta: structuredClone(found.meta), version: String(found.version) });
  }

  commit(
    stream: string,
    expected: string | null,
    meta: DsMeta | null,
    entries: DsEntry[],
    drop?: string,
  ): Promise<boolean> {
    const current = this.#metas.get(stream);
    if ((current ? String(current.version) : null) !== expected) return Promise.resolve(false);
    if (drop !== undefined) this.#entries.delete(`${stream}\0${drop}`);
    if (meta === null) {
      this.#metas.delete(stream);
      return Promise.resolve(true);
    }
    this.#metas.set(stream, { meta: structuredClone(meta), version: (current?.version ?? 0) + 1 });
    if (entries.length > 0) {
      const key = `${stream}\0${meta.generation}`;
      let list = this.#entries.get(key);
      if (!list) this.#entries.set(key, list = []);
      for (const e of entries) list.push({ ...e, data: e.data.slice() });
    }
    return Promise.resolve(true);
  }

  read(
    stream: string,
    generation: string,
    after: number,
    upTo: number,
    maxBytes: number,
  ): Promise<DsEntry[]> {
    const list = this.#entries.get(`${stream}\0${generation}`) ?? [];
    const out: DsEntry[] = [];
    let bytes = 0;
    // Entries are dense from their first n: find the start by binary search.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].n <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && list[i].n <= upTo; i++) {
      if (out.length > 0 && bytes >= maxBytes) break;
      out.push(list[i]);
      bytes += list[i].data.byteLength;
    }
    return Promise.resolve(out);
  }
}
