import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { completionIndex, pairOperations, valueKey, type HistoryValue, type Operation, type OperationEvent } from "../../jepsen-lite/history.js";
import { checkLinearizable, type SequentialModel } from "../../jepsen-lite/checkers/linearizable.js";
import { mutexModel, registerModel } from "../../jepsen-lite/checkers/models.js";
import { HistoryBuilder } from "./history-builder.js";
import { simulateRegister, type RegisterSimulationOptions } from "./register-simulation.js";

function checkRegister(events: readonly OperationEvent[], model: SequentialModel<string> = registerModel()) {
  return checkLinearizable(pairOperations(events), model, { timeBudgetPerKeyMs: 20_000 });
}

/** The register model without its quick pass, so only the search can find a violation. */
function searchOnlyRegisterModel(): SequentialModel<string> {
  const { findImpossibleResults: _quickPass, ...model } = registerModel();
  return model;
}

describe("linearizable histories pass", () => {
  it("a sequential history", () => {
    const h = new HistoryBuilder()
      .operation(0, "read", "x", undefined, "ok", null)
      .operation(0, "write", "x", 1, "ok")
      .operation(1, "read", "x", undefined, "ok", 1)
      .operation(1, "cas", "x", [1, 2], "ok")
      .operation(0, "read", "x", undefined, "ok", 2);
    const result = checkRegister(h.events());
    expect(result.valid).toBe(true);
    expect(result.stats.keys).toBe(1);
    expect(result.anomalies).toEqual([]);
  });

  it("concurrent overlapping writes and reads, in either order", () => {
    // w1 and w2 overlap. Read 3 sees 1 after read 2 saw 2: valid, because w1 was still running
    // when read 3 began, so w1 may take effect after w2.
    const h = new HistoryBuilder()
      .invoke(0, "write", "x", 1)
      .invoke(1, "write", "x", 2)
      .invoke(2, "read", "x")
      .ok(2, 2)
      .invoke(3, "read", "x")
      .ok(0)
      .ok(1)
      .ok(3, 1);
    expect(checkRegister(h.events()).valid).toBe(true);
  });

  it("a cas chain across processes", () => {
    const h = new HistoryBuilder().operation(0, "write", "x", 0, "ok");
    for (let step = 0; step < 20; step += 1) h.operation(step % 4, "cas", "x", [step, step + 1], "ok");
    h.operation(1, "cas", "x", [3, 99], "fail").operation(2, "read", "x", undefined, "ok", 20);
    expect(checkRegister(h.events()).valid).toBe(true);
  });

  it("info operations may have happened or not", () => {
    const happened = new HistoryBuilder()
      .operation(0, "write", "x", 1, "ok")
      .operation(1, "write", "x", 2, "info")
      .operation(2, "read", "x", undefined, "ok", 1)
      .operation(2, "read", "x", undefined, "ok", 2)
      .operation(3, "read", "x", undefined, "ok", 2);
    expect(checkRegister(happened.events()).valid).toBe(true);
    const neverHappened = new HistoryBuilder().operation(0, "write", "x", 1, "ok").operation(1, "cas", "x", [1, 5], "info").operation(2, "read", "x", undefined, "ok", 1);
    expect(checkRegister(neverHappened.events()).valid).toBe(true);
  });

  it("an invoke that never completes counts as info", () => {
    const h = new HistoryBuilder().operation(0, "write", "x", 1, "ok").invoke(1, "write", "x", 2).operation(2, "read", "x", undefined, "ok", 2);
    expect(checkRegister(h.events()).valid).toBe(true);
  });
});

describe("classic violations are caught", () => {
  it("stale read: a read after a completed write sees the older value", () => {
    const h = new HistoryBuilder()
      .operation(0, "write", "x", 1, "ok")
      .operation(1, "write", "x", 2, "ok")
      .invoke(3, "write", "x", 3)
      .operation(2, "read", "x", undefined, "ok", 1)
      .ok(3);
    const result = checkRegister(h.events());
    expect(result.valid).toBe(false);
    expect(result.stats.invalidKeys).toEqual(["x"]);
    const [anomaly] = result.anomalies;
    expect(anomaly?.kind).toBe("nonlinearizable");
    expect(anomaly?.key).toBe("x");
    // The failing read and the write concurrent with it are reported.
    expect(anomaly?.operations.map((operation) => [operation.f, operation.process])).toEqual([
      ["write", 3],
      ["read", 2],
    ]);
  });

  it("lost write: an acknowledged write is never seen", () => {
    const h = new HistoryBuilder().operation(0, "write", "x", 1, "ok").operation(1, "read", "x", undefined, "ok", null);
    expect(checkRegister(h.events()).valid).toBe(false);
  });

  it("read of a failed write, by the quick pass and by the search alone", () => {
    const h = new HistoryBuilder().operation(0, "write", "x", 1, "ok").operation(1, "write", "x", 7, "fail").operation(2, "read", "x", undefined, "ok", 7);
    const result = checkRegister(h.events());
    expect(result.valid).toBe(false);
    expect(result.anomalies[0]?.kind).toBe("read-of-failed-write");
    expect(result.anomalies[0]?.operations.map((operation) => operation.f)).toEqual(["write", "read"]);
    expect(checkRegister(h.events(), searchOnlyRegisterModel()).valid).toBe(false);
  });

  it("non-linearizable cas: two sequential cas from the same expected value both succeed", () => {
    const h = new HistoryBuilder().operation(0, "cas", "x", [null, 1], "ok").operation(1, "cas", "x", [null, 2], "ok");
    expect(checkRegister(h.events()).valid).toBe(false);
  });

  it("each key is judged alone: a violation on one key names only that key", () => {
    const h = new HistoryBuilder()
      .operation(0, "write", "a", 1, "ok")
      .operation(0, "write", "b", 1, "ok")
      .operation(1, "read", "a", undefined, "ok", 1)
      .operation(1, "read", "b", undefined, "ok", null);
    const result = checkRegister(h.events(), searchOnlyRegisterModel());
    expect(result.valid).toBe(false);
    expect(result.stats.invalidKeys).toEqual(["b"]);
  });

  it("a search that runs out of budget is unknown, not valid", () => {
    const events = simulateRegister({ ...SIMULATION, seed: 7, operations: 400, keys: 1, processes: 8, infoProbability: 0.3 });
    const operations = pairOperations(events);
    const outOfMemory = checkLinearizable(operations, registerModel(), { maxMemoEntriesPerKey: 5 });
    expect(outOfMemory.valid).toBe("unknown");
    expect(outOfMemory.stats.unknownKeys).toEqual(["k0"]);
    // 400 operations take more steps than one clock check apart, so a zero budget runs out.
    const outOfTime = checkLinearizable(operations, registerModel(), { timeBudgetPerKeyMs: 0 });
    expect(outOfTime.valid).toBe("unknown");
    // One invalid key outweighs an unknown one.
    const withViolation = new HistoryBuilder().operation(0, "write", "other", 1, "ok").operation(1, "read", "other", undefined, "ok", null).events();
    expect(checkLinearizable([...operations, ...pairOperations(withViolation)], registerModel(), { maxMemoEntriesPerKey: 5 }).valid).toBe(false);
  });
});

describe("mutex model", () => {
  it("accepts alternating holds and rejects a second acquire while held", () => {
    const good = new HistoryBuilder()
      .operation(0, "acquire", "l", undefined, "ok", 1)
      .operation(0, "release", "l", undefined, "ok")
      .operation(1, "acquire", "l", undefined, "ok", 2);
    expect(checkLinearizable(pairOperations(good.events()), mutexModel()).valid).toBe(true);
    const bad = new HistoryBuilder().operation(0, "acquire", "l", undefined, "ok", 1).operation(1, "acquire", "l", undefined, "ok", 2);
    expect(checkLinearizable(pairOperations(bad.events()), mutexModel()).valid).toBe(false);
  });

  it("with a TTL, a hold may expire: a later acquire is legal only after the TTL", () => {
    const acquireAt = (startMs: number) => new HistoryBuilder().at(0).operation(0, "acquire", "l", undefined, "ok", 1).at(startMs).operation(1, "acquire", "l", undefined, "ok", 2);
    expect(checkLinearizable(pairOperations(acquireAt(500).events()), mutexModel({ ttlMs: 1_000 })).valid).toBe(false);
    expect(checkLinearizable(pairOperations(acquireAt(1_500).events()), mutexModel({ ttlMs: 1_000 })).valid).toBe(true);
  });
});

const SIMULATION: RegisterSimulationOptions = {
  seed: 1,
  operations: 300,
  keys: 3,
  processes: 6,
  maxWindowNanoseconds: 50,
  valueRange: 5,
  infoProbability: 0.05,
  refusedWriteProbability: 0.05,
};

/** Replaces the value of one ok read with one that no write ever wrote. */
function withImpossibleRead(events: readonly OperationEvent[], choice: number): OperationEvent[] | null {
  const reads = events.filter((event) => event.f === "read" && event.type === "ok");
  const target = reads[choice % Math.max(reads.length, 1)];
  if (target === undefined) return null;
  return events.map((event) => (event === target ? { ...event, value: "impossible" } : event));
}

describe("simulated registers", () => {
  it("10,000 operations on 100 keys with 8 processes check quickly", () => {
    const events = simulateRegister({ ...SIMULATION, seed: 42, operations: 10_000, keys: 100, processes: 8 });
    const startMs = performance.now();
    const result = checkRegister(events);
    const elapsedMs = performance.now() - startMs;
    console.log(`linearizability of 10,000 operations on 100 keys: ${elapsedMs.toFixed(0)} ms, ${result.stats.searchSteps} search steps`);
    expect(result.valid).toBe(true);
    expect(result.stats.keys).toBe(100);
    expect(result.stats.operations).toBe(10_000);
    // The target is under 10 s; the bound asserted is looser (30 s) so that a loaded 2-core
    // machine does not fail the test, while a search gone exponential still does.
    expect(elapsedMs).toBeLessThan(30_000);
  });

  it("a stale read deep in one key's 3,000 operations, many of them info, is found", () => {
    // Unique values let the register model settle most info operations before the search.
    const events = simulateRegister({ ...SIMULATION, seed: 3, operations: 3_000, keys: 1, processes: 8, valueRange: 1e9, infoProbability: 0.1 });
    const reads = events.filter((event) => event.f === "read" && event.type === "ok");
    const target = reads[Math.floor(reads.length * 0.9)]!;
    const olderWrites = events.filter((event) => event.f === "write" && event.type === "ok" && event.index < target.index - 200);
    const stale = olderWrites[olderWrites.length - 1]!;
    const invoke = events.filter((event) => event.process === stale.process && event.type === "invoke" && event.index < stale.index).pop()!;
    const mutated = events.map((event) => (event === target ? { ...event, value: invoke.value ?? null } : event));
    expect(checkRegister(events, searchOnlyRegisterModel()).valid).toBe(true);
    const startMs = performance.now();
    const result = checkRegister(mutated, searchOnlyRegisterModel());
    console.log(`stale read in 3,000 operations on one key: ${(performance.now() - startMs).toFixed(0)} ms, ${result.stats.searchSteps} search steps`);
    expect(result.valid).toBe(false);
    const reported = result.anomalies[0]?.operations ?? [];
    expect(reported.some((operation) => operation.completion?.index === target.index)).toBe(true);
    // Only the operations around the failing read, not every earlier info operation.
    expect(reported.length).toBeLessThan(20);
  });

  it("property: simulated histories are linearizable, and one impossible read makes them not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 1, max: 8 }), fc.nat(), (seed, processes, choice) => {
        const events = simulateRegister({ ...SIMULATION, seed, processes });
        expect(checkRegister(events).valid).toBe(true);
        const mutated = withImpossibleRead(events, choice);
        if (mutated === null) return;
        expect(checkRegister(mutated).valid).toBe(false);
        expect(checkRegister(mutated, searchOnlyRegisterModel()).valid).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});

/**
 * Reference: try every subset of the info operations and every order of the chosen operations;
 * an order counts if it respects real time and a plain register accepts every result.
 */
function bruteForceLinearizable(operations: readonly Operation[]): boolean {
  const happened = operations.filter((operation) => operation.type === "ok");
  const maybe = operations.filter((operation) => operation.type === "info");
  for (let subset = 0; subset < 2 ** maybe.length; subset += 1) {
    const chosen = [...happened, ...maybe.filter((_, bit) => (subset >> bit) & 1)];
    if (someOrderWorks(chosen, [])) return true;
  }
  return false;
}

function someOrderWorks(remaining: readonly Operation[], order: readonly Operation[]): boolean {
  if (remaining.length === 0) return registerAccepts(order);
  return remaining.some((candidate) => {
    const mustComeFirst = remaining.some((other) => completionIndex(other) < candidate.invoke.index);
    return !mustComeFirst && someOrderWorks(remaining.filter((other) => other !== candidate), [...order, candidate]);
  });
}

function registerAccepts(order: readonly Operation[]): boolean {
  let value: HistoryValue = null;
  for (const operation of order) {
    if (operation.f === "read" && operation.type === "ok" && valueKey(operation.value ?? null) !== valueKey(value)) return false;
    if (operation.f === "write") value = operation.invoke.value ?? null;
    if (operation.f === "cas") {
      const [expected, next] = operation.invoke.value as readonly [HistoryValue, HistoryValue];
      if (valueKey(expected) !== valueKey(value)) return false;
      value = next;
    }
  }
  return true;
}

describe("agreement with a brute-force reference", () => {
  it("property: on small histories with one read's value replaced, both give the same verdict", () => {
    let invalidSeen = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.nat(), fc.integer({ min: 0, max: 2 }), (seed, choice, replacement) => {
        const simulated = simulateRegister({ ...SIMULATION, seed, operations: 7, keys: 1, processes: 3, valueRange: 2 + (seed % 4), infoProbability: 0.3, refusedWriteProbability: 0.1 });
        const reads = simulated.filter((event) => event.f === "read" && event.type === "ok");
        const target = reads[choice % Math.max(reads.length, 1)];
        const events = simulated.map((event) => (event === target ? { ...event, value: replacement } : event));
        const operations = pairOperations(events);
        const expected = bruteForceLinearizable(operations);
        if (!expected) invalidSeen += 1;
        expect(checkLinearizable(operations, searchOnlyRegisterModel()).valid).toBe(expected);
        expect(checkLinearizable(operations, registerModel()).valid).toBe(expected);
      }),
      { numRuns: 300 },
    );
    // The replacements must produce violations for the comparison to mean anything.
    expect(invalidSeen).toBeGreaterThan(20);
  });
});
