import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encode } from "../../src/engine/codec.js";
import type { LogEntry, Message } from "../../src/raft/types.js";
import {
  ConnectionSlots,
  defaultMaxConnections,
  FALLBACK_OPEN_FILE_LIMIT,
  LEVELDB_MAX_OPEN_FILES,
  maxRequestBytesFor,
  MIN_DEFAULT_MAX_CONNECTIONS,
  parseOpenFileLimit,
  reservedDescriptors,
  ThrottledLog,
} from "../../src/server/connection-limits.js";
import { decodeMessages } from "../../src/server/peer-codec.js";
import { encodePeerFrames } from "../../src/server/peer-frames.js";
import { MAX_FRAME_BYTES } from "../../src/engine/limits.js";
import { DEFAULT_MAX_REQUEST_BYTES, MAX_REQUEST_PAYLOAD_BYTES, PEER_ENVELOPE_OVERHEAD_BYTES } from "../../src/server/protocol/frame.js";
import { RequestByteBudget } from "../../src/server/request-budget.js";
import { minimumEncodedBytes } from "../../src/server/response-size.js";
import { valueArbitrary } from "../engine/values/arbitraries.js";

const LIMITS_FILE = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

describe("descriptor budget", () => {
  it("reads the soft open-file limit from /proc/self/limits, and nothing from an unlimited or missing row", () => {
    expect(parseOpenFileLimit(LIMITS_FILE)).toBe(20000);
    expect(parseOpenFileLimit(LIMITS_FILE.replace("20000                20000", "unlimited            unlimited"))).toBeNull();
    expect(parseOpenFileLimit("Max cpu time unlimited unlimited seconds\n")).toBeNull();
  });

  it("leaves clients what LevelDB, peers, snapshots and the process do not need, never less than the minimum", () => {
    expect(reservedDescriptors()).toBeGreaterThan(LEVELDB_MAX_OPEN_FILES);
    expect(defaultMaxConnections(20000)).toEqual({ openFileLimit: 20000, maxConnections: 20000 - reservedDescriptors(), tooLow: false });
    expect(defaultMaxConnections(1024)).toEqual({ openFileLimit: 1024, maxConnections: MIN_DEFAULT_MAX_CONNECTIONS, tooLow: true });
    expect(defaultMaxConnections(null).maxConnections).toBe(defaultMaxConnections(FALLBACK_OPEN_FILE_LIMIT).maxConnections);
  });
});

describe("the request limit", () => {
  const MIB = 1024 * 1024;

  it("defaults to 16 MiB, raised to fit one largest value, and never lets an entry outgrow a peer frame", () => {
    expect(maxRequestBytesFor(undefined, 8 * MIB)).toBe(DEFAULT_MAX_REQUEST_BYTES);
    expect(maxRequestBytesFor(undefined, 32 * MIB)).toBe(32 * MIB + 64 * 1024);
    expect(maxRequestBytesFor(4 * MIB, 1 * MIB)).toBe(4 * MIB);
    expect(() => maxRequestBytesFor(undefined, 64 * MIB)).toThrow(/fit a peer frame/);
    expect(() => maxRequestBytesFor(MAX_REQUEST_PAYLOAD_BYTES + 1, 8 * MIB)).toThrow(/fit a peer frame/);
    expect(() => maxRequestBytesFor(4 * MIB, 8 * MIB)).toThrow(/room for one value/);
  });
});

describe("ConnectionSlots", () => {
  it("fills client slots, then the peer reserve, then refuses; a proven peer frees its client slot", () => {
    const slots = new ConnectionSlots(2, 1);
    const first = slots.take();
    expect([first, slots.take(), slots.take(), slots.take()]).toEqual(["client", "client", "peer", null]);
    slots.release("peer");
    expect(first).toBe("client");
    // The reserve has room again: a client slot whose link proves to be a peer moves there.
    expect(slots.promote("client")).toBe("peer");
    expect({ clients: slots.clientConnections, peers: slots.peerConnections }).toEqual({ clients: 1, peers: 1 });
    expect(slots.take()).toBe("client");
    // With the reserve full a peer keeps its client slot.
    expect(slots.promote("client")).toBe("client");
  });
});

describe("ThrottledLog", () => {
  it("logs the first occurrence, then at most once per interval with the count it stands for", () => {
    const lines: number[] = [];
    const log = new ThrottledLog(1000, (count) => lines.push(count));
    for (const nowMs of [0, 10, 20, 999, 1000, 1500, 2600]) log.occurred(nowMs);
    expect(lines).toEqual([1, 4, 2]);
  });
});

describe("RequestByteBudget", () => {
  it("grants up to its limit, one reservation alone however large, and wakes waiters in order while room lasts", () => {
    const budget = new RequestByteBudget(100);
    expect(budget.tryReserve(500)).toBe(true);
    expect(budget.tryReserve(1)).toBe(false);
    const woken: string[] = [];
    const waiter = (name: string, bytes: number) => (): boolean => {
      woken.push(name);
      return budget.tryReserve(bytes);
    };
    const first = waiter("first", 60);
    const second = waiter("second", 60);
    const third = waiter("third", 10);
    budget.wait(first);
    budget.wait(second);
    budget.wait(third);
    budget.release(500);
    // first fits; second does not and keeps the head of the line, so third waits behind it.
    expect(woken).toEqual(["first", "second"]);
    expect({ used: budget.usedBytes, waiting: budget.waiting }).toEqual({ used: 60, waiting: 2 });
    budget.release(60);
    expect(woken).toEqual(["first", "second", "second", "third"]);
    expect({ used: budget.usedBytes, waiting: budget.waiting }).toEqual({ used: 70, waiting: 0 });
  });
});

describe("minimumEncodedBytes", () => {
  it("never exceeds the encoded size of a value, a Map of values or a result object", () => {
    fc.assert(
      fc.property(valueArbitrary, fc.array(fc.tuple(fc.string(), valueArbitrary), { maxLength: 5 }), (value, entries) => {
        for (const result of [value, new Map(entries), { cursor: "0", keys: entries.map(([key]) => key) }]) {
          expect(minimumEncodedBytes(result, Number.MAX_SAFE_INTEGER)).toBeLessThanOrEqual(encode(result).byteLength);
        }
      }),
    );
  });

  it("counts the bulk of a large result, and stops soon past the bound", () => {
    const values = new Map(Array.from({ length: 100 }, (_, index) => [`k${index}`, new Uint8Array(1000)] as const));
    const exact = encode(values).byteLength;
    expect(minimumEncodedBytes(values, Number.MAX_SAFE_INTEGER)).toBeGreaterThan(exact * 0.99);
    expect(minimumEncodedBytes(values, 5000)).toBeLessThan(7000);
  });
});

describe("peer frames", () => {
  const command = (index: number, bytes: number): LogEntry => ({ index, term: 1, kind: "command", data: new Uint8Array(bytes).fill(index % 251) });
  const append = (entries: LogEntry[]): Message => ({
    type: "appendEntries",
    from: "n1",
    to: "n2",
    term: 1,
    prevLogIndex: (entries[0]?.index ?? 1) - 1,
    prevLogTerm: 1,
    entries,
    commit: 0,
  });

  it("keeps every frame within the limit, in order, each decoding to its messages", () => {
    const messages: Message[] = [
      append([command(1, 3000)]),
      { type: "heartbeat", from: "n1", to: "n2", term: 1, commit: 0, readRound: 1 },
      append([command(2, 3000), command(3, 3000)]),
      append([command(4, 9000)]),
    ];
    const oversized: Message[] = [];
    const frames = encodePeerFrames(messages, 10_000, (message) => oversized.push(message));
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.every((frame) => frame.payload.byteLength <= 10_000)).toBe(true);
    expect(frames.flatMap((frame) => decodeMessages(frame.payload))).toEqual(messages);
    expect(oversized).toEqual([]);
  });

  it("hands over a message no frame can hold instead of sending it", () => {
    const tooBig = append([command(1, 20_000)]);
    const small: Message = { type: "heartbeat", from: "n1", to: "n2", term: 1, commit: 0, readRound: 1 };
    const oversized: Message[] = [];
    const frames = encodePeerFrames([tooBig, small], 10_000, (message) => oversized.push(message));
    expect(oversized).toEqual([tooBig]);
    expect(frames.flatMap((frame) => decodeMessages(frame.payload))).toEqual([small]);
  });

  it("fits the largest client request, as an entry, in one peer frame", () => {
    expect(MAX_REQUEST_PAYLOAD_BYTES + PEER_ENVELOPE_OVERHEAD_BYTES).toBe(MAX_FRAME_BYTES);
    // The entry data is [now, command] around the request's fields: a few bytes more at most.
    const entry = command(Number.MAX_SAFE_INTEGER, MAX_REQUEST_PAYLOAD_BYTES + 64);
    const [frame, ...rest] = encodePeerFrames([{ ...append([entry]), from: "a".repeat(256), to: "b".repeat(256), term: Number.MAX_SAFE_INTEGER }], MAX_FRAME_BYTES, () => undefined);
    expect(rest).toEqual([]);
    expect(frame?.payload.byteLength).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });
});
