import { decode, encode } from "../../src/engine/codec.js";
import type { LogEntry, Membership } from "../../src/raft/types.js";

/** The value a register holds: which client write put it there, at which log index. */
export interface RegisterValue {
  readonly operationId: number;
  readonly index: number;
}

/** One client write, as carried in a command entry. */
export interface WriteCommand {
  readonly key: string;
  readonly operationId: number;
}

export function encodeWrite(command: WriteCommand): Uint8Array {
  return encode([command.key, command.operationId]);
}

export function decodeWrite(data: Uint8Array): WriteCommand {
  const decoded = decode(data);
  if (!Array.isArray(decoded) || typeof decoded[0] !== "string" || typeof decoded[1] !== "number") {
    throw new TypeError("malformed simulated write command");
  }
  return { key: decoded[0], operationId: decoded[1] };
}

/**
 * The simulated state machine: a map of registers, each holding the last write applied to it.
 * It records the index of each write so that a read can tell how fresh its value is. It is
 * deterministic, like every replicated state machine must be.
 */
export class RegisterMachine {
  private readonly registers = new Map<string, RegisterValue>();

  private constructor(
    private lastAppliedIndex: number,
    private currentMembership: Membership,
  ) {}

  static empty(membership: Membership): RegisterMachine {
    return new RegisterMachine(0, membership);
  }

  /** Rebuilds the machine from snapshot data written by `snapshotData()`. */
  static restore(data: Uint8Array, appliedIndex: number, membership: Membership): RegisterMachine {
    const machine = new RegisterMachine(appliedIndex, membership);
    if (data.length === 0) return machine;
    const decoded = decode(data);
    if (!Array.isArray(decoded)) throw new TypeError("malformed simulated snapshot");
    for (const row of decoded as unknown[]) {
      if (!Array.isArray(row)) throw new TypeError("malformed simulated snapshot row");
      const [key, operationId, index] = row as unknown[];
      if (typeof key !== "string" || typeof operationId !== "number" || typeof index !== "number") {
        throw new TypeError("malformed simulated snapshot row");
      }
      machine.registers.set(key, { operationId, index });
    }
    return machine;
  }

  get appliedIndex(): number {
    return this.lastAppliedIndex;
  }

  /** Membership as of the applied index (what a snapshot taken now must carry). */
  get membership(): Membership {
    return this.currentMembership;
  }

  /** Applies one committed entry; returns the write it carried, if any. */
  apply(entry: LogEntry): WriteCommand | null {
    this.lastAppliedIndex = entry.index;
    if (entry.kind === "membership") this.currentMembership = entry.membership;
    if (entry.kind !== "command") return null;
    const command = decodeWrite(entry.data);
    this.registers.set(command.key, { operationId: command.operationId, index: entry.index });
    return command;
  }

  read(key: string): RegisterValue | undefined {
    return this.registers.get(key);
  }

  /** Sorted rows, so equal states always encode to equal bytes. */
  snapshotData(): Uint8Array {
    const rows = [...this.registers.entries()]
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
      .map(([key, value]) => [key, value.operationId, value.index]);
    return encode(rows);
  }

  keys(): string[] {
    return [...this.registers.keys()].sort();
  }
}
