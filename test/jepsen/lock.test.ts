import { describe, expect, it } from "vitest";
import { checkLock } from "../../jepsen-lite/checkers/lock.js";
import { pairOperations } from "../../jepsen-lite/history.js";
import { HistoryBuilder } from "./history-builder.js";

const TTL_MS = 1_000;

function check(builder: HistoryBuilder) {
  return checkLock(pairOperations(builder.events()), { ttlMs: TTL_MS });
}

function kinds(builder: HistoryBuilder): string[] {
  return check(builder).anomalies.map((anomaly) => anomaly.kind);
}

const write = (token: bigint, data: string) => ({ token, data });

describe("lock checker", () => {
  it("holds one after another, increasing tokens and current-token writes: valid", () => {
    const h = new HistoryBuilder()
      .operation(0, "acquire", "l", undefined, "ok", 1n)
      .operation(0, "fencedWrite", "l", write(1n, "a"), "ok")
      .operation(0, "release", "l", undefined, "ok")
      .operation(1, "acquire", "l", undefined, "ok", 2n)
      .operation(0, "fencedWrite", "l", write(1n, "late"), "fail")
      .operation(1, "fencedWrite", "l", write(2n, "b"), "ok")
      .operation(1, "release", "l", undefined, "ok");
    const result = check(h);
    expect(result.valid).toBe(true);
    expect(result.stats).toMatchObject({ locks: 1, holds: 2, acknowledgedAcquires: 2, acceptedFencedWrites: 2 });
    expect(result.stats.linearizability.keys).toBe(1);
  });

  it("counts rejected fenced writes by their FENCED error", () => {
    const h = new HistoryBuilder().operation(0, "acquire", "l", undefined, "ok", 1n).invoke(0, "fencedWrite", "l", write(0n, "x")).fail(0, "FENCED");
    expect(check(h).stats.rejectedFencedWrites).toBe(1);
  });

  it("two holders at once are caught by mutual exclusion and by the mutex model", () => {
    const h = new HistoryBuilder().at(0).operation(0, "acquire", "l", undefined, "ok", 1n).at(100).operation(1, "acquire", "l", undefined, "ok", 2n).at(200).operation(0, "release", "l", undefined, "ok");
    const result = check(h);
    expect(result.valid).toBe(false);
    expect(result.anomalies.map((anomaly) => anomaly.kind).sort()).toEqual(["nonlinearizable", "two-holders"]);
    const holders = result.anomalies.find((anomaly) => anomaly.kind === "two-holders");
    expect(holders?.operations.map((operation) => [operation.process, operation.f])).toEqual([
      [0, "acquire"],
      [1, "acquire"],
      [0, "release"],
    ]);
  });

  it("a hold without a release ends at the TTL; one whose release is unknown ends at the release", () => {
    const afterExpiry = new HistoryBuilder().at(0).operation(0, "acquire", "l", undefined, "ok", 1n).at(TTL_MS + 1).operation(1, "acquire", "l", undefined, "ok", 2n);
    expect(check(afterExpiry).valid).toBe(true);
    const beforeExpiry = new HistoryBuilder().at(0).operation(0, "acquire", "l", undefined, "ok", 1n).at(TTL_MS / 2).operation(1, "acquire", "l", undefined, "ok", 2n);
    expect(kinds(beforeExpiry)).toContain("two-holders");
    const unknownRelease = new HistoryBuilder()
      .at(0)
      .operation(0, "acquire", "l", undefined, "ok", 1n)
      .at(100)
      .operation(0, "release", "l", undefined, "info")
      .at(200)
      .operation(1, "acquire", "l", undefined, "ok", 2n);
    expect(check(unknownRelease).valid).toBe(true);
  });

  it("token not increasing: a later acquisition gets a smaller or equal token", () => {
    const base = () => new HistoryBuilder().operation(0, "acquire", "l", undefined, "ok", 5n).operation(0, "release", "l", undefined, "ok");
    expect(kinds(base().operation(1, "acquire", "l", undefined, "ok", 3n))).toEqual(["token-not-increasing"]);
    expect(kinds(base().operation(1, "acquire", "l", undefined, "ok", 5n))).toEqual(["token-not-increasing"]);
    // The holder re-acquiring keeps its token.
    expect(check(new HistoryBuilder().operation(0, "acquire", "l", undefined, "ok", 5n).operation(0, "acquire", "l", undefined, "ok", 5n)).valid).toBe(true);
  });

  it("stale fenced write: accepted with a token older than one used or granted before it began", () => {
    const used = new HistoryBuilder()
      .operation(0, "acquire", "l", undefined, "ok", 1n)
      .operation(0, "release", "l", undefined, "ok")
      .operation(1, "acquire", "l", undefined, "ok", 2n)
      .operation(1, "fencedWrite", "l", write(2n, "new"), "ok")
      .operation(0, "fencedWrite", "l", write(1n, "stale"), "ok");
    const result = check(used);
    expect(result.valid).toBe(false);
    expect(result.anomalies.map((anomaly) => anomaly.kind)).toEqual(["stale-fenced-write"]);
    expect(result.anomalies[0]?.operations.map((operation) => operation.value)).toEqual([write(2n, "new"), write(1n, "stale")]);
    const granted = new HistoryBuilder()
      .operation(0, "acquire", "l", undefined, "ok", 1n)
      .operation(0, "release", "l", undefined, "ok")
      .operation(1, "acquire", "l", undefined, "ok", 2n)
      .operation(0, "fencedWrite", "l", write(1n, "stale"), "ok");
    expect(kinds(granted)).toEqual(["stale-fenced-write"]);
  });

  it("a fenced write to another key names its lock in the value", () => {
    const h = new HistoryBuilder()
      .operation(0, "acquire", "l", undefined, "ok", 1n)
      .operation(0, "release", "l", undefined, "ok")
      .operation(1, "acquire", "l", undefined, "ok", 2n)
      .operation(0, "fencedWrite", "data", { token: 1n, data: "stale", lock: "l" }, "ok");
    const result = check(h);
    expect(result.anomalies.map((anomaly) => [anomaly.kind, anomaly.key])).toEqual([["stale-fenced-write", "l"]]);
    expect(result.anomalies[0]?.operations.map((operation) => operation.key)).toEqual(["l", "data"]);
    expect(result.stats.locks).toBe(1);
  });

  it("locks are judged independently", () => {
    const h = new HistoryBuilder().operation(0, "acquire", "a", undefined, "ok", 1n).operation(1, "acquire", "b", undefined, "ok", 1n);
    expect(check(h).valid).toBe(true);
    expect(check(h).stats.locks).toBe(2);
  });
});
