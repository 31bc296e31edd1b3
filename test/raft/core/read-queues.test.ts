import { describe, expect, it } from "vitest";
import { ReadForwarder, ReadIndexBatcher } from "../../../src/raft/read-index.js";

describe("ReadIndexBatcher", () => {
  it("puts every read that arrives before a round is issued into that round", () => {
    const batcher = new ReadIndexBatcher(10);
    batcher.add(1, "me", 5);
    batcher.add(2, "follower", 5);
    expect(batcher.hasUnissuedReads()).toBe(true);
    expect(batcher.issueRound()).toBe(1);
    expect(batcher.hasUnissuedReads()).toBe(false);
    batcher.add(3, "me", 6);
    expect(batcher.release(0)).toEqual([]);
    expect(batcher.release(1).map((read) => read.context)).toEqual([1, 2]);
    batcher.issueRound();
    expect(batcher.release(2)).toEqual([{ context: 3, from: "me", index: 6, round: 2 }]);
  });

  it("refuses reads beyond its bound and drains everything on leadership loss", () => {
    const batcher = new ReadIndexBatcher(2);
    expect(batcher.add(1, "me", 1)).toBe(true);
    expect(batcher.add(2, "me", 1)).toBe(true);
    expect(batcher.add(3, "me", 1)).toBe(false);
    expect(batcher.drain().map((read) => read.context)).toEqual([1, 2]);
    expect(batcher.release(Number.MAX_SAFE_INTEGER)).toEqual([]);
  });
});

describe("ReadForwarder", () => {
  it("forwards a batch once and settles each read once", () => {
    const forwarder = new ReadForwarder(10);
    forwarder.add(1);
    forwarder.add(2);
    expect(forwarder.takeUnsent()).toEqual([1, 2]);
    expect(forwarder.hasUnsent()).toBe(false);
    expect(forwarder.settle([2, 9])).toEqual([2]);
    expect(forwarder.settle([2])).toEqual([]);
    expect(forwarder.drain()).toEqual([1]);
  });

  it("counts forwarded and unsent reads against one bound", () => {
    const forwarder = new ReadForwarder(2);
    forwarder.add(1);
    forwarder.takeUnsent();
    expect(forwarder.add(2)).toBe(true);
    expect(forwarder.add(3)).toBe(false);
    expect(forwarder.drain().sort()).toEqual([1, 2]);
  });
});
