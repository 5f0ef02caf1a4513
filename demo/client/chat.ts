/// <reference lib="dom" />
/**
 * The chat page: asks for a name (or takes `?name=`), connects with @anycable/web over the
 * extended protocol, so a dropped connection restores its session and replays what it missed,
 * and uses the server's presence to show who is online.
 */
import { createCable } from "@anycable/web";
import { byId, type ChatMessage, ChatView } from "./view.ts";

const HISTORY_WINDOW_S = 300;
const SEND_TIMEOUT_MS = 5000;

const params = new URLSearchParams(location.search);
const name = (params.get("name") ?? "").replace(/\s+/g, " ").trim().slice(0, 32);
const room = /^[\w-]{1,32}$/.test(params.get("room") ?? "") ? params.get("room")! : "lobby";

if (name) start(name, room);
else askName();

function askName(): void {
  const form = byId<HTMLFormElement>("join");
  form.hidden = false;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URL(location.href);
    next.searchParams.set("name", byId<HTMLInputElement>("name").value);
    location.assign(next);
  });
}

function start(me: string, room: string): void {
  byId("app").hidden = false;
  byId("room").textContent = `#${room}`;
  byId("me").textContent = me;
  const view = new ChatView(me);

  const url = new URL("/cable", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("name", me);
  const cable = createCable(url.href, {
    protocol: "actioncable-v1-ext-json",
    // A newcomer sees the last few minutes of the room.
    historyTimestamp: Math.floor(Date.now() / 1000) - HISTORY_WINDOW_S,
  });
  const channel = cable.subscribeTo("ChatChannel", { room });

  let connected = false;
  view.showState("connecting");
  cable.on("connect", () => {
    connected = true;
    view.showState("connected");
    view.notice("");
  });
  cable.on("disconnect", () => {
    connected = false;
    view.showState(navigator.onLine ? "reconnecting" : "offline");
  });
  addEventListener("offline", () => {
    connected = false;
    view.showState("offline");
  });
  // Closing the tab leaves at once; the server's short presence TTL covers a crashed tab.
  addEventListener("pagehide", () => {
    channel.presence.leave().catch(() => {});
  });

  channel.on("message", (msg, meta) => {
    const offset = (meta as { offset?: number } | undefined)?.offset;
    view.addMessage(msg as ChatMessage, offset);
  });

  const online = new Map<string, string>();
  channel.on("presence", (ev) => {
    if (ev.type === "info") {
      online.clear();
      for (const r of ev.records ?? []) online.set(r.id, displayName(r.id, r.info));
    } else if (ev.type === "join") {
      online.set(ev.id, displayName(ev.id, ev.info));
    } else if (ev.type === "leave") {
      online.delete(ev.id);
    }
    view.showOnline(online);
  });
  // Events missed while away are not replayed: ask for the full list on every (re)connect.
  channel.on("connect", () => {
    channel.presence.reset();
    channel.presence.info().catch(() => {});
  });
  channel.ensureSubscribed().then(() => channel.presence.join(me, { name: me })).catch(() => {});

  byId<HTMLFormElement>("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>("text");
    const text = input.value.trim();
    if (!text) return;
    if (!connected) {
      // The text stays in the box: nothing is queued behind the user's back.
      view.notice(
        "Not sent: you are offline. Your message stays in the box; send it again once connected.",
      );
      return;
    }
    input.value = "";
    view.notice("");
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("no answer")), SEND_TIMEOUT_MS)
    );
    Promise.race([channel.perform("speak", { text }), timeout]).catch(() => {
      if (!input.value) input.value = text;
      view.notice("Not sent: the server did not answer. Your message is back in the box.");
    });
  });
}

function displayName(id: string, info: unknown): string {
  const n = (info as { name?: unknown } | undefined)?.name;
  return typeof n === "string" && n ? n : id;
}
