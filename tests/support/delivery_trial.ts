/**
 * A randomized delivery trial: real @anycable/core clients (extended protocol) subscribed to
 * one stream through cutting proxies, a publisher at a steady rate, random connection cuts
 * meanwhile; then every client must hold every acknowledged message exactly once, in order.
 */
import { backoffWithJitter, type Cable, createCable } from "@anycable/core";
import type { CutProxy } from "./cut_proxy.ts";
import { DeliveryLedger, type LedgerCounts } from "./delivery_ledger.ts";

export interface TrialOptions {
  /** Printed with the counts. */
  name: string;
  clients: number;
  messages: number;
  /** Publications per second. */
  rate: number;
  /** At least this many cuts while publishing. */
  cuts: number;
  /** Clients are spread over these (round robin); cuts hit a random one. */
  proxies: CutProxy[];
  /**
   * Publishes one batch of messages (data `{"n":seq}`) in one request, in order; true when
   * the server acknowledged it (201). `first` is the batch's first sequence number.
   */
  publish(first: number, data: string[]): Promise<boolean>;
  /** Messages per publish call (default 5). */
  batch?: number;
  /** Runs before publishing the batch starting at `seq` (e.g. a node is killed then). */
  before?(seq: number): Promise<void>;
  stream?: string;
  /** How long clients may take to catch up once publishing ended (ms). */
  settleMs?: number;
}

export interface TrialResult extends LedgerCounts {
  cuts: number;
  /** Publications not acknowledged (not expected anywhere). */
  unacknowledged: number;
  seconds: number;
  /** How long publishing took. */
  publishSeconds: number;
  detail: string;
}

export async function runTrial(opts: TrialOptions): Promise<TrialResult> {
  const started = Date.now();
  const stream = opts.stream ?? "trial";
  const ledger = new DeliveryLedger();
  const cables: Cable[] = [];
  const warmed = new Set<string>();
  const cutsBefore = opts.proxies.reduce((n, p) => n + p.cuts, 0);
  let unacknowledged = 0;
  try {
    await Promise.all(Array.from({ length: opts.clients }, async (_, i) => {
      const name = `c${i}`;
      ledger.client(name);
      const proxy = opts.proxies[i % opts.proxies.length];
      const cable = createCable(proxy.wsUrl(), {
        protocol: "actioncable-v1-ext-json",
        websocketImplementation: WebSocket,
        reconnectStrategy: backoffWithJitter(50, { maxInterval: 400 }),
        logLevel: "error",
      });
      cables.push(cable);
      const channel = cable.streamFrom(stream);
      channel.on("message", (m) => {
        const n = (m as { n?: unknown })?.n;
        if (typeof n === "number") ledger.received(name, n);
        else warmed.add(name);
      });
      await withTimeout(channel.ensureSubscribed(), 30000, `${name} subscribed`);
    }));
    debug("subscribed");
    // Every node's pub/sub follows the stream before the trial starts (a remote pub/sub may
    // start following a new stream only on its next poll): a warm-up message reaches all.
    const warmUntil = Date.now() + 30000;
    while (warmed.size < opts.clients) {
      if (Date.now() > warmUntil) throw new Error(`warm-up reached ${warmed.size} clients`);
      await opts.publish(0, [JSON.stringify({ warmup: true })]);
      await new Promise((r) => setTimeout(r, 200));
    }

    debug("warmed up");
    const cutter = (async () => {
      const every = Math.max(5, Math.floor((opts.messages / opts.rate) * 1000 * 0.8 / opts.cuts));
      let cuts = 0;
      const stopAt = Date.now() + (opts.messages / opts.rate) * 1000 * 3 + 10000;
      while (cuts < opts.cuts && Date.now() < stopAt) {
        await new Promise((r) => setTimeout(r, every));
        const open = opts.proxies.filter((p) => p.connections > 0);
        if (!open.length) continue;
        if (open[Math.floor(Math.random() * open.length)].cutOne()) cuts++;
      }
    })();

    const batch = opts.batch ?? 5;
    const t0 = Date.now();
    for (let first = 1; first <= opts.messages; first += batch) {
      await opts.before?.(first);
      // Keep the rate: wait for this batch's slot.
      const wait = t0 + ((first - 1) / opts.rate) * 1000 - Date.now();
      if (wait > 5) await new Promise((r) => setTimeout(r, wait));
      const seqs: number[] = [];
      for (let seq = first; seq < first + batch && seq <= opts.messages; seq++) seqs.push(seq);
      if (seqs.some((seq) => seq % 250 === 0)) debug(`publishing ${seqs.at(-1)}`);
      const acked = await withTimeout(
        opts.publish(first, seqs.map((n) => JSON.stringify({ n }))),
        10000,
        `publication ${first}`,
      );
      for (const seq of seqs) {
        if (acked) ledger.published(seq);
        else unacknowledged++;
      }
    }
    debug("published");
    await cutter;
    debug("cuts done");
    const published = Date.now();

    const deadline = Date.now() + (opts.settleMs ?? 30000);
    while (!ledger.complete() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Late duplicates would show up now.
    await new Promise((r) => setTimeout(r, 500));
    const counts = ledger.counts();
    const result: TrialResult = {
      ...counts,
      cuts: opts.proxies.reduce((n, p) => n + p.cuts, 0) - cutsBefore,
      unacknowledged,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      publishSeconds: Math.round((published - t0) / 100) / 10,
      detail: ledger.describe(),
    };
    console.log(
      `${opts.name}: clients=${result.clients} cuts=${result.cuts} messages=${result.messages} ` +
        `missing=${result.missing} duplicated=${result.duplicated} reordered=${result.reordered} ` +
        `unacknowledged=${unacknowledged} (published in ${result.publishSeconds}s, ${result.seconds}s in all)`,
    );
    return result;
  } finally {
    for (const cable of cables) cable.disconnect();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const DEBUG = Deno.env.get("TRIAL_DEBUG") !== undefined;
function debug(what: string): void {
  if (DEBUG) console.error(`trial: ${what} at ${new Date().toISOString()}`);
}
