/**
 * pusher-js's browser build and Laravel Echo in headless Chromium (Debian's `chromium`, driven
 * by playwright-core) against Cableway in Pusher mode: two pages join a presence channel with
 * auth from the page's own endpoint (the `pusher` SDK), see each other, get an SDK event and
 * a whisper. Skips, saying so, without /usr/bin/chromium (or $CHROMIUM_PATH).
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { APP_KEY, PUSHER_FLAGS, sdk } from "./support/pusher.ts";
import { startServer } from "./support/server.ts";
import { bundleForBrowser } from "../demo/bundle.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") || "/usr/bin/chromium";
const WAIT_MS = 15_000;

function hasChromium(): boolean {
  try {
    if (Deno.statSync(CHROMIUM).isFile) return true;
  } catch {
    // not installed
  }
  console.warn(
    `${CHROMIUM} not installed: skipping the Pusher browser test (apt-get install chromium)`,
  );
  return false;
}

Deno.test({
  name: "pusher browser: pusher-js web build and Echo in Chromium, presence, events, whispers",
  ignore: !hasChromium(),
  async fn() {
    const script = await bundleForBrowser("tests/browser/pusher_page.ts");
    const server = await startServer(["--norpc", "--broker=memory", ...PUSHER_FLAGS], "info");
    const api = sdk(server.app.port);
    const names: Record<string, string> = { "1": "Alice", "2": "Bob" };
    // The app's side: the page and its auth endpoint (form-encoded, as pusher-js posts it).
    const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/page.js") {
        return new Response(script, { headers: { "content-type": "text/javascript" } });
      }
      if (url.pathname === "/pusher/auth" && req.method === "POST") {
        const form = new URLSearchParams(await req.text());
        const user = url.searchParams.get("user") ?? "";
        const auth = api.authorizeChannel(form.get("socket_id")!, form.get("channel_name")!, {
          user_id: user,
          user_info: { name: names[user] },
        });
        return Response.json(auth);
      }
      return new Response(`<!doctype html><script src="/page.js"></script>`, {
        headers: { "content-type": "text/html" },
      });
    });
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        timeout: WAIT_MS,
      });
      const open = async (user: string): Promise<Page> => {
        const page = await (await browser!.newContext()).newPage();
        page.setDefaultTimeout(WAIT_MS);
        await page.goto(
          `http://127.0.0.1:${app.addr.port}/?key=${APP_KEY}&port=${server.app.port}&user=${user}`,
        );
        return page;
      };
      const seen = async (page: Page) =>
        JSON.parse(String(await page.evaluate("JSON.stringify(seen)")));
      const alice = await open("1");
      await alice.waitForFunction(`seen.here.length === 1`);
      const bob = await open("2");
      await bob.waitForFunction(`seen.here.length === 2`);
      assert.deepEqual((await seen(bob)).here.sort(), ["Alice", "Bob"]);
      await alice.waitForFunction(`seen.joined.length === 1`);
      assert.deepEqual((await seen(alice)).joined, ["Bob"]);
      assert.equal((await seen(alice)).state, "connected");

      await (await api.trigger("presence-chat", "message", { text: "hello" })).text();
      for (const page of [alice, bob]) await page.waitForFunction(`seen.messages.length === 1`);
      assert.deepEqual((await seen(bob)).messages, [{ text: "hello" }]);

      await alice.evaluate(`whisper({ typing: true })`);
      await bob.waitForFunction(`seen.whispers.length === 1`);
      assert.deepEqual((await seen(bob)).whispers, [{ typing: true }]);
      // The sender never gets its own whisper (checked after an event that follows it).
      await (await api.trigger("presence-chat", "message", { text: "after" })).text();
      await alice.waitForFunction(`seen.messages.length === 2`);
      assert.deepEqual((await seen(alice)).whispers, []);
    } finally {
      await browser?.close();
      await app.shutdown();
      await server.stop();
    }
  },
});
