import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkCounter } from "../../jepsen-lite/checkers/counter.js";
import { pairOperations, type OperationEvent } from "../../jepsen-lite/history.js";
import { HistoryBuilder } from "./history-builder.js";

function check(builder: HistoryBuilder) {
  return checkCounter(pairOperations(builder.events()));
}

describe("counter bounds", () => {
  it("a read concurrent with increments may see any value between the bounds", () => {
    const h = new HistoryBuilder()
      .operation(0, "incr", "c", 1, "ok")
      .invoke(1, "incr", "c", 2)
      .invoke(2, "read", "c")
      .invoke(3, "incr", "c", 4)
      .ok(2, 7)
      .ok(1)
      .ok(3)
      .operation(2, "read", "c", undefined, "ok", 7);
    const result = check(h);
    expect(result.valid).toBe(true);
    expect(result.stats).toMatchObject({ reads: 2, finalReads: 1, acknowledgedSum: 7n, infoSum: 0n, finalValues: { c: 7n } });
  });

  it("double-applied increment: a read above every attempted increment", () => {
    const h = new HistoryBuilder().operation(0, "incr", "c", 1, "ok").operation(1, "incr", "c", 1, "ok").operation(2, "read", "c", undefined, "ok", 3);
    const result = check(h);
    expect(result.valid).toBe(false);
    expect(result.anomalies.map((anomaly) => anomaly.kind)).toEqual(["above-upper-bound"]);
    expect(result.anomalies[0]?.message).toMatch(/outside \[2, 2\]/);
  });

  it("lost increment: a read below what was acknowledged before it began", () => {
    const h = new HistoryBuilder().operation(0, "incr", "c", 5, "ok").operation(1, "read", "c", undefined, "ok", 5).operation(0, "incr", "c", 1, "ok").operation(1, "read", "c", undefined, "ok", 5);
    const result = check(h);
    expect(result.valid).toBe(false);
    expect(result.anomalies.map((anomaly) => anomaly.kind)).toEqual(["below-lower-bound"]);
  });

  it("final read with info increments lies within [acknowledged, acknowledged + info]", () => {
    const base = () => new HistoryBuilder().operation(0, "incr", "c", 1, "ok").operation(1, "incr", "c", 10, "info").operation(0, "incr", "c", 1, "fail");
    for (const [finalValue, valid] of [[1, true], [11, true], [0, false], [12, false]] as const) {
      expect(check(base().operation(2, "read", "c", undefined, "ok", finalValue)).valid).toBe(valid);
    }
    expect(check(base()).valid).toBe("unknown");
  });

  it("negative deltas bound from the other side, and an absent counter reads as 0", () => {
    const h = new HistoryBuilder().operation(0, "read", "c", undefined, "ok", null).operation(0, "incr", "c", -3, "ok").invoke(1, "incr", "c", -2).operation(2, "read", "c", undefined, "ok", -5).ok(1);
    expect(check(h).valid).toBe(true);
    // A decrement applied twice takes the counter below its lower bound.
    const twice = new HistoryBuilder().operation(0, "incr", "c", -3, "ok").operation(2, "read", "c", undefined, "ok", -6);
    expect(check(twice).anomalies[0]?.kind).toBe("below-lower-bound");
  });
});

/** A counter whose increments take effect between invoke and completion, read concurrently. */
function simulatedCounter(steps: readonly { process: number; delta: number; readAfter: boolean }[]): OperationEvent[] {
  const h = new HistoryBuilder();
  let value = 0;
  let pending: { process: number; delta: number } | null = null;
  for (const step of steps) {
    h.invoke(step.process, "incr", "c", step.delta);
    if (pending !== null) h.ok(pending.process);
    value += step.delta;
    if (step.readAfter) h.operation(99, "read", "c", undefined, "ok", value);
    pending = step;
  }
  if (pending !== null) h.ok(pending.process);
  return h.operation(99, "read", "c", undefined, "ok", value).events();
}

describe("simulated counters", () => {
  it("property: exact reads pass; a final read off by any amount fails", () => {
    const step = fc.record({ process: fc.integer({ min: 0, max: 1 }), delta: fc.integer({ min: -5, max: 5 }), readAfter: fc.boolean() });
    const alternating = fc.array(step, { minLength: 1, maxLength: 30 }).map((steps) => steps.map((entry, position) => ({ ...entry, process: position % 2 })));
    fc.assert(
      fc.property(alternating, fc.integer({ min: 1, max: 5 }), fc.boolean(), (steps, offset, above) => {
        const events = simulatedCounter(steps);
        expect(checkCounter(pairOperations(events)).valid).toBe(true);
        const last = events[events.length - 1]!;
        const wrong = { ...last, value: (last.value as number) + (above ? offset : -offset) };
        expect(checkCounter(pairOperations([...events.slice(0, -1), wrong])).valid).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});
