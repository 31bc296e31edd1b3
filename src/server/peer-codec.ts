import { decode, encode } from "../engine/codec.js";
import { KvError } from "../errors.js";
import { MAX_INDEX, MAX_TERM, type LogEntry, type Message, type SnapshotMetadata } from "../raft/types.js";
import { decodeEntry, encodeEntry } from "./storage/log-records.js";
import { membershipFromFields, membershipToFields } from "./storage/record-codec.js";

/**
 * Raft messages on a peer link: a batch is a msgpack array of positional tuples
 * `[type, from, to, term, ...fields]`. Entries travel in their checksummed log-record form,
 * so a byte flipped on the way is caught before it reaches the log. Codes are part of the
 * peer protocol (PROTOCOL_VERSION) and must never change meaning.
 *
 * Every number is bounded: terms by MAX_TERM, indexes, commits, offsets, sizes, read rounds and
 * read contexts by MAX_INDEX (src/raft/types.ts says why), so that what the core computes from
 * them (`term + 1`, `index + count`) stays exact. A batch with one beyond its bound is INVALID.
 */
const MESSAGE_CODES = {
  requestVote: 1,
  requestVoteResponse: 2,
  appendEntries: 3,
  appendEntriesResponse: 4,
  heartbeat: 5,
  heartbeatResponse: 6,
  installSnapshot: 7,
  installSnapshotResponse: 8,
  timeoutNow: 9,
  readIndex: 10,
  readIndexResponse: 11,
} as const satisfies Record<Message["type"], number>;

const TYPE_BY_CODE = new Map(Object.entries(MESSAGE_CODES).map(([type, code]) => [code as number, type as Message["type"]]));

export function encodeMessages(messages: readonly Message[]): Uint8Array {
  return encode(messages.map(messageToFields));
}

/** Decodes and checks a batch; anything malformed or out of bounds is INVALID, nothing is delivered. */
export function decodeMessages(payload: Uint8Array): Message[] {
  const batch = decode(payload);
  if (!Array.isArray(batch)) throw invalid("a message batch must be a list");
  return batch.map(messageFromFields);
}

function messageToFields(message: Message): unknown[] {
  const header = [MESSAGE_CODES[message.type], message.from, message.to, message.term];
  switch (message.type) {
    case "requestVote":
      return [...header, message.lastLogIndex, message.lastLogTerm, message.preVote, message.transfer];
    case "requestVoteResponse":
      return [...header, message.granted, message.preVote];
    case "appendEntries":
      return [...header, message.prevLogIndex, message.prevLogTerm, message.entries.map(encodeEntry), message.commit];
    case "appendEntriesResponse":
      return [...header, message.success, message.matchIndex, message.rejectHint?.index ?? null, message.rejectHint?.term ?? null];
    case "heartbeat":
      return [...header, message.commit, message.readRound];
    case "heartbeatResponse":
      return [...header, message.readRound];
    case "installSnapshot": {
      const { metadata, offset, data, last } = message.chunk;
      return [...header, metadataToFields(metadata), offset, data, last];
    }
    case "installSnapshotResponse":
      return [...header, message.snapshotIndex, message.nextOffset, message.done];
    case "timeoutNow":
      return header;
    case "readIndex":
      return [...header, message.contexts];
    case "readIndexResponse":
      return [...header, message.contexts, message.index];
  }
}

/** Positional reader: each accessor checks the type of the next field. */
class Fields {
  private position = 0;
  constructor(private readonly fields: readonly unknown[]) {}

  next(): unknown {
    if (this.position >= this.fields.length) throw invalid("message is missing fields");
    return this.fields[this.position++];
  }
  /** An index, commit, offset, size or counter: an integer in [0, MAX_INDEX]. */
  count(): number {
    return this.bounded(MAX_INDEX, "index");
  }
  /** A term: an integer in [0, MAX_TERM]. */
  term(): number {
    return this.bounded(MAX_TERM, "term");
  }
  private bounded(bound: number, what: string): number {
    const value = this.next();
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalid("expected a non-negative integer");
    if (value > bound) throw invalid(`${what} ${value} beyond the bound ${bound}`);
    return value;
  }
  string(): string {
    const value = this.next();
    if (typeof value !== "string") throw invalid("expected a string");
    return value;
  }
  boolean(): boolean {
    const value = this.next();
    if (typeof value !== "boolean") throw invalid("expected a boolean");
    return value;
  }
  bytes(): Uint8Array {
    const value = this.next();
    if (!(value instanceof Uint8Array)) throw invalid("expected bytes");
    // A plain view rather than the codec's Buffer subclass, as everywhere else in Raft data.
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  list(): unknown[] {
    const value = this.next();
    if (!Array.isArray(value)) throw invalid("expected a list");
    return value;
  }
  counts(): number[] {
    return this.list().map((item) => new Fields([item]).count());
  }
  nullableCount(): number | null {
    return this.fields[this.position] === null ? (this.position++, null) : this.count();
  }
  nullableTerm(): number | null {
    return this.fields[this.position] === null ? (this.position++, null) : this.term();
  }
}

function messageFromFields(value: unknown): Message {
  if (!Array.isArray(value)) throw invalid("a message must be a list");
  const fields = new Fields(value);
  const type = TYPE_BY_CODE.get(fields.count());
  if (type === undefined) throw invalid("unknown message type");
  const header = { from: fields.string(), to: fields.string(), term: fields.term() };
  return readBody(type, header, fields);
}

type Header = Pick<Message, "from" | "to" | "term">;

function readBody(type: Message["type"], header: Header, fields: Fields): Message {
  switch (type) {
    case "requestVote":
      return { type, ...header, lastLogIndex: fields.count(), lastLogTerm: fields.term(), preVote: fields.boolean(), transfer: fields.boolean() };
    case "requestVoteResponse":
      return { type, ...header, granted: fields.boolean(), preVote: fields.boolean() };
    case "appendEntries": {
      const prevLogIndex = fields.count();
      const prevLogTerm = fields.term();
      const entries = readEntries(fields.list(), prevLogIndex);
      return { type, ...header, prevLogIndex, prevLogTerm, entries, commit: fields.count() };
    }
    case "appendEntriesResponse":
      return readAppendResponse(header, fields);
    case "heartbeat":
      return { type, ...header, commit: fields.count(), readRound: fields.count() };
    case "heartbeatResponse":
      return { type, ...header, readRound: fields.count() };
    case "installSnapshot": {
      const metadata = metadataFromFields(fields.list());
      return { type, ...header, chunk: { metadata, offset: fields.count(), data: fields.bytes(), last: fields.boolean() } };
    }
    case "installSnapshotResponse":
      return { type, ...header, snapshotIndex: fields.count(), nextOffset: fields.count(), done: fields.boolean() };
    case "timeoutNow":
      return { type, ...header };
    case "readIndex":
      return { type, ...header, contexts: fields.counts() };
    case "readIndexResponse":
      return { type, ...header, contexts: fields.counts(), index: fields.nullableCount() };
  }
}

function readAppendResponse(header: Header, fields: Fields): Message {
  const success = fields.boolean();
  const matchIndex = fields.count();
  const hintIndex = fields.nullableCount();
  const hintTerm = fields.nullableTerm();
  const base = { type: "appendEntriesResponse" as const, ...header, success, matchIndex };
  return hintIndex === null || hintTerm === null ? base : { ...base, rejectHint: { index: hintIndex, term: hintTerm } };
}

function readEntries(records: readonly unknown[], prevLogIndex: number): LogEntry[] {
  return records.map((record, offset) => {
    if (!(record instanceof Uint8Array)) throw invalid("an entry must be bytes");
    const index = prevLogIndex + 1 + offset;
    let entry: LogEntry;
    try {
      entry = decodeEntry(record, index);
    } catch (error) {
      throw invalid(`entry ${index}: ${(error as Error).message}`);
    }
    if (index > MAX_INDEX || entry.term > MAX_TERM) throw invalid(`entry ${index} with term ${entry.term} beyond the bounds`);
    return entry;
  });
}

function metadataToFields(metadata: SnapshotMetadata): unknown[] {
  return [metadata.index, metadata.term, membershipToFields(metadata.membership), metadata.sizeBytes];
}

function metadataFromFields(value: unknown[]): SnapshotMetadata {
  const fields = new Fields(value);
  const index = fields.count();
  const term = fields.term();
  try {
    const membership = membershipFromFields(fields.next(), "snapshot metadata");
    return { index, term, membership, sizeBytes: fields.count() };
  } catch (error) {
    throw error instanceof KvError && error.code === "INVALID" ? error : invalid((error as Error).message);
  }
}

function invalid(message: string): KvError {
  return new KvError("INVALID", `malformed raft message: ${message}`);
}
