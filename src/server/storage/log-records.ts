import type { HardState, LogEntry } from "../../raft/types.js";
import {
  corrupt,
  expectCount,
  expectString,
  membershipFromFields,
  membershipToFields,
  sealRecord,
  unsealRecord,
} from "./record-codec.js";

/**
 * Key layout of the log database. Entry keys are a prefix byte and the index as 8 big-endian
 * bytes, so LevelDB's byte order is index order and the tail is one reverse seek away.
 */
const ENTRY_PREFIX = 0x01;
const INDEX_BYTES = 8;
export const HARD_STATE_KEY = Uint8Array.of(0x02);
export const SNAPSHOT_POINT_KEY = Uint8Array.of(0x03);
/** Written with sync: true by the "interval" mode to make every earlier write durable. */
export const SYNC_MARKER_KEY = Uint8Array.of(0x04);

export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(1 + INDEX_BYTES);
  key[0] = ENTRY_PREFIX;
  new DataView(key.buffer).setBigUint64(1, BigInt(index));
  return key;
}

/** Bounds of an iterator over every entry key. */
export const ENTRY_KEY_RANGE = { gte: entryKey(0), lte: entryKey(Number.MAX_SAFE_INTEGER) };

export function indexOfEntryKey(key: Uint8Array): number {
  const what = `log key ${Buffer.from(key).toString("hex")}`;
  if (key.length !== 1 + INDEX_BYTES || key[0] !== ENTRY_PREFIX) throw corrupt(what, "not an entry key");
  const index = new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(1);
  if (index > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(what, "index out of range");
  return Number(index);
}

const ENTRY_KINDS = ["noop", "command", "membership"] as const;

export function encodeEntry(entry: LogEntry): Uint8Array {
  const kindCode = ENTRY_KINDS.indexOf(entry.kind);
  switch (entry.kind) {
    case "noop":
      return sealRecord([entry.index, entry.term, kindCode]);
    case "command":
      return sealRecord([entry.index, entry.term, kindCode, entry.data]);
    case "membership":
      return sealRecord([entry.index, entry.term, kindCode, membershipToFields(entry.membership)]);
  }
}

/** Decodes and verifies the entry stored under `index`. */
export function decodeEntry(record: Uint8Array, index: number): LogEntry {
  const what = `log entry ${index}`;
  const [storedIndex, storedTerm, kindCode, payload] = unsealRecord(record, what);
  if (expectCount(storedIndex, what, "index") !== index) {
    throw corrupt(what, `record holds index ${String(storedIndex)}`);
  }
  const term = expectCount(storedTerm, what, "term");
  switch (ENTRY_KINDS[expectCount(kindCode, what, "kind")]) {
    case "noop":
      return { index, term, kind: "noop" };
    case "command":
      if (!(payload instanceof Uint8Array)) throw corrupt(what, "command data is not bytes");
      // A plain view, not the codec's Buffer subclass: entries compare equal wherever they came from.
      return { index, term, kind: "command", data: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) };
    case "membership":
      return { index, term, kind: "membership", membership: membershipFromFields(payload, what) };
    default:
      throw corrupt(what, `unknown entry kind ${String(kindCode)}`);
  }
}

/**
 * The hard state and the watermark: the last index the log held when this batch was written.
 * Every batch carries it, so a log that ends before its watermark lost entries it once held
 * (damage LevelDB's recovery or a damaged table file dropped without a word).
 */
export interface LogStateRecord {
  readonly hardState: HardState;
  /** Null in a record written before the watermark existed: nothing to check it against. */
  readonly lastIndexWritten: number | null;
}

export const NO_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

export function encodeLogState(state: LogStateRecord & { readonly lastIndexWritten: number }): Uint8Array {
  const { hardState, lastIndexWritten } = state;
  return sealRecord([hardState.term, hardState.vote, hardState.commit, lastIndexWritten]);
}

export function decodeLogState(record: Uint8Array): LogStateRecord {
  const what = "log hard state";
  const [term, vote, commit, lastIndexWritten] = unsealRecord(record, what);
  return {
    hardState: {
      term: expectCount(term, what, "term"),
      vote: vote === null ? null : expectString(vote, what, "vote"),
      commit: expectCount(commit, what, "commit"),
    },
    lastIndexWritten: lastIndexWritten === undefined ? null : expectCount(lastIndexWritten, what, "watermark"),
  };
}

/** Index and term of the last entry covered by a snapshot; the log starts after it. */
export interface SnapshotPoint {
  readonly index: number;
  readonly term: number;
}

export function encodeSnapshotPoint(point: SnapshotPoint): Uint8Array {
  return sealRecord([point.index, point.term]);
}

export function decodeSnapshotPoint(record: Uint8Array): SnapshotPoint {
  const what = "log snapshot point";
  const [index, term] = unsealRecord(record, what);
  return { index: expectCount(index, what, "index"), term: expectCount(term, what, "term") };
}

export function encodeSyncMarker(syncCount: number): Uint8Array {
  return sealRecord([syncCount]);
}
