import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import type { LogEntry } from "../../src/raft/types.js";
import { ClientHistory, SafetyChecker, SafetyViolation, type SafetyProperty } from "./checker.js";
import { encodeWrite } from "./register-machine.js";

const MEMBERSHIP = { voters: ["n1", "n2", "n3"], learners: [], addresses: {} };

function command(index: number, term: number, operationId = index): LogEntry {
  return { index, term, kind: "command", data: encodeWrite({ key: "k", operationId }) };
}

/** A log of commands with the given terms at indexes 1, 2, 3... */
function log(terms: readonly number[]): MemoryStorage {
  return new MemoryStorage({ membership: MEMBERSHIP, entries: terms.map((term, offset) => command(offset + 1, term)) });
}

function violation(property: SafetyProperty, check: () => void): void {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(SafetyViolation);
    expect((error as SafetyViolation).property).toBe(property);
    return;
  }
  expect.fail(`expected a ${property} violation`);
}

describe("SafetyChecker on hand-made histories", () => {
  it("election safety: two leaders of one term is a violation, one leader seen twice is not", () => {
    const checker = new SafetyChecker();
    checker.observeLeader("n1", 2, log([1, 2]));
    checker.observeLeader("n1", 2, log([1, 2]));
    checker.observeLeader("n2", 3, log([1, 2]));
    violation("election safety", () => checker.observeLeader("n3", 2, log([1])));
  });

  it("leader completeness: a later leader must hold every entry committed in an earlier term", () => {
    const checker = new SafetyChecker();
    checker.observeCommit("n1", 2, 2, log([1, 2]));
    checker.observeLeader("n2", 3, log([1, 2, 3]));
    // A stale leader of the committing term itself is not bound by entries committed in that term.
    checker.observeLeader("n1", 2, log([1, 2]));
    violation("leader completeness", () => checker.observeLeader("n3", 4, log([1])));
    violation("leader completeness", () => new SafetyCheckerWith([1, 2]).observeLeader("n3", 5, log([1, 3])));
  });

  it("leader completeness accepts entries covered by the leader's snapshot", () => {
    const checker = new SafetyCheckerWith([1, 1, 2]);
    const compacted = log([1, 1, 2, 3]);
    compacted.createSnapshot({ index: 3, term: 2, membership: MEMBERSHIP, sizeBytes: 0 }, new Uint8Array(0));
    checker.observeLeader("n2", 3, compacted);
  });

  it("state-machine safety: two different entries applied or committed at one index", () => {
    const checker = new SafetyChecker();
    checker.observeApply("n1", 1, command(1, 1), 0);
    checker.observeApply("n2", 1, command(1, 1), 0);
    violation("state-machine safety", () => checker.observeApply("n3", 1, command(1, 1, 99), 0));
    violation("state-machine safety", () => checker.observeApply("n1", 1, command(3, 1), 1));
    violation("state-machine safety", () => checker.observeCommit("n3", 2, 1, log([2])));
  });

  it("a committed entry may never be replaced, an uncommitted one may", () => {
    const checker = new SafetyChecker();
    checker.observeCommit("n1", 1, 1, log([1, 1]));
    checker.observeAppend("n2", [command(2, 2)], log([1, 1]));
    checker.observeAppend("n2", [command(1, 1)], log([]));
    violation("committed entry overwritten", () => checker.observeAppend("n2", [command(1, 2)], log([1])));
    // The node knows index 1 is committed: whatever it holds there, a different entry is wrong.
    violation("committed entry overwritten", () => checker.observeAppend("n1", [command(1, 2)], log([])));
  });

  it("a node in a minority may receive a stale leader's entry at an index committed elsewhere", () => {
    const checker = new SafetyChecker();
    checker.observeCommit("n1", 2, 2, log([1, 2]));
    checker.observeAppend("n3", [command(2, 1)], log([1]));
  });

  it("log matching: equal index and term means identical prefixes", () => {
    const checker = new SafetyChecker();
    checker.checkLogMatching(new Map([["n1", log([1, 1, 2])], ["n2", log([1, 1, 3, 3])], ["n3", log([1])]]));
    const forged = new MemoryStorage({ membership: MEMBERSHIP, entries: [command(1, 1, 50), command(2, 2)] });
    violation("log matching", () => checker.checkLogMatching(new Map([["n1", log([1, 2])], ["n2", forged]])));
  });

  it("snapshot safety: two snapshots of one index must be identical", () => {
    const checker = new SafetyChecker();
    checker.observeSnapshot("n1", 5, 2, "aa");
    checker.observeSnapshot("n2", 5, 2, "aa");
    violation("snapshot safety", () => checker.observeSnapshot("n3", 5, 2, "bb"));
    checker.observeCommit("n1", 2, 1, log([2]));
    violation("snapshot safety", () => checker.observeSnapshot("n2", 1, 1, "cc"));
  });
});

/** A checker that has seen entries of the given terms committed at indexes 1, 2, 3... */
class SafetyCheckerWith extends SafetyChecker {
  constructor(terms: readonly number[]) {
    super();
    const committing = Math.max(...terms);
    this.observeCommit("n1", committing, terms.length, log(terms));
  }
}

describe("ClientHistory", () => {
  it("a read must see the newest write acknowledged before it started", () => {
    const history = new ClientHistory();
    history.invokeRead(1, "k");
    history.acknowledgeWrite("k", 5);
    history.completeRead(1, "n1", undefined); // began before the acknowledgement: may miss it
    history.invokeRead(2, "k");
    history.completeRead(2, "n1", { operationId: 9, index: 7 });
    history.invokeRead(3, "k");
    violation("stale read", () => history.completeRead(3, "n2", { operationId: 3, index: 4 }));
    history.invokeRead(4, "other");
    history.completeRead(4, "n2", undefined);
    expect(history.servedReads).toBe(4);
  });

  it("ignores duplicate answers and counts failed reads", () => {
    const history = new ClientHistory();
    history.acknowledgeWrite("k", 5);
    history.invokeRead(1, "k");
    history.failRead(1);
    history.completeRead(1, "n1", undefined);
    expect(history.failedReads).toBe(1);
    expect(history.servedReads).toBe(0);
  });

  it("reports an acknowledged write missing from a final state", () => {
    const history = new ClientHistory();
    history.acknowledgeWrite("k", 5);
    history.checkNoWriteLost("n1", () => ({ operationId: 1, index: 5 }));
    violation("lost write", () => history.checkNoWriteLost("n2", () => ({ operationId: 1, index: 3 })));
    violation("lost write", () => history.checkNoWriteLost("n3", () => undefined));
  });
});
