import { decode, encode } from "../engine/codec.js";
import { decodeCommand, encodeCommand, type Command } from "../engine/commands.js";
import type { EngineLimits } from "../engine/limits.js";
import { KvError } from "../errors.js";

/**
 * The data of a command entry in the Raft log: `[now, command]`. `now` is the leader's clock
 * when it proposed the entry; it is the only time the state machine ever sees, so every replica
 * expires keys and locks at exactly the same point of the log.
 */
export function encodeEntryData(now: number, command: Command): Uint8Array {
  return encode([now, encodeCommand(command)]);
}

export interface EntryData {
  readonly now: number;
  readonly command: Command;
}

export function decodeEntryData(data: Uint8Array, limits: EngineLimits): EntryData {
  const fields = decode(data);
  if (!Array.isArray(fields) || fields.length !== 2) throw new KvError("CORRUPT", "command entry is not [now, command]");
  const [now, command] = fields as unknown[];
  if (typeof now !== "number" || !Number.isFinite(now)) throw new KvError("CORRUPT", "command entry has no valid time");
  if (!(command instanceof Uint8Array)) throw new KvError("CORRUPT", "command entry holds no command bytes");
  return { now, command: decodeCommand(command, limits) };
}
