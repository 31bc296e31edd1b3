import { describe, expect, it } from "vitest";
import { KvError } from "../../src/errors.js";
import { checkAll } from "../../jepsen-lite/checkers/index.js";
import { fromJsonText, toJsonText } from "../../jepsen-lite/history.js";
import { HistoryBuilder } from "./history-builder.js";

function mixedHistory(): HistoryBuilder {
  return new HistoryBuilder()
    .operation(0, "write", "r", 1, "ok")
    .operation(1, "read", "r", undefined, "ok", 1)
    .operation(0, "incr", "c", 2, "ok")
    .operation(1, "read", "c", undefined, "ok", 2)
    .operation(0, "add", "s", "e1", "ok")
    .operation(1, "read", "s", undefined, "ok", ["e1"])
    .operation(2, "acquire", "l", undefined, "ok", 1n)
    .operation(2, "fencedWrite", "l", { token: 1n, data: "x" }, "ok")
    .operation(2, "release", "l", undefined, "ok");
}

describe("checkAll", () => {
  it("gives each workload the keys its own operations touch, and a JSON-ready summary", () => {
    const summary = checkAll(mixedHistory().events(), { workloads: ["register", "counter", "set", "lock"], lockTtlMs: 1_000 });
    expect(summary.valid).toBe(true);
    expect(summary.operations).toEqual({ total: 9, ok: 9, fail: 0, info: 0 });
    expect(summary.unassignedKeys).toEqual([]);
    expect(Object.keys(summary.workloads).sort()).toEqual(["counter", "lock", "register", "set"]);
    expect(summary.workloads.register?.stats).toMatchObject({ keys: 1, operations: 2 });
    expect(summary.workloads.counter?.stats).toMatchObject({ reads: 1, acknowledgedSum: 2n });
    const text = toJsonText(summary);
    expect(fromJsonText(text)).toMatchObject({ valid: true, workloads: { counter: { stats: { acknowledgedSum: 2n } } } });
  });

  it("one violation makes the whole run invalid, with the anomaly under its workload", () => {
    const events = mixedHistory().operation(1, "read", "r", undefined, "ok", null).events();
    const summary = checkAll(events, { workloads: ["register", "counter"] });
    expect(summary.valid).toBe(false);
    expect(summary.workloads.register?.anomalies[0]?.kind).toBe("nonlinearizable");
    expect(summary.workloads.counter?.valid).toBe(true);
  });

  it("reports keys that no chosen workload owns", () => {
    const events = mixedHistory().operation(1, "read", "only-read", undefined, "ok", null).events();
    expect(checkAll(events, { workloads: ["register", "set"] }).unassignedKeys).toEqual(["c", "l", "only-read"]);
  });

  it("a single workload gets the whole history, and the lock workload needs its TTL", () => {
    const registerOnly = new HistoryBuilder().operation(0, "read", "r", undefined, "ok", null);
    expect(checkAll(registerOnly.events(), { workloads: ["register"] }).workloads.register?.stats).toMatchObject({ operations: 1 });
    try {
      checkAll(mixedHistory().events(), { workloads: ["lock"] });
      expect.fail("expected INVALID");
    } catch (error) {
      expect((error as KvError).code).toBe("INVALID");
    }
  });
});
