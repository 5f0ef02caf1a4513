/**
 * SSE resumes under a steady publisher: a client that drops its request every ~100 ms and
 * comes back with `Last-Event-ID` ends with every message once, in order.
 */
import assert from "node:assert/strict";
import { DeliveryLedger } from "./support/delivery_ledger.ts";
import { startServer } from "./support/server.ts";

/** Reads one SSE response until `stopAfterMs`; returns the last event id seen. */
async function readFor(
  res: Response,
  stopAfterMs: number,
  onData: (data: string, id: string | undefined) => void,
  abort: AbortController,
): Promise<void> {
  const timer = setTimeout(() => abort.abort(), stopAfterMs);
  let buf = "";
  try {
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let id: string | undefined;
        let event: string | undefined;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (event === undefined && data.length) onData(data.join("\n"), id);
      }
    }
  } catch {
    // aborted: the cut
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("SSE resumes with Last-Event-ID under a steady publisher: once, in order", async () => {
  const server = await startServer(
    ["--public", "--sse", "--broker=memory", "--history_limit=5000"],
    "info",
  );
  const ledger = new DeliveryLedger();
  ledger.client("sse");
  const total = 300;
  let lastId: string | undefined;
  let published = 0;
  let resumes = 0;
  try {
    // The first request is answered once its subscription is made: publishing starts then.
    let publisher: Promise<void> | undefined;
    const publish = async () => {
      for (let n = 1; n <= total; n++) {
        const res = await server.broadcast({ stream: "chat", data: JSON.stringify({ n }) });
        assert.equal(res.status, 201);
        ledger.published(n);
        published = n;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const deadline = Date.now() + 60000;
    while (!(published === total && ledger.distinct("sse") === total)) {
      assert.ok(
        Date.now() < deadline,
        `stuck: ${JSON.stringify(ledger.counts())} ${ledger.describe()}`,
      );
      const abort = new AbortController();
      const headers: Record<string, string> = lastId ? { "last-event-id": lastId } : {};
      const res = await fetch(`${server.url}/events?stream=chat`, {
        headers,
        signal: abort.signal,
      });
      assert.equal(res.status, 200);
      publisher ??= publish();
      if (lastId) resumes++;
      await readFor(res, 50 + Math.random() * 100, (data, id) => {
        ledger.received("sse", (JSON.parse(data) as { n: number }).n);
        if (id) lastId = id;
      }, abort);
    }
    await publisher;
    await new Promise((r) => setTimeout(r, 200));
    const counts = ledger.counts();
    console.log(`sse resumes: ${JSON.stringify({ ...counts, resumes })}`);
    assert.ok(resumes >= 5, `only ${resumes} resumes`);
    assert.deepEqual(
      [counts.missing, counts.duplicated, counts.reordered],
      [0, 0, 0],
      ledger.describe(),
    );
  } finally {
    await server.stop();
  }
});
