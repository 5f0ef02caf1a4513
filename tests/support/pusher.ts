/**
 * Pusher ecosystem clients for tests: pusher-js (its Node build runs in Deno as is) whose
 * channel and user authorization call the `pusher` server SDK, and the SDK itself pointed at
 * a Cableway node.
 */
import Pusher from "pusher-js";
import PusherServer from "pusher";
import { Inbox } from "./wait.ts";

export const APP_ID = "app-1";
export const APP_KEY = "app-key";
export const APP_SECRET = "app-secret";
export const PUSHER_FLAGS = [
  `--pusher_app_id=${APP_ID}`,
  `--pusher_app_key=${APP_KEY}`,
  `--pusher_secret=${APP_SECRET}`,
];

export type Sdk = InstanceType<typeof PusherServer>;
// pusher-js's typings describe its ESM shape; Deno loads the CommonJS Node build, whose
// default export is the constructor.
// deno-lint-ignore no-explicit-any
export type PusherClient = any;
// deno-lint-ignore no-explicit-any
const PusherJs = Pusher as any;

/** A bare pusher-js client with the given key and options (WebSocket to 127.0.0.1:port). */
export function newPusherJs(
  key: string,
  port: number,
  extra: Record<string, unknown> = {},
): PusherClient {
  return new PusherJs(key, {
    wsHost: "127.0.0.1",
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    cluster: "",
    disableStats: true,
    ...extra,
  });
}
// deno-lint-ignore no-explicit-any
export type PusherChannel = any;

/** The server SDK pointed at `port` (a wrong secret makes a forger). */
export function sdk(port: number, secret = APP_SECRET): Sdk {
  return new PusherServer({
    appId: APP_ID,
    key: APP_KEY,
    secret,
    host: "127.0.0.1",
    port: String(port),
    useTLS: false,
  });
}

export interface ClientOptions {
  /** Presence identity given to authorizeChannel. */
  user?: { user_id: string; user_info?: Record<string, unknown> };
  /** Sign channel auth with this SDK (e.g. one with a wrong secret). */
  signer?: Sdk;
  /** User for pusher:signin (authenticateUser). */
  signinUser?: { id: string; [k: string]: unknown };
}

/** A pusher-js client (WebSocket only) whose auth endpoints are the SDK, in process. */
export function pusherClient(port: number, opts: ClientOptions = {}): PusherClient {
  const signer = opts.signer ?? sdk(port);
  return newPusherJs(APP_KEY, port, {
    channelAuthorization: {
      endpoint: "",
      transport: "ajax",
      customHandler: (
        params: { socketId: string; channelName: string },
        callback: (err: Error | null, data: unknown) => void,
      ) => {
        try {
          callback(
            null,
            signer.authorizeChannel(params.socketId, params.channelName, opts.user),
          );
        } catch (err) {
          callback(err as Error, null);
        }
      },
    },
    userAuthentication: {
      endpoint: "",
      transport: "ajax",
      customHandler: (
        params: { socketId: string },
        callback: (err: Error | null, data: unknown) => void,
      ) => {
        if (!opts.signinUser) return callback(new Error("no user"), null);
        callback(null, signer.authenticateUser(params.socketId, opts.signinUser));
      },
    },
  });
}

/** Resolves once the client is connected (rejects after `timeoutMs`). */
export function connected(client: PusherClient, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    if (client.connection.state === "connected") return resolve(client.connection.socket_id);
    const timer = setTimeout(() => reject(new Error("pusher-js did not connect")), timeoutMs);
    client.connection.bind("connected", () => {
      clearTimeout(timer);
      resolve(client.connection.socket_id);
    });
  });
}

/** Every event a channel sees, in order (name and data), for waiting on. */
export function record(channel: PusherChannel): Inbox<{ event: string; data: unknown }> {
  const inbox = new Inbox<{ event: string; data: unknown }>();
  channel.bind_global((event: string, data: unknown) => inbox.push({ event, data }));
  return inbox;
}

/** Waits until `inbox` holds an event named `event` (optionally matching) and returns its data. */
export async function waitEvent(
  inbox: Inbox<{ event: string; data: unknown }>,
  event: string,
  pred: (data: unknown) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<unknown> {
  let found: { event: string; data: unknown } | undefined;
  await inbox.waitFor(
    (items) => (found = items.find((i) => i.event === event && pred(i.data))) !== undefined,
    timeoutMs,
    () => `${event}; got ${JSON.stringify(inbox.items)}`,
  );
  return found!.data;
}

/** Subscribes and waits for success or error; returns the channel, its recorder and the outcome. */
export async function subscribeTo(
  client: PusherClient,
  name: string,
): Promise<
  { channel: PusherChannel; events: Inbox<{ event: string; data: unknown }>; ok: boolean }
> {
  const channel = client.subscribe(name);
  const events = record(channel);
  await events.waitFor(
    (items) =>
      items.some((i) =>
        i.event === "pusher:subscription_succeeded" || i.event === "pusher:subscription_error"
      ),
    10_000,
    () => `subscription to ${name}`,
  );
  const ok = events.items.some((i) => i.event === "pusher:subscription_succeeded");
  return { channel, events, ok };
}
