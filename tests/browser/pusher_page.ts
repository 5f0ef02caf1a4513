/**
 * The script of the browser test page (bundled for the browser by tests/pusher_browser_test.ts):
 * pusher-js's web build and Laravel Echo, with auth from the page's own `/pusher/auth`. What
 * the page sees is kept in `globalThis.seen` for the test to read.
 */
// deno-lint-ignore-file no-explicit-any
import Pusher from "pusher-js";
import Echo from "laravel-echo";

const g = globalThis as any;
const params = new URLSearchParams(g.location.search);
const seen: {
  state: string;
  here: string[];
  joined: string[];
  messages: unknown[];
  whispers: unknown[];
} = {
  state: "connecting",
  here: [],
  joined: [],
  messages: [],
  whispers: [],
};
g.seen = seen;

const pusher = new (Pusher as any)(params.get("key"), {
  wsHost: "127.0.0.1",
  wsPort: Number(params.get("port")),
  forceTLS: false,
  enabledTransports: ["ws"],
  cluster: "",
  disableStats: true,
  channelAuthorization: { endpoint: `/pusher/auth?user=${params.get("user")}`, transport: "ajax" },
});
pusher.connection.bind("state_change", (s: { current: string }) => (seen.state = s.current));
const echo = new Echo({ broadcaster: "pusher", key: params.get("key")!, client: pusher } as any);
const room = echo.join("chat")
  .here((users: Array<{ name: string }>) => (seen.here = users.map((u) => u.name)))
  .joining((u: { name: string }) => seen.joined.push(u.name))
  .listen(".message", (m: unknown) => seen.messages.push(m))
  .listenForWhisper("typing", (w: unknown) => seen.whispers.push(w));
g.whisper = (data: unknown) => room.whisper("typing", data);
