/**
 * The demo's application backend: an AnyCable HTTP RPC server (POST /connect, /command,
 * /disconnect, docs/protocol.md#http-rpc) for one channel, `ChatChannel`.
 *
 * - connect: the visitor's name comes from the cable URL (`/cable?name=Alice`).
 * - subscribe `{"channel":"ChatChannel","room":"lobby"}`: streams `chat:lobby`, which is also
 *   the presence stream (`$p`), so the server tracks who is online.
 * - `speak`: the backend broadcasts the message to the room stream, as a real app would.
 */

/** Publishes `data` (JSON-encoded by the callee) to a Cableway stream. */
export type Broadcast = (stream: string, data: unknown) => Promise<void>;

export interface ChatBackendOptions {
  /** The bearer key Cableway sends with every RPC call. */
  rpcSecret: string;
  broadcast: Broadcast;
}

/** What every chat message looks like on the wire. */
export interface ChatMessage {
  id: string;
  name: string;
  text: string;
  /** ISO time the backend accepted the message. */
  at: string;
}

const ERROR = 0;
const SUCCESS = 1;
const FAILURE = 2;

const NAME_MAX = 32;
const TEXT_MAX = 500;
const ROOM_RE = /^[\w-]{1,32}$/;

type Json = Record<string, unknown>;

/** The RPC request handler, to mount under the `--rpc_host` URL. */
export function createChatBackend(opts: ChatBackendOptions): (req: Request) => Promise<Response> {
  const expected = `Bearer ${opts.rpcSecret}`;
  return async (req) => {
    if (req.method !== "POST") return new Response("POST only\n", { status: 405 });
    if (req.headers.get("authorization") !== expected) {
      return new Response("unauthorized\n", { status: 401 });
    }
    let body: Json;
    try {
      body = await req.json();
    } catch {
      return new Response("bad JSON\n", { status: 400 });
    }
    const call = new URL(req.url).pathname.split("/").pop();
    const sid = req.headers.get("x-anycable-meta-sid") ?? undefined;
    if (call === "connect") return Response.json(connect(body, sid));
    if (call === "command") return Response.json(await command(body, opts.broadcast));
    if (call === "disconnect") return Response.json({ status: SUCCESS });
    return new Response("not found\n", { status: 404 });
  };
}

function connect(body: Json, sid: string | undefined): Json {
  const env = (body.env ?? {}) as { url?: string };
  const name = cleanName(env.url ? new URL(env.url).searchParams.get("name") : null);
  if (!name) {
    return {
      status: FAILURE,
      transmissions: [
        JSON.stringify({ type: "disconnect", reason: "unauthorized", reconnect: false }),
      ],
    };
  }
  return {
    status: SUCCESS,
    identifiers: JSON.stringify({ name }),
    transmissions: [JSON.stringify({ type: "welcome", sid })],
  };
}

async function command(body: Json, broadcast: Broadcast): Promise<Json> {
  const identifier = String(body.identifier ?? "");
  const channel = parseJson(identifier);
  const room = typeof channel?.room === "string" ? channel.room : "";
  if (channel?.channel !== "ChatChannel" || !ROOM_RE.test(room)) {
    return {
      status: FAILURE,
      transmissions: [JSON.stringify({ identifier, type: "reject_subscription" })],
    };
  }
  const stream = `chat:${room}`;
  switch (body.command) {
    case "subscribe":
      return {
        status: SUCCESS,
        streams: [stream],
        env: { istate: { "$p": stream } },
        transmissions: [JSON.stringify({ identifier, type: "confirm_subscription" })],
      };
    case "unsubscribe":
      return { status: SUCCESS };
    case "message":
      return await speak(body, stream, broadcast);
    default:
      return { status: ERROR, error_msg: `unknown command ${String(body.command)}` };
  }
}

async function speak(body: Json, stream: string, broadcast: Broadcast): Promise<Json> {
  const data = parseJson(String(body.data ?? ""));
  const ids = parseJson(String(body.connection_identifiers ?? ""));
  const name = cleanName(typeof ids?.name === "string" ? ids.name : null);
  const text = typeof data?.text === "string" ? data.text.trim().slice(0, TEXT_MAX) : "";
  if (data?.action !== "speak" || !name || !text) {
    return { status: FAILURE, error_msg: "expected a speak action with some text" };
  }
  const message: ChatMessage = {
    id: crypto.randomUUID(),
    name,
    text,
    at: new Date().toISOString(),
  };
  try {
    await broadcast(stream, message);
  } catch (err) {
    return { status: ERROR, error_msg: `broadcast failed: ${err}` };
  }
  return { status: SUCCESS };
}

function cleanName(raw: string | null): string {
  return (raw ?? "").replace(/\s+/g, " ").trim().slice(0, NAME_MAX);
}

function parseJson(text: string): Json | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
