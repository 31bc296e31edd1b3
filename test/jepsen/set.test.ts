import { describe, expect, it } from "vitest";
import { checkSet } from "../../jepsen-lite/checkers/set.js";
import { pairOperations } from "../../jepsen-lite/history.js";
import { HistoryBuilder } from "./history-builder.js";

function adds(): HistoryBuilder {
  return new HistoryBuilder()
    .operation(0, "add", "s", 1, "ok")
    .operation(1, "add", "s", 2, "ok")
    .operation(2, "add", "s", 3, "info")
    .operation(0, "add", "s", 4, "fail")
    .operation(1, "add", "s", 5, "info");
}

function check(builder: HistoryBuilder) {
  return checkSet(pairOperations(builder.events()));
}

describe("set checker", () => {
  it("every acknowledged add present: valid, and an info add that appears is recovered", () => {
    const result = check(adds().operation(3, "read", "s", undefined, "ok", [2, 1, 3]));
    expect(result.valid).toBe(true);
    expect(result.stats).toMatchObject({ attemptedAdds: 5, acknowledgedAdds: 2, lost: 0, phantom: 0, recovered: 1, finalReadElements: 3 });
  });

  it("lost add: an acknowledged element missing from the final read", () => {
    const result = check(adds().operation(3, "read", "s", undefined, "ok", [1, 5]));
    expect(result.valid).toBe(false);
    expect(result.stats).toMatchObject({ lost: 1, recovered: 1 });
    expect(result.anomalies.map((anomaly) => [anomaly.kind, anomaly.operations.map((operation) => operation.value)])).toEqual([["lost-add", [2, [1, 5]]]]);
  });

  it("phantom element, and an element only a failed add attempted", () => {
    const result = check(adds().operation(3, "read", "s", undefined, "ok", [1, 2, 9, 4]));
    expect(result.valid).toBe(false);
    expect(result.stats).toMatchObject({ phantom: 1, failedAddPresent: 1, lost: 0 });
    expect(result.anomalies.map((anomaly) => anomaly.kind).sort()).toEqual(["failed-add-present", "phantom-element"]);
  });

  it("an add still running during the final read may be missing; without a read the verdict is unknown", () => {
    const concurrent = new HistoryBuilder().operation(0, "add", "s", 1, "ok").invoke(1, "add", "s", 2).invoke(2, "read", "s").ok(1).ok(2, [1]);
    expect(check(concurrent).valid).toBe(true);
    expect(check(adds()).valid).toBe("unknown");
    expect(check(adds()).stats.unreadKeys).toEqual(["s"]);
  });
});
