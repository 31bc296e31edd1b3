/**
 * The one command table of the wire protocol: name, code, and whether the command changes
 * replicated state (a write goes through the Raft log and carries a session sequence number).
 *
 * Codes 0x01–0x0D are the seed's and must never change. Client commands live below 0x40,
 * cluster administration in 0x40–0x7F, peer-to-peer traffic from 0x80 (PEER_COMMAND_BASE):
 * one address serves clients and peers, and a peer connection begins with `handshake`.
 */
/**
 * 2: peers authenticate with a challenge-response before any Raft message.
 * 3: Raft messages travel one way (no answer per frame), so a peer of version 2, which waits
 *    for answers, is refused at the handshake instead of stalling.
 */
export const PROTOCOL_VERSION = 3;

export const PEER_COMMAND_BASE = 0x80;

export const COMMANDS = [
  // The seed's codes.
  { name: "get", code: 0x01, write: false },
  { name: "set", code: 0x02, write: true },
  { name: "delete", code: 0x03, write: true },
  { name: "exists", code: 0x04, write: false },
  { name: "incr", code: 0x05, write: true },
  { name: "decr", code: 0x06, write: true },
  { name: "cas", code: 0x07, write: true },
  { name: "ping", code: 0x08, write: false },
  { name: "info", code: 0x09, write: false },
  { name: "setnx", code: 0x0a, write: true },
  { name: "lock", code: 0x0b, write: true },
  { name: "unlock", code: 0x0c, write: true },
  { name: "extend", code: 0x0d, write: true },
  // The rest of SPEC §4.
  { name: "getWithMeta", code: 0x0e, write: false },
  { name: "setMetadata", code: 0x0f, write: true },
  { name: "getMetadata", code: 0x10, write: false },
  { name: "incrFloat", code: 0x11, write: true },
  { name: "incrDecimal", code: 0x12, write: true },
  { name: "append", code: 0x13, write: true },
  { name: "mget", code: 0x14, write: false },
  { name: "mset", code: 0x15, write: true },
  { name: "mdelete", code: 0x16, write: true },
  { name: "keys", code: 0x17, write: false },
  { name: "scan", code: 0x18, write: false },
  { name: "count", code: 0x19, write: false },
  { name: "getPattern", code: 0x1a, write: false },
  { name: "deletePattern", code: 0x1b, write: true },
  { name: "ttl", code: 0x1c, write: false },
  { name: "expire", code: 0x1d, write: true },
  { name: "persist", code: 0x1e, write: true },
  { name: "storageSize", code: 0x1f, write: false },
  { name: "deleteExpired", code: 0x20, write: true },
  // Sessions are replicated state (exactly-once writes), so opening one is a write.
  { name: "registerSession", code: 0x21, write: true },
  // Cluster administration. Membership changes go through the log; the others do not.
  { name: "clusterStatus", code: 0x40, write: false },
  { name: "memberAdd", code: 0x41, write: true },
  { name: "memberRemove", code: 0x42, write: true },
  { name: "transferLeader", code: 0x43, write: false },
  { name: "snapshotSave", code: 0x44, write: false },
  // Reads the newest snapshot file by offset, so `kv snapshot save <file>` can download it.
  { name: "snapshotRead", code: 0x45, write: false },
  { name: "memberPromote", code: 0x46, write: true },
  // Peer to peer. A peer link opens with `handshake` and `handshakeProof` (a challenge-response
  // over the cluster secret, see server/peer-auth.ts), then carries batches of Raft messages;
  // snapshot chunks travel inside those messages. Raft's own responses carry all the meaning,
  // so a batch gets no answer unless it is refused (which closes the link).
  { name: "handshake", code: 0x80, write: false },
  { name: "raftMessages", code: 0x81, write: false, oneWay: true },
  { name: "handshakeProof", code: 0x82, write: false },
] as const satisfies readonly CommandDefinition[];

export interface CommandDefinition {
  readonly name: string;
  readonly code: number;
  readonly write: boolean;
  /** Sent without waiting for an answer; the server answers only to refuse it. */
  readonly oneWay?: true;
}

export type CommandName = (typeof COMMANDS)[number]["name"];

type CodeOf<Name extends CommandName> = Extract<(typeof COMMANDS)[number], { name: Name }>["code"];

/** `COMMAND.get === 0x01`: code by name, typed as its literal. */
export const COMMAND = Object.freeze(
  Object.fromEntries(COMMANDS.map((command) => [command.name, command.code])),
) as { readonly [Name in CommandName]: CodeOf<Name> };

const BY_CODE: ReadonlyMap<number, CommandDefinition & { readonly name: CommandName }> = new Map(
  COMMANDS.map((command) => [command.code, command]),
);

/** The definition of a code, or undefined for a code no version of the protocol has used. */
export function commandByCode(code: number): (CommandDefinition & { readonly name: CommandName }) | undefined {
  return BY_CODE.get(code);
}

export function isOneWayCommand(code: number): boolean {
  return BY_CODE.get(code)?.oneWay === true;
}

export function isPeerCommand(code: number): boolean {
  return code >= PEER_COMMAND_BASE;
}
