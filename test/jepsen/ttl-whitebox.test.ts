import { describe, expect, it } from "vitest";
import { checkOneLeaderPerTerm, compareStates } from "../../jepsen-lite/whitebox.js";
import { checkTtl } from "../../jepsen-lite/workloads/ttl.js";
import type { NodeStatus } from "../../src/server/replicated-node.js";
import { HistoryBuilder } from "./history-builder.js";

const entry = (value: bigint, updatedAt: number, expiresAt: number | null): { value: bigint; updatedAt: number; expiresAt: number | null } => ({ value, updatedAt, expiresAt });

describe("checkTtl", () => {
  it("flags a read that saw a value after a log time past its expiry had been observed", () => {
    const history = new HistoryBuilder()
      .invoke(0, "ttl-read", "ttl:clock").ok(0, entry(1n, 5_000, null))
      .invoke(1, "ttl-read", "ttl:0").ok(1, entry(9n, 3_000, 4_000))
      .events();
    const result = checkTtl(history, 100);
    expect(result.valid).toBe(false);
    expect(result.anomalies[0]?.kind).toBe("read-after-expiry");
    expect(result.anomalies[0]?.operations.map((operation) => operation.process)).toEqual([0, 1]);
    expect(result.stats).toEqual({ reads: 2, readsOfLiveValues: 1, judgedReads: 1 });
  });

  it("judges only by log times observed before the read began, and within the margin lets it pass", () => {
    const concurrent = new HistoryBuilder()
      .invoke(1, "ttl-read", "ttl:0")
      .invoke(0, "ttl-read", "ttl:clock").ok(0, entry(1n, 5_000, null))
      .ok(1, entry(9n, 3_000, 4_000))
      .events();
    expect(checkTtl(concurrent, 100).valid).toBe(true);
    const withinMargin = new HistoryBuilder()
      .invoke(0, "ttl-read", "ttl:clock").ok(0, entry(1n, 4_050, null))
      .invoke(1, "ttl-read", "ttl:0").ok(1, entry(9n, 3_000, 4_000))
      .events();
    expect(checkTtl(withinMargin, 100).valid).toBe(true);
    expect(checkTtl(withinMargin, 0).valid).toBe(false);
  });

  it("ignores reads of absent keys and values without a TTL", () => {
    const history = new HistoryBuilder()
      .invoke(0, "ttl-read", "ttl:clock").ok(0, entry(1n, 9_000, null))
      .invoke(1, "ttl-read", "ttl:0").ok(1, null)
      .invoke(2, "ttl-read", "ttl:clock").ok(2, entry(1n, 9_000, null))
      .events();
    expect(checkTtl(history, 0)).toMatchObject({ valid: true, anomalyCount: 0, stats: { reads: 3, readsOfLiveValues: 0 } });
  });
});

function status(applied: number, keys: number): NodeStatus {
  return { applied, keys, term: 3 } as NodeStatus;
}

const roleLine = (role: string, term: number): string => JSON.stringify({ level: 30, role, term, leader: null, msg: "raft role" });

describe("white-box checks", () => {
  it("nodes at one applied index with one key count agree; any difference is divergence", () => {
    expect(compareStates(new Map([["n1", status(10, 4)], ["n2", status(10, 4)]])).anomalies).toEqual([]);
    const diverged = compareStates(new Map([["n1", status(10, 4)], ["n2", status(10, 5)]]));
    expect(diverged.anomalies.map((anomaly) => anomaly.kind)).toEqual(["state-diverged"]);
  });

  it("finds two leaders in one term across the nodes' logs, skipping lines cut by kill -9", () => {
    const logs = new Map([
      ["n1", [roleLine("candidate", 2), roleLine("leader", 2), '{"role":"leader","te'].join("\n")],
      ["n2", [roleLine("follower", 2), roleLine("leader", 3)].join("\n")],
      ["n3", [roleLine("leader", 3), "not json"].join("\n")],
    ]);
    const result = checkOneLeaderPerTerm(logs);
    expect(result.terms).toBe(2);
    expect(result.anomalies).toEqual([{ kind: "two-leaders-in-term", message: "term 3 had leaders n2, n3" }]);
  });
});
