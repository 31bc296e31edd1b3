import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import type { LogEntry } from "../../../src/raft/types.js";
import { command, membershipOf } from "./cluster.js";

const membership = membershipOf(["a", "b", "c"]);
const entry = (index: number, term: number, bytes = 0): LogEntry => ({ kind: "command", data: new Uint8Array(bytes), index, term });
const indexes = (entries: readonly LogEntry[]): number[] => entries.map((item) => item.index);

function storageWith(count: number, term = 1): MemoryStorage {
  return new MemoryStorage({ membership, entries: Array.from({ length: count }, (_, offset) => entry(offset + 1, term, 10)) });
}

describe("MemoryStorage", () => {
  it("replaces a conflicting suffix on append", () => {
    const storage = storageWith(5);
    storage.append([entry(3, 2), entry(4, 2)]);
    expect(storage.lastIndex()).toBe(4);
    expect([storage.term(2), storage.term(3), storage.term(4), storage.term(5)]).toEqual([1, 2, 2, undefined]);
  });

  it("returns at least one entry even when it alone exceeds maxBytes", () => {
    const storage = storageWith(5);
    expect(indexes(storage.entries(2, 6, 1))).toEqual([2]);
    expect(indexes(storage.entries(2, 6, 68))).toEqual([2, 3]);
    expect(indexes(storage.entries(2, 2, 100))).toEqual([]);
  });

  it("compacts up to a local snapshot and serves its data in chunks", () => {
    const storage = storageWith(5);
    const data = command("0123456789");
    storage.createSnapshot({ index: 3, term: 1, membership, sizeBytes: data.byteLength }, data);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(1);
    expect(storage.term(2)).toBeUndefined();
    expect(indexes(storage.entries(4, 6, 1000))).toEqual([4, 5]);
    expect([...storage.readSnapshotChunk(8, 4)]).toEqual([...command("89")]);
    expect(storage.initialState().membership).toEqual(membership);
  });

  it("keeps the suffix when a received snapshot matches the log, replaces the log otherwise", () => {
    const matching = storageWith(5);
    matching.applySnapshot({ index: 3, term: 1, membership, sizeBytes: 0 }, new Uint8Array(0));
    expect([matching.firstIndex(), matching.lastIndex()]).toEqual([4, 5]);
    const diverging = storageWith(5);
    diverging.applySnapshot({ index: 3, term: 2, membership, sizeBytes: 0 }, new Uint8Array(0));
    expect([diverging.firstIndex(), diverging.lastIndex(), diverging.term(3)]).toEqual([4, 3, 2]);
  });

  it("skips entries already covered by the snapshot on append", () => {
    const storage = storageWith(5);
    storage.createSnapshot({ index: 4, term: 1, membership, sizeBytes: 0 }, new Uint8Array(0));
    storage.append([entry(3, 1), entry(4, 1), entry(5, 1), entry(6, 1)]);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([5, 6]);
  });
});
