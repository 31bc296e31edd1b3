import { describe, expect, it } from "vitest";
import { Inflights, Progress } from "../../../src/raft/progress.js";

describe("Inflights", () => {
  it("closes at the message bound or the byte bound and reopens as answers free it", () => {
    const byCount = new Inflights(2, 1000);
    byCount.add(5, 10);
    expect(byCount.full()).toBe(false);
    byCount.add(9, 10);
    expect(byCount.full()).toBe(true);
    byCount.freeTo(5);
    expect(byCount.full()).toBe(false);
    const byBytes = new Inflights(100, 50);
    byBytes.add(3, 30);
    byBytes.add(4, 30);
    expect(byBytes.full()).toBe(true);
    byBytes.freeFirst();
    expect(byBytes.full()).toBe(false);
  });
});

describe("Progress", () => {
  it("probe sends one message until answered, then replicate pipelines from match + 1", () => {
    const progress = new Progress(11, 4, 1000);
    expect(progress.isPaused()).toBe(false);
    progress.sentEntries(12, 10);
    expect(progress.isPaused()).toBe(true);
    expect(progress.next).toBe(11);
    expect(progress.maybeUpdate(12)).toBe(true);
    progress.becomeReplicate();
    expect(progress.next).toBe(13);
    progress.sentEntries(15, 10);
    progress.sentEntries(18, 10);
    expect(progress.next).toBe(19);
    expect(progress.maybeUpdate(12)).toBe(false);
  });

  it("ignores stale rejections and jumps back by the hint in probe", () => {
    const progress = new Progress(21, 4, 1000);
    progress.match = 5;
    expect(progress.maybeDecreaseTo(7, 3)).toBe(false); // answers an older probe
    expect(progress.maybeDecreaseTo(20, 9)).toBe(true);
    expect(progress.next).toBe(10);
    expect(progress.maybeDecreaseTo(9, 2)).toBe(true);
    expect(progress.next).toBe(6); // never below match + 1
  });

  it("any rejection in replicate, even at or below match, falls back to probing from match + 1", () => {
    const progress = new Progress(1, 4, 1000);
    progress.maybeUpdate(10);
    progress.becomeReplicate();
    progress.sentEntries(20, 10);
    expect(progress.maybeDecreaseTo(15, 12)).toBe(true);
    expect(progress.state).toBe("probe");
    expect(progress.next).toBe(11);
    progress.maybeUpdate(20);
    progress.becomeReplicate();
    // Stale, or the follower lost what it acknowledged: the probe at match tells which.
    expect(progress.maybeDecreaseTo(10, 10)).toBe(true);
    expect(progress.state).toBe("probe");
    expect(progress.next).toBe(21);
    expect(progress.match).toBe(20);
  });

  it("a probe rejected at match forgets the match and backs up by the hint", () => {
    const progress = new Progress(1, 4, 1000);
    progress.maybeUpdate(30);
    progress.becomeProbe();
    expect(progress.next).toBe(31);
    expect(progress.maybeDecreaseTo(30, 0)).toBe(true);
    expect(progress.match).toBe(0);
    expect(progress.next).toBe(1);
  });

  it("a hint above the rejected probe (the follower's snapshot) moves the probe forward", () => {
    const progress = new Progress(6, 4, 1000);
    expect(progress.maybeDecreaseTo(5, 40)).toBe(true);
    expect(progress.next).toBe(41);
    expect(progress.match).toBe(0);
  });

  it("after a snapshot, probing resumes right after what the follower acknowledged", () => {
    const progress = new Progress(3, 4, 1000);
    progress.becomeSnapshot(50);
    expect(progress.isPaused()).toBe(true);
    expect(progress.maybeDecreaseTo(2, 1)).toBe(false);
    progress.maybeUpdate(50);
    progress.becomeProbe();
    expect(progress.next).toBe(51);
    expect(progress.snapshot).toBeUndefined();
  });

  it("forgetMatch starts probing over from the given index with match 0", () => {
    const progress = new Progress(1, 4, 1000);
    progress.maybeUpdate(30);
    progress.becomeReplicate();
    progress.sentEntries(40, 10);
    progress.forgetMatch(41);
    expect(progress).toMatchObject({ match: 0, next: 41, state: "probe", probeSent: false });
    expect(progress.isPaused()).toBe(false);
  });
});
