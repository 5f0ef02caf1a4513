import type { ClientCommand } from "./messages.ts";

export class InvalidFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidFrameError";
  }
}

/** Decodes a client text frame; throws InvalidFrameError for anything that is not a command. */
export function decodeCommand(frame: string): ClientCommand {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch {
    throw new InvalidFrameError("malformed JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidFrameError("a command must be a JSON object");
  }
  const cmd = value as Record<string, unknown>;
  if (typeof cmd.command !== "string") throw new InvalidFrameError("missing command");
  if (cmd.identifier !== undefined && typeof cmd.identifier !== "string") {
    throw new InvalidFrameError("identifier must be a string");
  }
  return cmd as unknown as ClientCommand;
}
