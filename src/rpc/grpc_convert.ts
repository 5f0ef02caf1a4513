/**
 * Converts between Cableway's JSON-shaped RPC values (rpc_client.ts) and the protobuf
 * messages of proto/rpc.proto. Responses drop empty fields, as the HTTP JSON shapes do.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CommandMessageSchema,
  type CommandResponse as CommandResponseMessage,
  CommandResponseSchema,
  ConnectionRequestSchema,
  type ConnectionResponse as ConnectionResponseMessage,
  ConnectionResponseSchema,
  DisconnectRequestSchema,
  type DisconnectResponse as DisconnectResponseMessage,
  DisconnectResponseSchema,
  type EnvResponse as EnvResponseMessage,
  type EnvSchema,
} from "../../proto/gen/rpc_pb.ts";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type CommandRequest,
  type CommandResponse,
  type ConnectRequest,
  type ConnectResponse,
  type DisconnectRequest,
  type DisconnectResponse,
  type Env,
  type EnvResponse,
  normalizeStatus,
  type PresenceResponse,
} from "./rpc_client.ts";

function envInit(env: Env): MessageInitShape<typeof EnvSchema> {
  return {
    url: env.url ?? "",
    headers: env.headers ?? {},
    cstate: env.cstate ?? {},
    istate: env.istate ?? {},
  };
}

export function encodeConnectRequest(req: ConnectRequest): Uint8Array {
  return toBinary(
    ConnectionRequestSchema,
    create(ConnectionRequestSchema, { env: envInit(req.env) }),
  );
}

export function encodeCommandRequest(req: CommandRequest): Uint8Array {
  return toBinary(
    CommandMessageSchema,
    create(CommandMessageSchema, {
      command: req.command,
      identifier: req.identifier,
      connectionIdentifiers: req.connection_identifiers ?? "",
      data: req.data ?? "",
      env: envInit(req.env),
    }),
  );
}

export function encodeDisconnectRequest(req: DisconnectRequest): Uint8Array {
  return toBinary(
    DisconnectRequestSchema,
    create(DisconnectRequestSchema, {
      identifiers: req.identifiers ?? "",
      subscriptions: req.subscriptions ?? [],
      env: envInit(req.env),
    }),
  );
}

/** Throws (from @bufbuild/protobuf) when `bytes` is not a valid message. */
export function decodeConnectResponse(bytes: Uint8Array): ConnectResponse {
  const msg: ConnectionResponseMessage = fromBinary(ConnectionResponseSchema, bytes);
  const out: ConnectResponse = { status: normalizeStatus(msg.status) };
  if (msg.identifiers) out.identifiers = msg.identifiers;
  if (msg.transmissions.length) out.transmissions = msg.transmissions;
  if (msg.errorMsg) out.error_msg = msg.errorMsg;
  const env = envResponse(msg.env);
  if (env) out.env = env;
  return out;
}

export function decodeCommandResponse(bytes: Uint8Array): CommandResponse {
  const msg: CommandResponseMessage = fromBinary(CommandResponseSchema, bytes);
  const out: CommandResponse = { status: normalizeStatus(msg.status) };
  if (msg.disconnect) out.disconnect = true;
  if (msg.stopStreams) out.stop_streams = true;
  if (msg.streams.length) out.streams = msg.streams;
  if (msg.stoppedStreams.length) out.stopped_streams = msg.stoppedStreams;
  if (msg.transmissions.length) out.transmissions = msg.transmissions;
  if (msg.errorMsg) out.error_msg = msg.errorMsg;
  const env = envResponse(msg.env);
  if (env) out.env = env;
  if (msg.presence) {
    const presence: PresenceResponse = {
      type: msg.presence.type as PresenceResponse["type"],
      id: msg.presence.id,
    };
    if (msg.presence.info) presence.info = msg.presence.info;
    out.presence = presence;
  }
  return out;
}

export function decodeDisconnectResponse(bytes: Uint8Array): DisconnectResponse {
  const msg: DisconnectResponseMessage = fromBinary(DisconnectResponseSchema, bytes);
  const out: DisconnectResponse = { status: normalizeStatus(msg.status) };
  if (msg.errorMsg) out.error_msg = msg.errorMsg;
  return out;
}

function envResponse(env: EnvResponseMessage | undefined): EnvResponse | undefined {
  if (!env) return undefined;
  const out: EnvResponse = {};
  if (Object.keys(env.cstate).length) out.cstate = { ...env.cstate };
  if (Object.keys(env.istate).length) out.istate = { ...env.istate };
  return out.cstate || out.istate ? out : undefined;
}
