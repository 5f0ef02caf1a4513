/// <reference lib="dom" />
/** DOM rendering for the chat page: messages, who is online, the connection state. */

export interface ChatMessage {
  id: string;
  name: string;
  text: string;
  at: string;
}

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "offline";

const STATE_LABELS: Record<ConnectionState, string> = {
  idle: "not connected",
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  offline: "offline",
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node as T;
}

/** A stable hue per name, so each person keeps a colour. */
function hue(name: string): number {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) % 360;
  return h;
}

function avatar(name: string): HTMLElement {
  const node = el("span", "avatar", (name[0] ?? "?").toUpperCase());
  node.style.background = `hsl(${hue(name)} 55% 45%)`;
  return node;
}

export class ChatView {
  readonly #me: string;
  readonly #list = byId<HTMLOListElement>("messages");
  readonly #seen = new Set<string>();

  constructor(me: string) {
    this.#me = me;
  }

  /**
   * Adds a message once (live and replayed copies share the backend's id), in stream order
   * when the server gave an offset.
   */
  addMessage(msg: ChatMessage, offset?: number): void {
    if (!msg.id || this.#seen.has(msg.id)) return;
    this.#seen.add(msg.id);
    const item = el("li", msg.name === this.#me ? "message mine" : "message");
    item.dataset.id = msg.id;
    if (offset !== undefined) item.dataset.offset = String(offset);
    const body = el("div", "bubble");
    const head = el("div", "meta");
    head.append(el("span", "who", msg.name), el("time", "at", clock(msg.at)));
    body.append(head, el("p", "text", msg.text));
    item.append(avatar(msg.name), body);
    const after = offset === undefined ? undefined : [...this.#list.children].find((li) => {
      const o = (li as HTMLElement).dataset.offset;
      return o !== undefined && Number(o) > offset;
    });
    this.#list.insertBefore(item, after ?? null);
    byId("empty").hidden = true;
    item.scrollIntoView({ block: "nearest" });
  }

  showOnline(people: Map<string, string>): void {
    const list = byId<HTMLUListElement>("online");
    const names = [...people.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    list.replaceChildren(...names.map(([id, name]) => {
      const item = el("li", id === this.#me ? "person mine" : "person");
      item.dataset.id = id;
      item.append(avatar(name), el("span", "who", id === this.#me ? `${name} (you)` : name));
      return item;
    }));
    byId("online-count").textContent = String(names.length);
  }

  /** A line above the composer (e.g. why a message was not sent); empty text hides it. */
  notice(text: string): void {
    const node = byId("notice");
    node.textContent = text;
    node.hidden = text === "";
  }

  showState(state: ConnectionState): void {
    const status = byId("status");
    status.dataset.state = state;
    status.textContent = STATE_LABELS[state];
  }
}

function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? ""
    : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
