/**
 * The chat demo in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) opens the page as Alice and as Bob. They chat and see each other online;
 * Alice loses her network, Bob keeps talking, and when Alice is back her session is restored
 * and she sees everything she missed, in order, exactly once.
 *
 * Skips, saying so, when /usr/bin/chromium (or $CHROMIUM_PATH) is missing. With
 * CABLEWAY_DEMO_SCREENSHOT=<path> (`deno task demo:screenshot`) it also saves a screenshot of
 * Alice's page there.
 */
import assert from "node:assert/strict";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { startDemo } from "../demo/demo_server.ts";
import { Logger } from "../src/logger/logger.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT_MS = 10_000;

function hasChromium(): boolean {
  try {
    if (Deno.statSync(CHROMIUM).isFile) return true;
  } catch {
    // not installed
  }
  console.warn(`${CHROMIUM} not installed: skipping the demo e2e test (apt-get install chromium)`);
  return false;
}

// Code that runs in the page is given as strings: this file is type-checked without the DOM
// library.

/** Runs before the page's scripts: records its WebSockets so the test can drop them. */
const TRACK_SOCKETS = `
  globalThis.__demoSockets = [];
  globalThis.WebSocket = class extends WebSocket {
    constructor(...args) {
      super(...args);
      globalThis.__demoSockets.push(this);
    }
  };`;

async function openChat(
  ctx: BrowserContext,
  url: string,
  name: string,
  frames: string[] = [],
): Promise<Page> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(String(f.payload))));
  await page.goto(`${url}?name=${name}`);
  await page.waitForSelector("#status[data-state=connected]");
  return page;
}

async function messages(page: Page): Promise<Array<{ id: string; line: string }>> {
  const json = await page.evaluate(`JSON.stringify([...document.querySelectorAll(
    "#messages .message")].map((li) => ({
      id: li.dataset.id,
      line: li.querySelector(".who").textContent + ": " + li.querySelector(".text").textContent,
    })))`);
  return JSON.parse(String(json));
}

async function waitForMessages(page: Page, count: number): Promise<void> {
  await page.waitForFunction(`document.querySelectorAll("#messages .message").length >= ${count}`);
}

async function waitForOnline(page: Page, ids: string[]): Promise<void> {
  const want = JSON.stringify(JSON.stringify(ids));
  await page.waitForFunction(`JSON.stringify([...document.querySelectorAll("#online li")]
    .map((li) => li.dataset.id)) === ${want}`);
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

Deno.test({
  name: "demo: two browsers chat, see each other online, and a dropped page catches up",
  ignore: !hasChromium(),
  async fn() {
    const logs: string[] = [];
    const logger = new Logger({ level: "info", sink: { write: (l) => logs.push(l) } });
    const demo = await startDemo(
      ["--host=127.0.0.1", "--port=0", "--shutdown_timeout=5"],
      { env: { get: () => undefined }, logger },
    );
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        // playwright-core runs it with a fresh temporary profile, removed on close.
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        timeout: WAIT_MS,
      });
      const viewport = { width: 960, height: 600 };
      const aliceCtx = await browser.newContext({ viewport });
      const bobCtx = await browser.newContext({ viewport });
      await aliceCtx.addInitScript({ content: TRACK_SOCKETS });

      const aliceFrames: string[] = [];
      const alice = await openChat(aliceCtx, demo.url, "Alice", aliceFrames);
      const bob = await openChat(bobCtx, demo.url, "Bob");

      // Both see both online (the server's presence), then talk.
      await waitForOnline(alice, ["Alice", "Bob"]);
      await waitForOnline(bob, ["Alice", "Bob"]);
      await say(alice, "Hi Bob! Is the new server up?");
      await waitForMessages(bob, 1);
      await say(bob, "Hey Alice, yes: Cableway is live.");
      await waitForMessages(alice, 2);
      await waitForMessages(bob, 2);
      const talk = [
        "Alice: Hi Bob! Is the new server up?",
        "Bob: Hey Alice, yes: Cableway is live.",
      ];
      const line = (m: { line: string }) => m.line;
      assert.deepEqual((await messages(alice)).map(line), talk);
      assert.deepEqual((await messages(bob)).map(line), talk);

      // Alice's network goes away: offline, and her socket dies without any `disconnect`
      // message (emulated offline mode pauses sockets rather than breaking them).
      await aliceCtx.setOffline(true);
      await alice.evaluate(`for (const ws of globalThis.__demoSockets) ws.close()`);
      await alice.waitForSelector("#status[data-state=offline]");

      const missed = [
        "Bob: Alice, are you there?",
        "Bob: Deploying the chat now.",
        "Bob: Done, it works!",
      ];
      for (const m of missed) await say(bob, m.slice("Bob: ".length));
      await waitForMessages(bob, 5);
      assert.deepEqual((await messages(bob)).map(line), [...talk, ...missed]);
      assert.equal((await messages(alice)).length, 2, "Alice got messages while offline");

      // Sending while offline says so and keeps the text.
      await say(alice, "Are you still there?");
      await alice.waitForSelector("#notice:not([hidden])");
      assert.match(await alice.locator("#notice").innerText(), /offline/);
      assert.equal(await alice.locator("#text").inputValue(), "Are you still there?");

      // Back online: the session is restored (no new Connect) and the history replayed.
      await aliceCtx.setOffline(false);
      await alice.waitForSelector("#status[data-state=connected]");
      await waitForMessages(alice, 5);
      await waitForOnline(alice, ["Alice", "Bob"]);
      await alice.waitForSelector("#notice", { state: "hidden" });
      const got = await messages(alice);
      assert.deepEqual(got.map(line), [...talk, ...missed]);
      assert.equal(new Set(got.map((m) => m.id)).size, got.length, "a message shown twice");
      assert.ok(
        aliceFrames.some((f) => f.includes('"type":"welcome"') && f.includes('"restored":true')),
        "Alice's session was not restored",
      );
      await waitForOnline(bob, ["Alice", "Bob"]);

      const shot = Deno.env.get("CABLEWAY_DEMO_SCREENSHOT");
      if (shot) {
        await alice.locator("#text").fill("Great, I caught up on everything");
        await alice.screenshot({ path: shot });
        console.log(`demo screenshot saved to ${shot}`);
      }

      // On a 390 px wide phone, who is online and the composer are both in view.
      const phone = { width: 390, height: 844 };
      const carol = await openChat(
        await browser.newContext({ viewport: phone }),
        demo.url,
        "Carol",
      );
      await waitForOnline(carol, ["Alice", "Bob", "Carol"]);
      const layout = JSON.parse(String(
        await carol.evaluate(`JSON.stringify({
          people: document.querySelector(".people").getBoundingClientRect(),
          composer: document.querySelector("#composer").getBoundingClientRect(),
          scrollWidth: document.documentElement.scrollWidth,
        })`),
      ));
      for (const part of ["people", "composer"] as const) {
        const r = layout[part];
        assert.ok(
          r.top >= 0 && r.bottom <= phone.height && r.left >= 0 && r.right <= phone.width,
          `${part} out of view at 390 px: ${JSON.stringify(r)}`,
        );
      }
      assert.ok(layout.scrollWidth <= phone.width, `scrolls sideways: ${layout.scrollWidth}`);

      // Bob closes his tab: the others see him leave within seconds, not after 10-17 s.
      const closedAt = Date.now();
      await bob.close();
      await waitForOnline(alice, ["Alice", "Carol"]);
      const leftAfter = Date.now() - closedAt;
      console.log(`a closed tab left the online list after ${leftAfter} ms`);
      assert.ok(leftAfter < 5000, `closed tab still online after ${leftAfter} ms`);
    } catch (err) {
      console.error(`demo server log:\n${logs.join("\n")}`);
      throw err;
    } finally {
      await browser?.close();
      await demo.shutdown();
    }
  },
});
