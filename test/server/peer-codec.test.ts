import { describe, expect, it } from "vitest";
import { KvError } from "../../src/errors.js";
import { encode } from "../../src/engine/codec.js";
import { MAX_INDEX, MAX_TERM, type Membership, type Message } from "../../src/raft/types.js";
import { decodeMessages, encodeMessages } from "../../src/server/peer-codec.js";

const membership: Membership = { voters: ["n1", "n2"], learners: ["n3"], addresses: { n1: "127.0.0.1:7001", n2: "127.0.0.1:7002", n3: "127.0.0.1:7003" } };
const header = { from: "n1", to: "n2", term: 7 };

const everyMessage: Message[] = [
  { type: "requestVote", ...header, lastLogIndex: 10, lastLogTerm: 6, preVote: true, transfer: false },
  { type: "requestVoteResponse", ...header, granted: true, preVote: false },
  {
    type: "appendEntries",
    ...header,
    prevLogIndex: 4,
    prevLogTerm: 6,
    entries: [
      { index: 5, term: 7, kind: "noop" },
      { index: 6, term: 7, kind: "command", data: Uint8Array.of(1, 2, 3) },
      { index: 7, term: 7, kind: "membership", membership },
    ],
    commit: 4,
  },
  { type: "appendEntriesResponse", ...header, success: true, matchIndex: 7 },
  { type: "appendEntriesResponse", ...header, success: false, matchIndex: 0, rejectHint: { index: 3, term: 2 } },
  { type: "heartbeat", ...header, commit: 9, readRound: 3 },
  { type: "heartbeatResponse", ...header, readRound: 3 },
  { type: "installSnapshot", ...header, chunk: { metadata: { index: 100, term: 5, membership, sizeBytes: 3 }, offset: 0, data: Uint8Array.of(9, 8, 7), last: true } },
  { type: "installSnapshotResponse", ...header, snapshotIndex: 100, nextOffset: 3, done: true },
  { type: "timeoutNow", ...header },
  { type: "readIndex", ...header, contexts: [1, 2, 3] },
  { type: "readIndexResponse", ...header, contexts: [1, 2], index: 42 },
  { type: "readIndexResponse", ...header, contexts: [3], index: null },
];

describe("peer message codec", () => {
  it("round-trips every message type exactly", () => {
    const decoded = decodeMessages(encodeMessages(everyMessage));
    expect(decoded).toEqual(everyMessage);
  });

  it("rejects malformed batches as INVALID", () => {
    const malformed = [encode("not a list"), encode([[99, "n1", "n2", 1]]), encode([[1, "n1", "n2"]]), encode([[3, "n1", "n2", 1, 0, 0, [Uint8Array.of(1)], 0]]), Uint8Array.of(0xc1)];
    for (const payload of malformed) {
      expect(() => decodeMessages(payload)).toThrow(KvError);
      try {
        decodeMessages(payload);
      } catch (error) {
        expect((error as KvError).code).toBe("INVALID");
      }
    }
  });

  it("detects an entry corrupted on the way", () => {
    const payload = encodeMessages([everyMessage[2] as Message]);
    const corrupted = Uint8Array.from(payload);
    const position = Buffer.from(corrupted).indexOf(Buffer.from([1, 2, 3]));
    expect(position).toBeGreaterThan(0);
    corrupted[position] = 0xff;
    expect(() => decodeMessages(corrupted)).toThrow(/entry 6/);
  });

  it("accepts terms and indexes up to their bounds, so that term + 1 stays exact", () => {
    const atBounds: Message[] = [
      { type: "requestVote", from: "n1", to: "n2", term: MAX_TERM, lastLogIndex: MAX_INDEX, lastLogTerm: MAX_TERM, preVote: false, transfer: false },
      { type: "heartbeat", from: "n1", to: "n2", term: MAX_TERM, commit: MAX_INDEX, readRound: MAX_INDEX },
    ];
    expect(decodeMessages(encodeMessages(atBounds))).toEqual(atBounds);
    expect(Number.isSafeInteger(MAX_TERM + 1) && Number.isSafeInteger(MAX_INDEX * 2)).toBe(true);
  });

  it("refuses as INVALID any term, index, commit, offset or size beyond its bound", () => {
    const term = MAX_TERM + 1;
    const index = MAX_INDEX + 1;
    const metadata = { index: 100, term: 5, membership, sizeBytes: 3 };
    const chunk = { metadata, offset: 0, data: Uint8Array.of(9, 8, 7), last: true };
    const beyond: Message[] = [
      { type: "timeoutNow", ...header, term: Number.MAX_SAFE_INTEGER },
      { type: "heartbeat", ...header, term, commit: 0, readRound: 0 },
      { type: "requestVote", ...header, lastLogIndex: 1, lastLogTerm: term, preVote: false, transfer: false },
      { type: "requestVote", ...header, lastLogIndex: index, lastLogTerm: 1, preVote: false, transfer: false },
      { type: "appendEntries", ...header, prevLogIndex: index, prevLogTerm: 1, entries: [], commit: 0 },
      { type: "appendEntries", ...header, prevLogIndex: 1, prevLogTerm: term, entries: [], commit: 0 },
      { type: "appendEntries", ...header, prevLogIndex: 1, prevLogTerm: 1, entries: [], commit: index },
      { type: "appendEntries", ...header, prevLogIndex: MAX_INDEX - 1, prevLogTerm: 1, entries: [{ index: MAX_INDEX, term: 7, kind: "noop" }, { index: index, term: 7, kind: "noop" }], commit: 0 },
      { type: "appendEntries", ...header, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term, kind: "noop" }], commit: 0 },
      { type: "appendEntriesResponse", ...header, success: true, matchIndex: index },
      { type: "appendEntriesResponse", ...header, success: false, matchIndex: 1, rejectHint: { index: 1, term } },
      { type: "heartbeat", ...header, commit: index, readRound: 0 },
      { type: "heartbeatResponse", ...header, readRound: index },
      { type: "installSnapshot", ...header, chunk: { ...chunk, metadata: { ...metadata, index } } },
      { type: "installSnapshot", ...header, chunk: { ...chunk, metadata: { ...metadata, term } } },
      { type: "installSnapshot", ...header, chunk: { ...chunk, metadata: { ...metadata, sizeBytes: index } } },
      { type: "installSnapshot", ...header, chunk: { ...chunk, offset: index } },
      { type: "installSnapshotResponse", ...header, snapshotIndex: index, nextOffset: 0, done: true },
      { type: "installSnapshotResponse", ...header, snapshotIndex: 1, nextOffset: index, done: false },
      { type: "readIndex", ...header, contexts: [1, index] },
      { type: "readIndexResponse", ...header, contexts: [1], index },
    ];
    for (const message of beyond) {
      const decode = (): unknown => decodeMessages(encodeMessages([message]));
      expect(decode, message.type).toThrow(/beyond the bound/);
      expect(decode).toThrow(expect.objectContaining({ code: "INVALID" }) as Error);
    }
  });
});
